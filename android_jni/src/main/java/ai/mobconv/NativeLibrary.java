package ai.mobconv;

/**
 * Loads libmobconv_jni (the JNI glue with the runtime linked in) once. On Android the Gradle
 * module packs it into the APK; on a desktop JDK pass {@code -Djava.library.path=<dir>}.
 */
final class NativeLibrary {
  static final String NAME = "mobconv_jni";

  static {
    System.loadLibrary(NAME); // once: class initialization is thread-safe
  }

  private NativeLibrary() {}

  /** Loads the library (by initializing this class). */
  static void load() {}

  /** The runtime's version ("0.1.0"). */
  static native String nativeVersion();

  /** Native models and interpreters not freed yet (for tests of close() and the SafetyNet). */
  static native int nativeLiveHandles();
}
