package ai.mobconv;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.ref.WeakReference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.BeforeClass;
import org.junit.Test;

/**
 * The Java binding on the desktop JDK, driven by tests/test_android_jni.py, which writes the
 * models, inputs and the Python binding's outputs (the oracle: the same C API through ctypes)
 * into the directory named by the system property mobconv.testdata. Every output is compared bit
 * for bit. manifest.properties holds what the Python binding reports about each tensor.
 */
public class InterpreterTest {
  private static File dir;
  private static Properties manifest;

  @BeforeClass
  public static void loadManifest() throws IOException {
    dir = new File(System.getProperty("mobconv.testdata"));
    manifest = new Properties();
    try (InputStream in = new FileInputStream(new File(dir, "manifest.properties"))) {
      manifest.load(in);
    }
  }

  // ---- helpers

  private static String path(String name) {
    return new File(dir, name).getPath();
  }

  private static byte[] read(String name) throws IOException {
    return Files.readAllBytes(Paths.get(path(name)));
  }

  private static String get(String key) {
    String v = manifest.getProperty(key);
    assertNotNull("manifest lacks " + key, v);
    return v;
  }

  private static int[] ints(String csv) {
    return csv.isEmpty() ? new int[0] : Arrays.stream(csv.split(",")).mapToInt(Integer::parseInt).toArray();
  }

  private static ByteBuffer direct(byte[] bytes) {
    ByteBuffer b = ByteBuffer.allocateDirect(bytes.length).order(ByteOrder.nativeOrder());
    b.put(bytes).rewind();
    return b;
  }

  private static float[] floats(byte[] b) {
    float[] f = new float[b.length / 4];
    ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
    return f;
  }

  private static int[] int32s(byte[] b) {
    int[] v = new int[b.length / 4];
    ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(v);
    return v;
  }

  private static long[] int64s(byte[] b) {
    long[] v = new long[b.length / 8];
    ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(v);
    return v;
  }

