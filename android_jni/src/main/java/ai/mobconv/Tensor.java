package ai.mobconv;

import java.util.Arrays;

/**
 * An input or output of an {@link Interpreter} or a {@link Model}: name, data type, shape,
 * quantization parameters and byte size (the C API's {@code mobrt_tensor} accessors).
 *
 * <p>A Tensor is a view: it reads its owner each time, so the shape of an interpreter's tensor
 * follows {@link Interpreter#resizeInput} and invoke. Its methods throw {@link
 * IllegalStateException} once the owner is closed. Tensors of an Interpreter follow the
 * Interpreter's thread rules (their calls wait for a run in progress); tensors of a Model may be
 * read from any thread.
 */
public final class Tensor {
  static final int MODEL_INPUT = 0;
  static final int MODEL_OUTPUT = 1;
  static final int INPUT = 2;
  static final int OUTPUT = 3;

  /** What a Tensor reads through: a Model or an Interpreter. */
  interface Owner {
    /** The native handle, held until release(); IllegalStateException when closed. */
    long acquire();

    void release();
  }

  /**
   * Affine quantization: {@code real = scale * (q - zeroPoint)}. Per tensor: one scale; per axis:
   * one per slice along {@link #axis()}. Not quantized: no scales.
   */
  public static final class QuantizationParams {
    private final float[] scales;
    private final long[] zeroPoints;
    private final int axis;

    QuantizationParams(float[] scales, long[] zeroPoints, int axis) {
      this.scales = scales;
      this.zeroPoints = zeroPoints;
      this.axis = axis;
    }

    public boolean isQuantized() {
      return scales.length > 0;
    }

    /** The scales (a copy); empty when not quantized. */
    public float[] scales() {
      return scales.clone();
    }

    /** The zero points (a copy), one per scale. */
    public long[] zeroPoints() {
      return zeroPoints.clone();
    }

    /** The per-axis dimension; -1 when per tensor or not quantized. */
    public int axis() {
      return axis;
    }

    /** The scale of a per-tensor quantized tensor; 0 when not quantized. */
    public float scale() {
      return scales.length > 0 ? scales[0] : 0f;
    }

    /** The zero point of a per-tensor quantized tensor; 0 when not quantized. */
    public long zeroPoint() {
      return zeroPoints.length > 0 ? zeroPoints[0] : 0;
    }

    @Override
    public String toString() {
      return "QuantizationParams(scales=" + Arrays.toString(scales) + ", zeroPoints="
          + Arrays.toString(zeroPoints) + ", axis=" + axis + ")";
    }
  }

  private final Owner owner;
  private final int kind;
  private final int index;

  private Tensor(Owner owner, int kind, int index) {
    this.owner = owner;
    this.kind = kind;
    this.index = index;
  }

  static Tensor of(Owner owner, int kind, int index, int count) {
    if (index < 0 || index >= count) {
      String what = (kind == MODEL_INPUT || kind == INPUT) ? "input" : "output";
      throw new IllegalArgumentException(
          what + " index " + index + " out of range: there are " + count + " " + what + "s");
    }
    return new Tensor(owner, kind, index);
  }

  /** Index among the owner's inputs or outputs. */
  public int index() {
    return index;
  }

  /** Name from the file. */
  public String name() {
    long h = owner.acquire();
    try {
      return nativeName(h, kind, index);
    } finally {
      owner.release();
    }
  }

  public DataType dataType() {
    long h = owner.acquire();
    try {
      return DataType.fromCode(nativeDataType(h, kind, index));
    } finally {
      owner.release();
    }
  }

  /** Current shape (a dim still symbolic and unresolved is -1). */
  public int[] shape() {
    long h = owner.acquire();
    try {
      return nativeShape(h, kind, index);
    } finally {
      owner.release();
    }
  }

  public int numDimensions() {
    return shape().length;
  }

  /** Element count of the current shape; -1 while a dim is unresolved. */
  public long numElements() {
    long n = 1;
    for (int d : shape()) {
      if (d < 0) {
        return -1;
      }
      n *= d;
    }
    return n;
  }

  /** Bytes of the data for the current shape; 0 while a dim is unresolved. */
  public long numBytes() {
    long h = owner.acquire();
    try {
      return nativeNumBytes(h, kind, index);
    } finally {
      owner.release();
    }
  }

  public QuantizationParams quantizationParams() {
    long h = owner.acquire();
    try {
      return new QuantizationParams(
          nativeQuantScales(h, kind, index),
          nativeQuantZeroPoints(h, kind, index),
          nativeQuantAxis(h, kind, index));
    } finally {
      owner.release();
    }
  }

  @Override
  public String toString() {
    return "Tensor(" + name() + ", " + dataType().label() + ", " + Arrays.toString(shape()) + ")";
  }

  static native String nativeName(long owner, int kind, int index);

  static native int nativeDataType(long owner, int kind, int index);

  static native int[] nativeShape(long owner, int kind, int index);

  static native long nativeNumBytes(long owner, int kind, int index);

  static native float[] nativeQuantScales(long owner, int kind, int index);

  static native long[] nativeQuantZeroPoints(long owner, int kind, int index);

  static native int nativeQuantAxis(long owner, int kind, int index);
}
