package ai.mobconv;

import java.io.File;
import java.nio.ByteBuffer;

/**
 * A loaded, validated {@code .mob} model (the C API's {@code mobrt_model}).
 *
 * <p>A Model is immutable: any number of {@link Interpreter}s on any threads may share one (create
 * one Interpreter per thread to run in parallel). It is freed when it is closed and the last
 * Interpreter created from it is closed, so closing a Model that Interpreters still use is safe.
 * After {@link #close()} its own methods throw {@link IllegalStateException}. A Model never closed
 * is freed once unreachable (a package-private PhantomReference safety net, {@code SafetyNet}, that
 * works on every Android version), but close it (try-with-resources) to free the memory map at a
 * known time.
 */
public final class Model implements AutoCloseable {
  static {
    NativeLibrary.load();
  }

  /** The native model shared by this Model and the Interpreters created from it. */
  static final class State implements Runnable {
    final NativeHandle handle;
    private ByteBuffer keepAlive; // the caller's buffer the native model reads in place
    private int refs = 1;

    State(long model, ByteBuffer keepAlive) {
      this.handle = new NativeHandle("Model", model);
      this.keepAlive = keepAlive;
    }

    synchronized void ref() {
      if (refs == 0) {
        throw new IllegalStateException("Model is closed");
      }
      refs++;
    }

    synchronized void unref() {
      if (refs > 0 && --refs == 0) {
        nativeDelete(handle.take());
        keepAlive = null;
      }
    }

    /** The Model's own reference, dropped by close() or by the SafetyNet. */
    @Override
    public void run() {
      unref();
    }
  }

  final State state;
  private final SafetyNet.Entry cleanable;
  private volatile boolean closed;

  /** Maps and validates the file at {@code path} (zero copy: weights are used in place). */
  public Model(String path) throws MobconvException {
    if (path == null) {
      throw new IllegalArgumentException("model path is null");
    }
    state = new State(nativeCreateFromFile(path), null);
    cleanable = SafetyNet.register(this, state);
  }

  /** Maps and validates {@code file}. */
  public Model(File file) throws MobconvException {
    this(file == null ? null : file.getPath());
  }

  /**
   * Validates the model in {@code buffer} (a direct ByteBuffer, e.g. a {@link
   * java.nio.MappedByteBuffer} of an asset, from its position to its limit). Zero copy when the
   * data is 64-byte aligned (a mapped file is): the runtime reads the buffer in place, and this
   * Model keeps a reference to it until the native model is freed. An unaligned buffer is copied.
   */
  public Model(ByteBuffer buffer) throws MobconvException {
    if (buffer == null || !buffer.isDirect()) {
      throw new IllegalArgumentException(
          "model buffer must be a direct ByteBuffer (ByteBuffer.allocateDirect or a MappedByteBuffer), got "
              + (buffer == null ? "null" : "a heap buffer"));
    }
    state =
        new State(nativeCreateFromBuffer(buffer, buffer.position(), buffer.remaining()), buffer);
    cleanable = SafetyNet.register(this, state);
  }

  public int getInputTensorCount() {
    long h = acquire();
    try {
      return nativeInputCount(h);
    } finally {
      release();
    }
  }

  public int getOutputTensorCount() {
    long h = acquire();
    try {
      return nativeOutputCount(h);
    } finally {
      release();
    }
  }

  /** Input {@code index} as the file declares it (a symbolic dim is -1; no data). */
  public Tensor getInputTensor(int index) {
    return Tensor.of(owner, Tensor.MODEL_INPUT, index, getInputTensorCount());
  }

  /** Output {@code index} as the file declares it. */
  public Tensor getOutputTensor(int index) {
    return Tensor.of(owner, Tensor.MODEL_OUTPUT, index, getOutputTensorCount());
  }

  /** Layout the file records for input {@code index}: "NCHW", "NHWC" or "" (none). */
  public String getInputLayout(int index) {
    return layout(true, index);
  }

  /** Layout the file records for output {@code index}: "NCHW", "NHWC" or "" (none). */
  public String getOutputLayout(int index) {
    return layout(false, index);
  }

  private String layout(boolean input, int index) {
    long h = acquire();
    try {
      return nativeLayout(h, input, index);
    } finally {
      release();
    }
  }

  /**
   * Per-channel mean of the preprocessing the app applies before feeding input {@code index}:
   * {@code model_input[c] = (raw[channelOrder][c] - mean[c]) * scale[c]}. Empty when the file
   * records none (a .mob file records at most one, for input 0).
   */
  public float[] getInputMean(int index) {
    return preprocessing(index, 0);
  }

  /** Per-channel scale of that preprocessing; empty when none is recorded. */
  public float[] getInputScale(int index) {
    return preprocessing(index, 1);
  }

  /** Channel order the raw image must have: "RGB", "BGR" or "" (none recorded). */
  public String getInputChannelOrder(int index) {
    long h = acquire();
    try {
      return nativeChannelOrder(h, index);
    } finally {
      release();
    }
  }

  private float[] preprocessing(int index, int which) {
    long h = acquire();
    try {
      return nativePreprocessing(h, index, which);
    } finally {
      release();
    }
  }

  /** Drops this Model's reference; the native model is freed with its last Interpreter. */
  @Override
  public void close() {
    closed = true;
    cleanable.clean();
  }

  long acquire() {
    if (closed) {
      throw new IllegalStateException("Model is closed");
    }
    return state.handle.acquire();
  }

  void release() {
    state.handle.release();
  }

  private final Tensor.Owner owner =
      new Tensor.Owner() {
        @Override
        public long acquire() {
          return Model.this.acquire();
        }

        @Override
        public void release() {
          Model.this.release();
        }
      };

  /** A new reference for an Interpreter; IllegalStateException when closed. */
  State share() {
    if (closed) {
      throw new IllegalStateException("Model is closed");
    }
    state.ref();
    return state;
  }

  static native long nativeCreateFromFile(String path) throws MobconvException;

  static native long nativeCreateFromBuffer(ByteBuffer buffer, long offset, long size)
      throws MobconvException;

  static native void nativeDelete(long model);

  static native int nativeInputCount(long model);

  static native int nativeOutputCount(long model);

  static native String nativeLayout(long model, boolean input, int index);

  static native float[] nativePreprocessing(long model, int index, int which);

  static native String nativeChannelOrder(long model, int index);
}