  private static byte[] bytes(float[] f) {
    ByteBuffer b = ByteBuffer.allocate(f.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(f);
    return b.array();
  }

  private static byte[] bytes(int[] v) {
    ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asIntBuffer().put(v);
    return b.array();
  }

  private static byte[] bytes(long[] v) {
    ByteBuffer b = ByteBuffer.allocate(v.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    b.asLongBuffer().put(v);
    return b.array();
  }

  private static byte[] bytes(ByteBuffer b, int n) {
    byte[] out = new byte[n];
    b.duplicate().get(out);
    return out;
  }

  private static float[][][][] nested(float[] flat, int n, int c, int h, int w) {
    float[][][][] x = new float[n][c][h][w];
    int k = 0;
    for (float[][][] a : x) {
      for (float[][] b : a) {
        for (float[] row : b) {
          for (int j = 0; j < w; j++) {
            row[j] = flat[k++];
          }
        }
      }
    }
    return x;
  }

  private static float[] flat(float[][] x) {
    float[] f = new float[x.length * x[0].length];
    for (int i = 0; i < x.length; i++) {
      System.arraycopy(x[i], 0, f, i * x[0].length, x[0].length);
    }
    return f;
  }

  private static MappedByteBuffer map(String name) throws IOException {
    try (FileChannel ch = FileChannel.open(Paths.get(path(name)))) {
      return ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size());
    }
  }

  private static void same(String what, byte[] want, byte[] got) {
    assertEquals(what + ": byte count", want.length, got.length);
    for (int i = 0; i < want.length; i++) {
      if (want[i] != got[i]) {
        throw new AssertionError(what + ": first difference at byte " + i + " (want " + want[i]
            + ", got " + got[i] + ")");
      }
    }
  }

  private static int liveAfterGc(int want) throws InterruptedException {
    int live = NativeLibrary.nativeLiveHandles();
    for (int i = 0; i < 100 && live != want; i++) {
      System.gc();
      Thread.sleep(50);
      live = NativeLibrary.nativeLiveHandles();
    }
    return live;
  }

  // ---- tensors

  private static void checkTensor(String key, Tensor t, boolean declared) {
    assertEquals(key, get(key + ".name"), t.name());
    assertEquals(key, get(key + ".dtype"), t.dataType().label());
    assertArrayEquals(key, ints(get(key + (declared ? ".declared" : ".shape"))), t.shape());
    assertEquals(key, Long.parseLong(get(key + (declared ? ".declared_bytes" : ".bytes"))), t.numBytes());
    Tensor.QuantizationParams q = t.quantizationParams();
    String scales = manifest.getProperty(key + ".scales", "");
    assertEquals(key, !scales.isEmpty(), q.isQuantized());
    if (!scales.isEmpty()) {
      int[] bits = ints(scales);
      float[] want = new float[bits.length];
      for (int i = 0; i < bits.length; i++) {
        want[i] = Float.intBitsToFloat(bits[i]);
      }
      assertArrayEquals(key, want, q.scales(), 0f);
      long[] zps = Arrays.stream(ints(get(key + ".zero_points"))).asLongStream().toArray();
      assertArrayEquals(key, zps, q.zeroPoints());
      assertEquals(key, Integer.parseInt(get(key + ".axis")), q.axis());
      assertEquals(key, want[0], q.scale(), 0f);
    }
  }

  @Test
  public void tensorsMatchThePythonBinding() throws Exception {
    for (String m : get("models").split(",")) {
      try (Model model = new Model(path(m + ".mob"));
          Interpreter it = new Interpreter(model, null)) {
        int nin = Integer.parseInt(get(m + ".inputs"));
        int nout = Integer.parseInt(get(m + ".outputs"));
        assertEquals(m, nin, it.getInputTensorCount());
        assertEquals(m, nout, it.getOutputTensorCount());
        assertEquals(m, nin, model.getInputTensorCount());
        assertEquals(m, nout, model.getOutputTensorCount());
        for (int i = 0; i < nin; i++) {
          checkTensor(m + ".in" + i, it.getInputTensor(i), false);
          checkTensor(m + ".in" + i, model.getInputTensor(i), true);
          assertEquals(i, it.getInputIndex(get(m + ".in" + i + ".name")));
        }
        for (int k = 0; k < nout; k++) {
          checkTensor(m + ".out" + k, it.getOutputTensor(k), false);
          checkTensor(m + ".out" + k, model.getOutputTensor(k), true);
          assertEquals(k, it.getOutputIndex(get(m + ".out" + k + ".name")));
        }
        assertThrows(IllegalArgumentException.class, () -> it.getInputTensor(nin));
        assertThrows(IllegalArgumentException.class, () -> it.getOutputTensor(-1));
        assertThrows(IllegalArgumentException.class, () -> it.getInputIndex("no such input"));
      }
    }
  }

  private static float[] floatBits(String csv) {
    int[] bits = ints(csv);
    float[] f = new float[bits.length];
    for (int i = 0; i < bits.length; i++) {
      f[i] = Float.intBitsToFloat(bits[i]);
    }
    return f;
  }

  @Test
  public void signatureAndPreprocessingMatchPython() throws Exception {
    for (String name : new String[] {"sig", "digits"}) {
      try (Model m = new Model(path(name + ".mob"))) {
        assertArrayEquals(name, floatBits(get(name + ".pre.mean")), m.getInputMean(0), 0f);
        assertArrayEquals(name, floatBits(get(name + ".pre.scale")), m.getInputScale(0), 0f);
        assertEquals(name, get(name + ".pre.order"), m.getInputChannelOrder(0));
        int nin = Integer.parseInt(get(name + ".inputs"));
        int nout = Integer.parseInt(get(name + ".outputs"));
        for (int i = 0; i < nin; i++) {
          assertEquals(name, get(name + ".in" + i + ".layout"), m.getInputLayout(i));
        }
        for (int k = 0; k < nout; k++) {
          assertEquals(name, get(name + ".out" + k + ".layout"), m.getOutputLayout(k));
        }
        assertThrows(IllegalArgumentException.class, () -> m.getInputLayout(nin));
        assertThrows(IllegalArgumentException.class, () -> m.getOutputLayout(-1));
        assertThrows(IllegalArgumentException.class, () -> m.getInputMean(nin));
        assertThrows(IllegalArgumentException.class, () -> m.getInputChannelOrder(nin));
      }
    }
    assertEquals(3, floatBits(get("sig.pre.mean")).length); // the oracle is not empty
  }

  // ---- every input and output style on the digits model

  /** Every way to load the model. */
  private static List<Interpreter> digitsInterpreters() throws Exception {
    List<Interpreter> list = new ArrayList<>();
    list.add(new Interpreter(path("digits.mob")));
    list.add(new Interpreter(new File(path("digits.mob")), new Interpreter.Options()));
    list.add(new Interpreter(map("digits.mob")));
    list.add(new Interpreter(direct(read("digits.mob"))));
    ByteBuffer unaligned = ByteBuffer.allocateDirect(read("digits.mob").length + 3);
    unaligned.position(3);
    unaligned.put(read("digits.mob")).position(3); // not 64-byte aligned: the runtime copies it
    list.add(new Interpreter(unaligned));
    return list;
  }

  @Test
  public void digitsEveryInputAndOutputStyleMatchesPython() throws Exception {
    byte[] in = read("digits.in0.bin");
    byte[] want = read("digits.out0.bin");
    float[] x = floats(in);
    int n = want.length;
    for (Interpreter it : digitsInterpreters()) {
      try (Interpreter interpreter = it) {
        // nested arrays: resizes the symbolic batch to 1
        float[][] out2 = new float[1][10];
        interpreter.run(nested(x, 1, 1, 8, 8), out2);
        same("float[1][1][8][8] -> float[1][10]", want, bytes(flat(out2)));
        assertArrayEquals(new int[] {1, 10}, interpreter.getOutputTensor(0).shape());

        float[] out1 = new float[10];
        interpreter.run(x.clone(), out1);
        same("float[64] -> float[10]", want, bytes(out1));

        // direct, native order, aligned: read in place
        ByteBuffer ob = ByteBuffer.allocateDirect(n).order(ByteOrder.nativeOrder());
        interpreter.run(direct(in), ob);
        same("ByteBuffer -> ByteBuffer", want, bytes(ob, n));
        assertEquals("positions are not changed", 0, ob.position());

        // unaligned input (copied), read-only input, output at an offset
        ByteBuffer raw = ByteBuffer.allocateDirect(in.length + 1).order(ByteOrder.nativeOrder());
        raw.position(1);
        raw.put(in).position(1);
        ByteBuffer unaligned = raw.slice().order(ByteOrder.nativeOrder());
        ByteBuffer big = ByteBuffer.allocateDirect(n + 8).order(ByteOrder.nativeOrder());
        big.position(8);
        interpreter.run(unaligned, big);
        same("unaligned ByteBuffer -> ByteBuffer at 8", want, bytes(big, n));
        ByteBuffer ro = direct(in).asReadOnlyBuffer().order(ByteOrder.nativeOrder());
        float[] out3 = new float[10];
        interpreter.run(ro, out3);
        same("read-only ByteBuffer -> float[]", want, bytes(out3));

        Map<Integer, Object> outs = new HashMap<>();
        float[][] out4 = new float[1][10];
        outs.put(0, out4);
        interpreter.runForMultipleInputsOutputs(new Object[] {nested(x, 1, 1, 8, 8)}, outs);
        same("runForMultipleInputsOutputs", want, bytes(flat(out4)));
      }
    }
  }

  @Test
  public void resizeInputToABatchOfThree() throws Exception {
    byte[] in = read("digits_b3.in0.bin");
    byte[] want = read("digits_b3.out0.bin");
    try (Interpreter it = new Interpreter(path("digits.mob"))) {
      assertArrayEquals(new int[] {-1, 1, 8, 8}, it.getInputTensor(0).shape());
      assertEquals(0, it.getInputTensor(0).numBytes());
      it.resizeInput(0, new int[] {3, 1, 8, 8});
      assertEquals(3 * 64 * 4, it.getInputTensor(0).numBytes());
      assertArrayEquals(new int[] {3, 10}, it.getOutputTensor(0).shape());
      float[] out = new float[30];
      it.run(floats(in), out);
      same("batch 3", want, bytes(out));
      MobconvException e =
          assertThrows(MobconvException.class, () -> it.resizeInput(0, new int[] {3, 2, 8, 8}));
      assertTrue(e.getMessage(), e.getMessage().length() > 0);
      assertNotNull(e.status());
    }
  }

  // ---- the MobileNetV2-style model, the int8 model, int32/int64 tensors

  @Test
  public void mobileNetV2MatchesPython() throws Exception {
    byte[] in = read("mnv2.in0.bin");
    byte[] want = read("mnv2.out0.bin");
    int[] shape = ints(get("mnv2.in0.feed_shape"));
    try (Interpreter it = new Interpreter(map("mnv2.mob"))) {
      assertEquals(-1, it.getInputTensor(0).shape()[0]); // symbolic batch
      float[][] out = new float[1][10];
      it.run(nested(floats(in), shape[0], shape[1], shape[2], shape[3]), out);
      same("nested", want, bytes(flat(out)));
      ByteBuffer ob = ByteBuffer.allocateDirect(want.length).order(ByteOrder.nativeOrder());
      it.run(direct(in), ob);
      same("ByteBuffer", want, bytes(ob, want.length));
      float[] flatOut = new float[10];
      it.run(floats(in), flatOut);
      same("float[]", want, bytes(flatOut));
    }
  }

  @Test
  public void int8ModelTakesAndGivesBytes() throws Exception {
    byte[] in = read("digits8.in0.bin");
    byte[] want = read("digits8.out0.bin");
    try (Interpreter it = new Interpreter(path("digits8.mob"))) {
      assertEquals(DataType.INT8, it.getInputTensor(0).dataType());
      assertTrue(it.getInputTensor(0).quantizationParams().isQuantized());
      assertEquals(DataType.FLOAT32, it.getOutputTensor(0).dataType());
      float[] out = new float[want.length / 4];
      it.resizeInput(0, new int[] {1, 1, 8, 8});
      it.run(in.clone(), out);
      same("byte[] -> float[]", want, bytes(out));
      ByteBuffer ob = ByteBuffer.allocateDirect(want.length).order(ByteOrder.nativeOrder());
      it.run(direct(in), ob);
      same("ByteBuffer -> ByteBuffer", want, bytes(ob, want.length));
      assertThrows(IllegalArgumentException.class, () -> it.run(floats(read("digits.in0.bin")), out));
      assertThrows(IllegalArgumentException.class, () -> it.run(in.clone(), new byte[want.length]));
    }
  }

  @Test
  public void intAndLongTensors() throws Exception {
    try (Interpreter it = new Interpreter(path("io.mob"))) {
      float[] x = floats(read("io.in0.bin"));
      Object[] inputs = {
        new float[][] {{x[0], x[1], x[2]}, {x[3], x[4], x[5]}},
        int32s(read("io.in1.bin")),
        new long[][] {Arrays.copyOfRange(int64s(read("io.in2.bin")), 0, 2),
                      Arrays.copyOfRange(int64s(read("io.in2.bin")), 2, 4)}
      };
      float[][] y = new float[2][3];
      int[] a2 = new int[4];
      long[] b2 = new long[4];
      Map<Integer, Object> outs = new HashMap<>();
      outs.put(0, y);
      outs.put(1, a2);
      outs.put(2, b2);
      it.runForMultipleInputsOutputs(inputs, outs);
      same("float y", read("io.out0.bin"), bytes(flat(y)));
      same("int32 a2", read("io.out1.bin"), bytes(a2));
      same("int64 b2", read("io.out2.bin"), bytes(b2));
      // only the outputs asked for are copied
      int[] only = new int[4];
      it.runForMultipleInputsOutputs(inputs, java.util.Collections.singletonMap(1, only));
      same("int32 a2 alone", read("io.out1.bin"), bytes(only));
    }
  }

  // ---- errors

  @Test
  public void badModelFiles() throws Exception {
    MobconvException e =
        assertThrows(MobconvException.class, () -> new Interpreter(path("bad.mob")));
    assertEquals(Status.INVALID_MODEL, e.status());
    assertTrue(e.getMessage(), e.getMessage().length() > 10);
    e = assertThrows(MobconvException.class, () -> new Interpreter(direct(read("bad.mob"))));
    assertEquals(Status.INVALID_MODEL, e.status());
    e = assertThrows(MobconvException.class, () -> new Interpreter(path("missing.mob")));
    assertEquals(Status.IO_ERROR, e.status());
    assertTrue(e.getMessage(), e.getMessage().contains("missing.mob"));
    assertThrows(IllegalArgumentException.class, () -> new Interpreter(ByteBuffer.wrap(read("digits.mob"))));
    assertThrows(IllegalArgumentException.class, () -> new Interpreter(ByteBuffer.allocateDirect(0)));
    assertThrows(IllegalArgumentException.class, () -> new Interpreter((String) null));
    assertThrows(IllegalArgumentException.class, () -> new Interpreter.Options().setNumThreads(0));
  }

  @Test
  public void wrongInputOrOutputSize() throws Exception {
    try (Interpreter it = new Interpreter(path("digits.mob"))) {
      it.resizeInput(0, new int[] {1, 1, 8, 8});
      float[] out = new float[10];
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> it.run(new float[63], out));
      assertTrue(e.getMessage(), e.getMessage().contains("'data'") && e.getMessage().contains("64"));
      assertThrows(IllegalArgumentException.class,
          () -> it.run(ByteBuffer.allocateDirect(255).order(ByteOrder.nativeOrder()), out));
      assertThrows(IllegalArgumentException.class, () -> it.run(new float[64], new float[9]));
      assertThrows(IllegalArgumentException.class, () -> it.run(new float[64], new float[2][5]));
      assertThrows(IllegalArgumentException.class,
          () -> it.run(new float[64], ByteBuffer.allocateDirect(39).order(ByteOrder.nativeOrder())));
      assertThrows(IllegalArgumentException.class, () -> it.run(new float[][] {{1}, {1, 2}}, out));
      // a nested array of another shape resizes; a fixed dim that does not match is refused
      assertThrows(MobconvException.class, () -> it.run(new float[1][1][8][7], out));
      assertThrows(IllegalArgumentException.class,
          () -> it.runForMultipleInputsOutputs(new Object[] {}, new HashMap<>()));
      assertThrows(IllegalArgumentException.class,
          () -> it.runForMultipleInputsOutputs(new Object[] {new float[64]},
              java.util.Collections.singletonMap(1, out)));
      // still usable
      it.resizeInput(0, new int[] {1, 1, 8, 8});
      it.run(floats(read("digits.in0.bin")), out);
      same("after errors", read("digits.out0.bin"), bytes(out));
    }
    try (Interpreter it = new Interpreter(path("digits.mob"))) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> it.run(new float[64], new float[10]));
      assertTrue(e.getMessage(), e.getMessage().contains("resizeInput"));
    }
  }

  @Test
  public void wrongDataType() throws Exception {
    try (Interpreter it = new Interpreter(path("digits.mob"))) {
      it.resizeInput(0, new int[] {1, 1, 8, 8});
      float[] out = new float[10];
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> it.run(new int[64], out));
      assertTrue(e.getMessage(), e.getMessage().contains("float32") && e.getMessage().contains("int[]"));
      assertThrows(IllegalArgumentException.class, () -> it.run(new byte[256], out));
      assertThrows(IllegalArgumentException.class, () -> it.run(new double[64], out));
      assertThrows(IllegalArgumentException.class, () -> it.run("not data", out));
      assertThrows(IllegalArgumentException.class, () -> it.run(null, out));
      assertThrows(IllegalArgumentException.class, () -> it.run(new float[64], new long[10]));
      assertThrows(IllegalArgumentException.class, () -> it.run(new float[64], null));
      assertThrows(IllegalArgumentException.class, () -> it.run(new float[64], ByteBuffer.allocate(40)));
      ByteBuffer wrongOrder = ByteBuffer.allocateDirect(256).order(
          ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN);
      assertThrows(IllegalArgumentException.class, () -> it.run(wrongOrder, out));
      assertThrows(IllegalArgumentException.class, () -> it.run(ByteBuffer.allocate(256), out));
      assertThrows(IllegalArgumentException.class,
          () -> it.run(new float[64], direct(new byte[40]).asReadOnlyBuffer()));
    }
  }

  /** The JNI glue checks every handle and buffer itself (called here past the Java checks). */
  @Test
  public void nativeGlueRefusesBadHandlesAndShortBuffers() throws Exception {
    assertThrows(IllegalStateException.class, () -> Interpreter.nativeInvoke(0));
    assertThrows(IllegalStateException.class, () -> Interpreter.nativeInvoke(12345L));
    assertThrows(IllegalStateException.class, () -> Interpreter.nativeCancel(-8L));
    assertThrows(IllegalStateException.class, () -> Interpreter.nativeDelete(12345L));
    assertThrows(IllegalStateException.class, () -> Model.nativeInputCount(42L));
    assertThrows(IllegalStateException.class, () -> Model.nativeDelete(42L));
    assertThrows(IllegalStateException.class, () -> Tensor.nativeShape(12345L, Tensor.INPUT, 0));
    assertThrows(IllegalStateException.class, () -> Tensor.nativeName(12345L, Tensor.MODEL_INPUT, 0));
    try (Interpreter it = new Interpreter(path("digits.mob"))) {
      it.resizeInput(0, new int[] {1, 1, 8, 8});
      long h = it.acquire();
      try {
        assertThrows(IllegalArgumentException.class, () -> Tensor.nativeShape(h, 7, 0));
        assertThrows(IllegalArgumentException.class, () -> Tensor.nativeShape(h, Tensor.INPUT, 1));
        assertThrows(IllegalArgumentException.class, () -> Tensor.nativeName(h, Tensor.OUTPUT, -1));
        assertThrows(IllegalStateException.class, () -> Tensor.nativeName(h, Tensor.MODEL_INPUT, 0));
        ByteBuffer small = ByteBuffer.allocateDirect(100);
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeSetInput(h, 0, small, 0, 256));
        ByteBuffer exact = ByteBuffer.allocateDirect(256);
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeSetInput(h, 0, exact, 1, 256));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeSetInput(h, 0, exact, -4, 256));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeSetInput(h, 0, exact, 0, 255));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeSetInput(h, 0, new float[63], 0, 256));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeSetInput(h, 0, new long[32], 0, 256));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeSetInput(h, 0, "x", 0, 256));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeSetInput(h, 0, null, 0, 256));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeSetInput(h, 3, exact, 0, 256));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeClearInputPointer(h, 3));
        Interpreter.nativeSetInput(h, 0, new float[64], 0, 256);
        Interpreter.nativeInvoke(h);
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeCopyOutput(h, 0, new float[9], 0));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeCopyOutput(h, 0, new float[10], 4));
        assertThrows(IllegalArgumentException.class,
            () -> Interpreter.nativeCopyOutput(h, 0, ByteBuffer.allocateDirect(39), 0));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeCopyOutput(h, 0, new int[10], 0));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeCopyOutput(h, 1, new float[10], 0));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeResizeInput(h, 0, new int[9]));
        assertThrows(IllegalArgumentException.class, () -> Interpreter.nativeResizeInput(h, 0, null));
        assertThrows(IllegalArgumentException.class, () -> Model.nativeCreateFromBuffer(small, 90, 20));
        assertThrows(IllegalArgumentException.class, () -> Model.nativeCreateFromBuffer(ByteBuffer.allocate(10), 0, 10));
        float[] out = new float[10];
        Interpreter.nativeCopyOutput(h, 0, out, 0);
      } finally {
        it.release();
      }
    }
  }

  // ---- lifetime

  @Test
  public void useAfterCloseThrows() throws Exception {
    int baseline = NativeLibrary.nativeLiveHandles();
    Interpreter it = new Interpreter(path("digits.mob"));
    Tensor in = it.getInputTensor(0);
    assertEquals(baseline + 2, NativeLibrary.nativeLiveHandles()); // its model + itself
    it.close();
    assertEquals(baseline, NativeLibrary.nativeLiveHandles());
    it.close(); // idempotent
    it.cancel(); // ignored once closed
    assertThrows(IllegalStateException.class, () -> it.run(new float[64], new float[10]));
    assertThrows(IllegalStateException.class, () -> it.getInputTensor(0));
    assertThrows(IllegalStateException.class, () -> it.getOutputTensorCount());
    assertThrows(IllegalStateException.class, () -> it.resizeInput(0, new int[] {1, 1, 8, 8}));
    assertThrows(IllegalStateException.class, in::shape);
    assertThrows(IllegalStateException.class, in::name);

    // a shared model closed before its interpreter stays alive until the interpreter closes
    Model model = new Model(path("digits.mob"));
    Tensor declared = model.getInputTensor(0);
    Interpreter shared = new Interpreter(model, null);
    model.close();
    assertThrows(IllegalStateException.class, declared::shape);
    assertThrows(IllegalStateException.class, () -> new Interpreter(model, null));
    float[][] out = new float[1][10];
    shared.run(nested(floats(read("digits.in0.bin")), 1, 1, 8, 8), out);
    same("after the model's close", read("digits.out0.bin"), bytes(flat(out)));
    assertEquals(baseline + 2, NativeLibrary.nativeLiveHandles());
    shared.close();
    assertEquals(baseline, NativeLibrary.nativeLiveHandles());
  }

  private static void forget(int n) throws Exception {
    for (int i = 0; i < n; i++) {
      Interpreter it = new Interpreter(map("digits.mob"));
      it.run(new float[1][1][8][8], new float[1][10]);
    }
  }

  @Test
  public void cleanerFreesForgottenInterpreters() throws Exception {
    int baseline = liveAfterGc(NativeLibrary.nativeLiveHandles());
    forget(4);
    assertEquals("the safety net frees forgotten interpreters and their models", baseline, liveAfterGc(baseline));
  }

  /** Creates an Interpreter and a Model, closes neither, and returns weak references to them. */
  private static WeakReference<?>[] abandon() throws Exception {
    Model model = new Model(path("digits.mob"));
    Interpreter it = new Interpreter(map("digits.mob"));
    it.run(new float[1][1][8][8], new float[1][10]);
    return new WeakReference<?>[] {new WeakReference<>(model), new WeakReference<>(it)};
  }

  @Test
  public void safetyNetFreesUnreachableUnclosedInterpreter() throws Exception {
    int baseline = liveAfterGc(NativeLibrary.nativeLiveHandles());
    int pending = SafetyNet.pending();
    long freed = SafetyNet.freedUnclosed();
    WeakReference<?>[] refs = abandon();
    // the Interpreter's own Model was closed by its constructor: one entry each for `model`, `it`
    assertEquals(pending + 2, SafetyNet.pending());
    assertEquals(baseline + 3, NativeLibrary.nativeLiveHandles()); // two models, one interpreter
    assertEquals("the safety net frees both once unreachable", baseline, liveAfterGc(baseline));
    assertEquals(null, refs[0].get());
    assertEquals(null, refs[1].get());
    assertTrue("the daemon thread ran their cleanups", SafetyNet.freedUnclosed() - freed >= 2);
    assertEquals(pending, SafetyNet.pending());

    // close() deregisters at once, so the collector can never free a closed object again
    Interpreter it = new Interpreter(path("digits.mob"));
    assertEquals(pending + 1, SafetyNet.pending());
    it.close();
    assertEquals(pending, SafetyNet.pending());
    assertEquals(baseline, NativeLibrary.nativeLiveHandles());
  }

  @Test
  public void concurrentCloseFreesExactlyOnce() throws Exception {
    int baseline = NativeLibrary.nativeLiveHandles();
    int[] runs = new int[1];
    for (int round = 0; round < 50; round++) {
      final Interpreter it = new Interpreter(path("digits.mob"));
      final CountDownLatch go = new CountDownLatch(1);
      Thread[] ts = new Thread[4];
      for (int t = 0; t < ts.length; t++) {
        ts[t] = new Thread(() -> {
          try {
            go.await();
          } catch (InterruptedException e) {
            throw new AssertionError(e);
          }
          it.close();
        });
        ts[t].start();
      }
      go.countDown();
      for (Thread t : ts) {
        t.join();
      }
      assertEquals(baseline, NativeLibrary.nativeLiveHandles());
      assertThrows(IllegalStateException.class, it::getInputTensorCount);
    }
    // a cleanup registered with the net runs once whether clean() or the collector comes first
    SafetyNet.Entry e = SafetyNet.register(new Object(), () -> runs[0]++);
    assertTrue(e.clean());
    assertFalse(e.clean());
    assertEquals(1, runs[0]);
  }

  @Test
  public void mappedModelBufferIsKeptAlive() throws Exception {
    Interpreter it = new Interpreter(map("mnv2.mob")); // no reference to the buffer kept here
    try {
      it.resizeInput(0, ints(get("mnv2.in0.feed_shape")));
      for (int i = 0; i < 5; i++) {
        System.gc();
        byte[] garbage = new byte[1 << 20];
        garbage[i] = 1;
      }
      float[] out = new float[10];
      it.run(floats(read("mnv2.in0.bin")), out);
      same("mapped model after gc", read("mnv2.out0.bin"), bytes(out));
    } finally {
      it.close();
    }
  }

  private static long rssKb() throws IOException {
    for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
      if (line.startsWith("VmRSS:")) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    throw new AssertionError("no VmRSS in /proc/self/status");
  }

  private static void cycles(int n, float[][][][] x, float[][] out) throws Exception {
    for (int i = 0; i < n; i++) {
      try (Interpreter it = new Interpreter(path("digits.mob"))) {
        it.run(x, out);
      }
    }
  }

  /** RSS may grow by at most RSS_BOUND_KB over 1,000 create/run/close cycles (< 4 KB a cycle). */
  static final long RSS_BOUND_KB = 4096;

  @Test
  public void thousandCyclesDoNotGrowRss() throws Exception {
    float[][][][] x = nested(floats(read("digits.in0.bin")), 1, 1, 8, 8);
    float[][] out = new float[1][10];
    int baseline = NativeLibrary.nativeLiveHandles();
    cycles(200, x, out); // warm up: JIT, malloc arenas
    System.gc();
    long before = rssKb();
    cycles(1000, x, out);
    System.gc();
    long after = rssKb();
    System.out.println("RSS over 1000 create/run/close cycles: " + before + " kB -> " + after + " kB");
    same("last cycle", read("digits.out0.bin"), bytes(flat(out)));
    assertEquals(baseline, NativeLibrary.nativeLiveHandles());
    assertTrue("RSS grew by " + (after - before) + " kB (bound " + RSS_BOUND_KB + " kB)",
        after - before < RSS_BOUND_KB);
  }

  // ---- threads

  /** A thread's work; whatever it throws fails the test. */
  private interface Work {
    void run() throws Exception;
  }

  /** Runs `work` on `n` threads at once, joins them all, then fails with the first throwable any threw. */
  private static void onThreads(int n, Work work) throws InterruptedException {
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Thread[] threads = new Thread[n];
    for (int t = 0; t < threads.length; t++) {
      threads[t] = new Thread(() -> {
        try {
          work.run();
        } catch (Throwable e) {
          failure.compareAndSet(null, e);
        }
      });
      threads[t].start();
    }
    for (Thread t : threads) {
      t.join();
    }
    if (failure.get() != null) {
      throw new AssertionError(failure.get());
    }
  }

  @Test
  public void concurrentInterpretersOnOneModel() throws Exception {
    byte[] in = read("mnv2.in0.bin");
    byte[] want = read("mnv2.out0.bin");
    AtomicInteger runs = new AtomicInteger();
    try (Model model = new Model(map("mnv2.mob"))) {
      onThreads(4, () -> {
        try (Interpreter it = new Interpreter(model, null)) {
          it.resizeInput(0, ints(get("mnv2.in0.feed_shape")));
          ByteBuffer x = direct(in);
          for (int r = 0; r < 15; r++) {
            ByteBuffer ob = ByteBuffer.allocateDirect(want.length).order(ByteOrder.nativeOrder());
            it.run(x, ob);
            same("thread run " + r, want, bytes(ob, want.length));
            runs.incrementAndGet();
          }
        }
      });
    }
    assertEquals(60, runs.get());

    // one interpreter shared by threads: calls are serialized, every result intact
    try (Interpreter it = new Interpreter(path("mnv2.mob"))) {
      it.resizeInput(0, ints(get("mnv2.in0.feed_shape")));
      onThreads(3, () -> {
        for (int r = 0; r < 10; r++) {
          float[] out = new float[10];
          it.run(floats(in), out);
          same("shared interpreter", want, bytes(out));
        }
      });
    }
  }

  @Test
  public void cancelFromAnotherThread() throws Exception {
    byte[] in = read("mnv2.in0.bin");
    byte[] want = read("mnv2.out0.bin");
    try (Interpreter it = new Interpreter(path("mnv2.mob"))) {
      it.resizeInput(0, ints(get("mnv2.in0.feed_shape")));
      AtomicBoolean done = new AtomicBoolean();
      AtomicInteger cancelled = new AtomicInteger();
      AtomicReference<Throwable> failure = new AtomicReference<>();
      Thread worker = new Thread(() -> {
        try {
          float[] x = floats(in);
          for (int r = 0; r < 20000 && cancelled.get() == 0; r++) {
            try {
              it.run(x, new float[10]);
            } catch (MobconvException e) {
              if (e.status() != Status.CANCELLED) {
                throw e;
              }
              cancelled.incrementAndGet();
            }
          }
        } catch (Throwable e) {
          failure.set(e);
        } finally {
          done.set(true);
        }
      });
      worker.start();
      while (!done.get()) {
        it.cancel(); // never blocks, even while the worker is inside run()
        Thread.onSpinWait();
      }
      worker.join();
      if (failure.get() != null) {
        throw new AssertionError(failure.get());
      }
      assertEquals("a run was cancelled", 1, cancelled.get());
      float[] out = new float[10];
      it.run(floats(in), out); // usable after a cancelled run
      same("after cancel", want, bytes(out));
    }
  }

  @Test
  public void optionsAndVersion() throws Exception {
    Interpreter.Options o = new Interpreter.Options().setNumThreads(2).setAllowFp16(true)
        .setBackend(Interpreter.Options.Backend.OPENCL);
    assertEquals(2, o.getNumThreads());
    assertTrue(o.getAllowFp16());
    assertEquals(get("version"), Interpreter.runtimeVersion());
    try (Interpreter it = new Interpreter(path("digits.mob"), o)) {
      float[][] out = new float[1][10];
      it.run(nested(floats(read("digits.in0.bin")), 1, 1, 8, 8), out);
      // 2 threads, fp16 allowed (no fp16 arithmetic on x86: float32), OPENCL falls back to the CPU
      float[] want = floats(read("digits.out0.bin"));
      for (int k = 0; k < 10; k++) {
        assertEquals(want[k], out[0][k], 1e-5f);
      }
    }
    assertFalse(new Interpreter.Options().getAllowFp16());
  }
}
