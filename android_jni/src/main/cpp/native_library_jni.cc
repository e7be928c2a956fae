// JNI glue of ai.mobconv.NativeLibrary, and the library's load/unload hooks.
#include <jni.h>

#include "jni_util.h"
#include "mobrt.h"

extern "C" {

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM* vm, void* /*reserved*/) {
  JNIEnv* env = nullptr;
  if (vm->GetEnv(reinterpret_cast<void**>(&env), JNI_VERSION_1_6) != JNI_OK) return JNI_ERR;
  if (!mobconv_jni::cache_classes(env)) return JNI_ERR;
  return JNI_VERSION_1_6;
}

JNIEXPORT void JNICALL JNI_OnUnload(JavaVM* vm, void* /*reserved*/) {
  JNIEnv* env = nullptr;
  if (vm->GetEnv(reinterpret_cast<void**>(&env), JNI_VERSION_1_6) == JNI_OK) mobconv_jni::release_classes(env);
}

JNIEXPORT jstring JNICALL Java_ai_mobconv_NativeLibrary_nativeVersion(JNIEnv* env, jclass) {
  return env->NewStringUTF(mobrt_version());
}

JNIEXPORT jint JNICALL Java_ai_mobconv_NativeLibrary_nativeLiveHandles(JNIEnv*, jclass) {
  return mobconv_jni::live_handles();
}

}  // extern "C"
