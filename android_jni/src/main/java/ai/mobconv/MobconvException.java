package ai.mobconv;

/**
 * A call into the native runtime failed: the model file is malformed, a shape does not fit, an
 * invoke was cancelled, and so on. {@link #getMessage()} is the runtime's one-line message (the
 * C API's last error); {@link #status()} the C API's status.
 *
 * <p>Mistakes in the arguments that Java can see before calling the runtime (a Java array of the
 * wrong type or length for a tensor, a heap ByteBuffer where a direct one is needed) throw
 * {@link IllegalArgumentException} instead; use of a closed object throws
 * {@link IllegalStateException}.
 */
public final class MobconvException extends Exception {
  private static final long serialVersionUID = 1L;

  private final int statusCode;

  /** Called from the JNI glue with the C API's status and message. */
  MobconvException(int statusCode, String message) {
    super(message);
    this.statusCode = statusCode;
  }

  /** The C API's status; null for a code this binding does not know (a newer runtime). */
  public Status status() {
    return Status.fromCode(statusCode);
  }

  /** The C API's status value (mobrt_status). */
  public int statusCode() {
    return statusCode;
  }
}
