package ai.mobconv;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Collections;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Runs a {@code .mob} model with the mobconv runtime (the C API's {@code mobrt_interpreter}).
 *
 * <pre>{@code
 * try (Interpreter it = new Interpreter("/data/local/tmp/digits.mob")) {
 *   float[][][][] image = new float[1][1][8][8]; // NCHW, values 0..16
 *   float[][] probs = new float[1][10];
 *   it.run(image, probs);
 * }
 * }</pre>
 *
 * <h2>Data</h2>
 *
 * Inputs and outputs are given as
 *
 * <ul>
 *   <li>direct {@link ByteBuffer}s in {@link ByteOrder#nativeOrder()} (from position to limit;
 *       positions are not changed). An input buffer is read in place during the run (zero copy)
 *       when its address is aligned to the element size, else copied once; an output buffer
 *       receives one copy of the output.
 *   <li>Java arrays: flat {@code float[]} (float32), {@code byte[]} (int8, uint8, bool), {@code
 *       int[]} (int32), {@code long[]} (int64) with the tensor's element count, or nested arrays of
 *       those ({@code float[1][3][224][224]}) with the tensor's shape. A nested input array of
 *       another shape resizes the input first (as {@link #resizeInput}); a nested output array
 *       must have the output's shape after the run.
 * </ul>
 *
 * A wrong Java type, element count or shape throws {@link IllegalArgumentException} before
 * anything runs; a failure in the runtime throws {@link MobconvException} with its message.
 *
 * <h2>Threads</h2>
 *
 * These rules match the C API's (runtime/include/mobrt.h, "THREAD SAFETY"):
 *
 * <ul>
 *   <li>A {@link Model} is immutable and may be shared by Interpreters on any threads. For
 *       parallel inference create one Interpreter per thread over one shared Model.
 *   <li>An Interpreter runs one call at a time. Where the C API refuses an overlapping call with
 *       MOBRT_BUSY, this class serializes: a call from a second thread waits for the call in
 *       progress (so sharing an Interpreter between threads is safe, but not parallel).
 *   <li>{@link #cancel()} is the exception: any thread may call it while another is inside {@link
 *       #run}; the run then throws MobconvException with {@link Status#CANCELLED} and the
 *       Interpreter stays usable.
 *   <li>{@link #close()} waits for a call in progress to return, then frees the native memory;
 *       every later call throws {@link IllegalStateException}; close() is idempotent and may race
 *       with other close() calls and with the safety net (the memory is freed exactly once). An
 *       Interpreter never closed is freed once unreachable by a package-private PhantomReference
 *       safety net (a daemon thread, "mobconv-cleaner"; works from Android API 21, where {@code
 *       java.lang.ref.Cleaner} needs API 33), but close it anyway: the native arena is large and
 *       the collector may run late.
 * </ul>
 */
public final class Interpreter implements AutoCloseable {
  static {
    NativeLibrary.load();
  }

  /** Options of a new Interpreter (copied at creation). */
  public static final class Options {
    /** Where kernels run. */
    public enum Backend {
      /** The CPU kernels (default). */
      CPU(0),
      /** Reserved for a GPU backend: falls back to the CPU in this version. */
      OPENCL(1);

      final int code;

      Backend(int code) {
        this.code = code;
      }
    }

    private int numThreads = 1;
    private boolean allowFp16;
    private Backend backend = Backend.CPU;

    /** Threads of the interpreter's fixed pool (>= 1; default 1). */
    public Options setNumThreads(int threads) {
      if (threads < 1) {
        throw new IllegalArgumentException("threads must be >= 1, got " + threads);
      }
      numThreads = threads;
      return this;
    }

    /**
     * Lets Conv/Gemm/MatMul compute in float16 on CPUs with fp16 arithmetic (ARMv8.2; about 1e-3
     * relative error). Elsewhere it changes nothing. Default false.
     */
    public Options setAllowFp16(boolean allow) {
      allowFp16 = allow;
      return this;
    }

    /** Placeholder for a GPU backend (OPENCL runs on the CPU in this version). */
    public Options setBackend(Backend backend) {
      if (backend == null) {
        throw new IllegalArgumentException("backend is null");
      }
      this.backend = backend;
      return this;
    }

    public int getNumThreads() {
      return numThreads;
    }

    public boolean getAllowFp16() {
      return allowFp16;
    }

    public Backend getBackend() {
      return backend;
    }
  }

  /** Frees the native interpreter, then drops its reference on the model. */
  private static final class Cleanup implements Runnable {
    final NativeHandle handle;
    final Model.State model;

    Cleanup(NativeHandle handle, Model.State model) {
      this.handle = handle;
      this.model = model;
    }

    @Override
    public void run() {
      nativeDelete(handle.take());
      model.unref();
    }
  }

  private final NativeHandle handle;
  private final SafetyNet.Entry cleanable;
  private final ReentrantLock callLock = new ReentrantLock();
  private final int inputCount;
  private final int outputCount;

  /** Loads the model file at {@code path} with default options. */
  public Interpreter(String path) throws MobconvException {
    this(path, null);
  }

  public Interpreter(String path, Options options) throws MobconvException {
    this(new Model(path), options, true);
  }

  public Interpreter(File file) throws MobconvException {
    this(file, null);
  }

  public Interpreter(File file, Options options) throws MobconvException {
    this(new Model(file), options, true);
  }

  /**
   * Uses the model in a direct {@link ByteBuffer}, typically a {@link java.nio.MappedByteBuffer}
   * (zero copy; see {@link Model#Model(ByteBuffer)}). The buffer is kept referenced until the
   * native model is freed; do not change its contents meanwhile.
   */
  public Interpreter(ByteBuffer buffer) throws MobconvException {
    this(buffer, null);
  }

  public Interpreter(ByteBuffer buffer, Options options) throws MobconvException {
    this(new Model(buffer), options, true);
  }

  /** An interpreter over a shared model (the model may be closed before this interpreter). */
  public Interpreter(Model model, Options options) throws MobconvException {
    this(model, options, false);
  }

  private Interpreter(Model model, Options options, boolean ownsModel) throws MobconvException {
    if (model == null) {
      throw new IllegalArgumentException("model is null");
    }
    Options o = options != null ? options : new Options();
    Model.State state;
    try {
      state = model.share();
    } finally {
      if (ownsModel) {
        model.close(); // our reference from share() keeps it alive
      }
    }
    long it;
    try {
      long m = state.handle.acquire();
      try {
        it = nativeCreate(m, o.numThreads, o.allowFp16, o.backend.code);
      } finally {
        state.handle.release();
      }
    } catch (MobconvException | RuntimeException e) {
      state.unref();
      throw e;
    }
    handle = new NativeHandle("Interpreter", it);
    cleanable = SafetyNet.register(this, new Cleanup(handle, state));
    inputCount = nativeInputCount(it);
    outputCount = nativeOutputCount(it);
  }

  public int getInputTensorCount() {
    acquire();
    release();
    return inputCount;
  }

  public int getOutputTensorCount() {
    acquire();
    release();
    return outputCount;
  }

  public Tensor getInputTensor(int index) {
    return Tensor.of(owner, Tensor.INPUT, index, getInputTensorCount());
  }

  public Tensor getOutputTensor(int index) {
    return Tensor.of(owner, Tensor.OUTPUT, index, getOutputTensorCount());
  }

  /** Index of the input named {@code name}; IllegalArgumentException if there is none. */
  public int getInputIndex(String name) {
    return index(name, true);
  }

  /** Index of the output named {@code name}; IllegalArgumentException if there is none. */
  public int getOutputIndex(String name) {
    return index(name, false);
  }

  private int index(String name, boolean input) {
    if (name == null) {
      throw new IllegalArgumentException("name is null");
    }
    long h = acquire();
    try {
      int i = input ? nativeInputIndex(h, name) : nativeOutputIndex(h, name);
      if (i < 0) {
        throw new IllegalArgumentException("no " + (input ? "input" : "output") + " named '"
            + name + "'");
      }
      return i;
    } finally {
      release();
    }
  }

  /**
   * Sets input {@code index} to {@code dims}: fixed dims of the file must match, symbolic ones
   * take any size. Outputs are re-inferred.
   */
  public void resizeInput(int index, int[] dims) throws MobconvException {
    checkIndex(index, inputCount, "input");
    if (dims == null) {
      throw new IllegalArgumentException("dims is null");
    }
    long h = acquire();
    try {
      nativeResizeInput(h, index, dims);
    } finally {
      release();
    }
  }

  /** Runs a model with one input and one output (see the class comment for the data types). */
  public void run(Object input, Object output) throws MobconvException {
    runForMultipleInputsOutputs(new Object[] {input}, Collections.singletonMap(0, output));
  }

  /**
   * Runs the model: {@code inputs[i]} feeds input i (every input must be given), then each entry
   * of {@code outputs} receives output {@code key} (outputs not in the map are not copied).
   */
  public void runForMultipleInputsOutputs(Object[] inputs, Map<Integer, Object> outputs)
      throws MobconvException {
    if (inputs == null || inputs.length != inputCount) {
      throw new IllegalArgumentException("the model has " + inputCount + " input(s), got "
          + (inputs == null ? "null" : inputs.length));
    }
    if (outputs == null) {
      throw new IllegalArgumentException("outputs map is null");
    }
    for (Integer k : outputs.keySet()) {
      checkIndex(k == null ? -1 : k, outputCount, "output");
    }
    long h = acquire();
    try {
      // the Java type of every output is checked before the run (its size after: shapes may
      // depend on the data)
      for (Map.Entry<Integer, Object> e : outputs.entrySet()) {
        int k = e.getKey();
        DataType type = DataType.fromCode(Tensor.nativeDataType(h, Tensor.OUTPUT, k));
        Object v = e.getValue();
        if (v instanceof ByteBuffer) {
          checkBuffer(h, Tensor.OUTPUT, k, (ByteBuffer) v, type);
        } else if (ArrayData.leafType(v) == null || !ArrayData.accepts(ArrayData.leafType(v), type)) {
          throw new IllegalArgumentException(describe(h, Tensor.OUTPUT, k) + " cannot take "
              + ArrayData.javaName(v) + " (use a direct ByteBuffer or an array of "
              + javaTypeFor(type) + ")");
        }
      }
    } catch (RuntimeException e) {
      release();
      throw e;
    }
    boolean[] pointed = new boolean[inputCount];
    try {
      // resize every input a nested array gives a new shape before setting any: with several
      // symbolic inputs the interpreter is ready only once all of them have concrete shapes
      for (int i = 0; i < inputCount; i++) {
        Object v = inputs[i];
        if (ArrayData.leafType(v) != null && !ArrayData.isFlat(v)) {
          int[] shape = ArrayData.shapeOf(v);
          if (!Arrays.equals(shape, Tensor.nativeShape(h, Tensor.INPUT, i))) {
            nativeResizeInput(h, i, shape);
          }
        }
      }
      for (int i = 0; i < inputCount; i++) {
        pointed[i] = setInput(h, i, inputs[i]);
      }
      nativeInvoke(h);
      for (Map.Entry<Integer, Object> e : outputs.entrySet()) {
        copyOutput(h, e.getKey(), e.getValue());
      }
    } finally {
      try {
        for (int i = 0; i < inputCount; i++) {
          if (pointed[i]) {
            nativeClearInputPointer(h, i); // the caller's buffer may be freed after run()
          }
        }
      } finally {
        release();
      }
    }
  }

  /**
   * Asks a {@link #run} in progress on another thread to stop before its next operator; it then
   * throws MobconvException with {@link Status#CANCELLED}. Callable from any thread, does not
   * wait; ignored when nothing runs (the next run starts uncancelled) or once closed.
   */
  public void cancel() {
    long h = handle.tryAcquire();
    if (h == 0) {
      return;
    }
    try {
      nativeCancel(h);
    } finally {
      handle.release();
    }
  }

  /** Frees the native interpreter (waits for a call in progress). Idempotent. */
  @Override
  public void close() {
    cleanable.clean();
  }

  /** The native handle, held (and other calls on this interpreter waiting) until release(). */
  long acquire() {
    callLock.lock();
    try {
      return handle.acquire();
    } catch (RuntimeException e) {
      callLock.unlock();
      throw e;
    }
  }

  void release() {
    handle.release();
    callLock.unlock();
  }

  /** How this interpreter's Tensors reach it. */
  private final Tensor.Owner owner =
      new Tensor.Owner() {
        @Override
        public long acquire() {
          return Interpreter.this.acquire();
        }

        @Override
        public void release() {
          Interpreter.this.release();
        }
      };

  /** The runtime's version ("0.1.0"). */
  public static String runtimeVersion() {
    return NativeLibrary.nativeVersion();
  }

  private static void checkIndex(int index, int count, String what) {
    if (index < 0 || index >= count) {
      throw new IllegalArgumentException(
          what + " index " + index + " out of range: the model has " + count + " " + what + "(s)");
    }
  }

  private String describe(long h, int kind, int index) {
    return (kind == Tensor.INPUT ? "input " : "output ") + index + " ('"
        + Tensor.nativeName(h, kind, index) + "', "
        + DataType.fromCode(Tensor.nativeDataType(h, kind, index)).label() + " "
        + Arrays.toString(Tensor.nativeShape(h, kind, index)) + ")";
  }

  /** Feeds input i; true when the interpreter now points at the caller's buffer. */
  private boolean setInput(long h, int i, Object value) throws MobconvException {
    for (int d : Tensor.nativeShape(h, Tensor.INPUT, i)) {
      if (d < 0) {
        throw new IllegalArgumentException(describe(h, Tensor.INPUT, i)
            + " has a symbolic dim: call resizeInput first, or pass a nested array of the shape");
      }
    }
    long bytes = Tensor.nativeNumBytes(h, Tensor.INPUT, i);
    DataType type = DataType.fromCode(Tensor.nativeDataType(h, Tensor.INPUT, i));
    if (value instanceof ByteBuffer) {
      ByteBuffer b = checkBuffer(h, Tensor.INPUT, i, (ByteBuffer) value, type);
      if (b.remaining() != bytes) {
        throw new IllegalArgumentException(describe(h, Tensor.INPUT, i) + " needs " + bytes
            + " bytes, the ByteBuffer has " + b.remaining() + " remaining");
      }
      return nativeSetInput(h, i, b, b.position(), b.remaining());
    }
    Object flat = arrayFor(h, Tensor.INPUT, i, value, type, true);
    nativeSetInput(h, i, flat, 0, bytes);
    return false;
  }

  private void copyOutput(long h, int i, Object dst) throws MobconvException {
    long bytes = Tensor.nativeNumBytes(h, Tensor.OUTPUT, i);
    DataType type = DataType.fromCode(Tensor.nativeDataType(h, Tensor.OUTPUT, i));
    if (dst instanceof ByteBuffer) {
      ByteBuffer b = checkBuffer(h, Tensor.OUTPUT, i, (ByteBuffer) dst, type);
      if (b.remaining() < bytes) {
        throw new IllegalArgumentException(describe(h, Tensor.OUTPUT, i) + " needs " + bytes
            + " bytes, the ByteBuffer has " + b.remaining() + " remaining");
      }
      nativeCopyOutput(h, i, b, b.position());
      return;
    }
    Object flat = arrayFor(h, Tensor.OUTPUT, i, dst, type, false);
    nativeCopyOutput(h, i, flat, 0);
    if (flat != dst) {
      ArrayData.unflatten(flat, dst, ArrayData.shapeOf(dst));
    }
  }

  private ByteBuffer checkBuffer(long h, int kind, int i, ByteBuffer b, DataType type) {
    if (kind == Tensor.OUTPUT && b.isReadOnly()) {
      throw new IllegalArgumentException(
          describe(h, Tensor.OUTPUT, i) + ": the output ByteBuffer is read-only");
    }
    if (!b.isDirect()) {
      throw new IllegalArgumentException(describe(h, kind, i)
          + ": the ByteBuffer must be direct (ByteBuffer.allocateDirect(n).order(ByteOrder.nativeOrder()))");
    }
    if (type.byteSize() > 1 && b.order() != ByteOrder.nativeOrder()) {
      throw new IllegalArgumentException(describe(h, kind, i)
          + ": the ByteBuffer must be in native byte order (" + ByteOrder.nativeOrder() + ")");
    }
    return b;
  }

  /** The flat array to hand to native code for a Java array value (checked against the tensor). */
  private Object arrayFor(long h, int kind, int i, Object value, DataType type, boolean input) {
    Class<?> leaf = ArrayData.leafType(value);
    if (leaf == null || !ArrayData.accepts(leaf, type)) {
      throw new IllegalArgumentException(describe(h, kind, i) + " cannot take "
          + ArrayData.javaName(value) + " (use a direct ByteBuffer or an array of "
          + javaTypeFor(type) + ")");
    }
    int[] want = Tensor.nativeShape(h, kind, i);
    if (ArrayData.isFlat(value)) {
      long n = ArrayData.elements(want);
      if (java.lang.reflect.Array.getLength(value) != n) {
        throw new IllegalArgumentException(describe(h, kind, i) + " has " + n
            + " elements, the " + ArrayData.javaName(value) + " has "
            + java.lang.reflect.Array.getLength(value));
      }
      return value;
    }
    int[] shape = ArrayData.shapeOf(value);
    if (!Arrays.equals(shape, want)) {
      throw new IllegalArgumentException(describe(h, kind, i) + " does not fit a Java array of shape "
          + Arrays.toString(shape) + (input ? " (resizeInput first to change the shape)" : ""));
    }
    return input ? ArrayData.flatten(value, leaf, shape) : ArrayData.newFlat(leaf, shape);
  }

  private static String javaTypeFor(DataType t) {
    switch (t) {
      case FLOAT32:
        return "float";
      case INT8:
      case UINT8:
      case BOOL:
        return "byte";
      case INT32:
        return "int";
      case INT64:
        return "long";
      default:
        return "no Java type: " + t.label();
    }
  }

  static native long nativeCreate(long model, int threads, boolean allowFp16, int backend)
      throws MobconvException;

  static native void nativeDelete(long interpreter);

  static native int nativeInputCount(long interpreter);

  static native int nativeOutputCount(long interpreter);

  static native int nativeInputIndex(long interpreter, String name);

  static native int nativeOutputIndex(long interpreter, String name);

  static native void nativeResizeInput(long interpreter, int index, int[] dims)
      throws MobconvException;

  /**
   * Copies (array, unaligned buffer) or points the interpreter at (aligned direct buffer) {@code
   * byteCount} bytes of {@code src} from {@code byteOffset}; true when it points.
   */
  static native boolean nativeSetInput(long interpreter, int index, Object src, long byteOffset,
      long byteCount) throws MobconvException;

  static native void nativeClearInputPointer(long interpreter, int index);

  static native void nativeInvoke(long interpreter) throws MobconvException;

  /** Copies output {@code index} (its byte size) into {@code dst} from {@code byteOffset}. */
  static native void nativeCopyOutput(long interpreter, int index, Object dst, long byteOffset)
      throws MobconvException;

  static native void nativeCancel(long interpreter);
}
