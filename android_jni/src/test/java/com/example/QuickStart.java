package com.example;

import ai.mobconv.Interpreter;
import ai.mobconv.MobconvException;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;

/** Classifies an 8x8 digit image with the bundled digits model (docs/android.md, quick start). */
public final class QuickStart {
  private QuickStart() {}

  /** Maps a .mob file read-only: the runtime uses its weights in place (zero copy). */
  public static MappedByteBuffer mapModel(String path) throws IOException {
    try (RandomAccessFile file = new RandomAccessFile(path, "r")) { // API 1, unlike java.nio.file
      FileChannel channel = file.getChannel();
      return channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size());
    }
  }

  /** The most probable digit of an 8x8 image (64 values 0..16, row by row). */
  public static int classify(MappedByteBuffer model, float[] pixels) throws MobconvException {
    Interpreter.Options options = new Interpreter.Options().setNumThreads(2);
    try (Interpreter interpreter = new Interpreter(model, options)) {
      float[][][][] input = new float[1][1][8][8]; // NCHW: batch, channel, row, column
      for (int i = 0; i < 64; i++) {
        input[0][0][i / 8][i % 8] = pixels[i];
      }
      float[][] probabilities = new float[1][10];
      interpreter.run(input, probabilities);
      int best = 0;
      for (int digit = 1; digit < 10; digit++) {
        if (probabilities[0][digit] > probabilities[0][best]) {
          best = digit;
        }
      }
      return best;
    }
  }

  /** java com.example.QuickStart digits.mob image.f32 (64 little-endian float32 values). */
  public static void main(String[] args) throws IOException, MobconvException {
    byte[] bytes = new byte[64 * 4];
    try (RandomAccessFile file = new RandomAccessFile(args[1], "r")) {
      file.readFully(bytes);
    }
    ByteBuffer raw = ByteBuffer.wrap(bytes);
    float[] pixels = new float[64];
    raw.order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(pixels);
    System.out.println("digit: " + classify(mapModel(args[0]), pixels));
  }
}
