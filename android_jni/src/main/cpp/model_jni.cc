// JNI glue of ai.mobconv.Model: create (file, direct ByteBuffer), delete, input/output counts.
#include <jni.h>

#include <string>

#include "jni_util.h"
#include "mobrt.h"

using namespace mobconv_jni;

extern "C" {

JNIEXPORT jlong JNICALL Java_ai_mobconv_Model_nativeCreateFromFile(JNIEnv* env, jclass, jstring path) {
  if (path == nullptr) {
    throw_illegal_argument(env, "model path is null");
    return 0;
  }
  const char* p = env->GetStringUTFChars(path, nullptr);
  if (p == nullptr) return 0;
  mobrt_model* model = nullptr;
  mobrt_status st = mobrt_model_create_from_file(p, &model);
  env->ReleaseStringUTFChars(path, p);
  if (st != MOBRT_OK) {
    throw_mobconv(env, st, mobrt_global_last_error());
    return 0;
  }
  register_model(model);
  return reinterpret_cast<jlong>(model);
}

// Zero copy when the data is 64-byte aligned (the runtime's rule); Java keeps the buffer alive.
JNIEXPORT jlong JNICALL Java_ai_mobconv_Model_nativeCreateFromBuffer(JNIEnv* env, jclass, jobject buffer,
                                                                     jlong offset, jlong size) {
  JavaMemory mem;
  if (!java_memory(env, buffer, &mem)) return 0;
  if (!mem.direct) {
    throw_illegal_argument(env, "model buffer must be a direct ByteBuffer");
    return 0;
  }
  if (size <= 0) {
    throw_illegal_argument(env, "model buffer is empty (" + std::to_string(size) + " bytes remaining)");
    return 0;
  }
  if (!check_range(env, mem, offset, static_cast<size_t>(size), "model")) return 0;
  mobrt_model* model = nullptr;
  mobrt_status st = mobrt_model_create_from_buffer(static_cast<char*>(mem.address) + offset,
                                                   static_cast<size_t>(size), /*copy=*/0, &model);
  if (st != MOBRT_OK) {
    throw_mobconv(env, st, mobrt_global_last_error());
    return 0;
  }
  register_model(model);
  return reinterpret_cast<jlong>(model);
}

JNIEXPORT void JNICALL Java_ai_mobconv_Model_nativeDelete(JNIEnv* env, jclass, jlong handle) {
  auto* model = reinterpret_cast<mobrt_model*>(static_cast<intptr_t>(handle));
  if (model == nullptr) return;  // already freed by close()
  if (!unregister_model(model)) {
    throw_illegal_state(env, "not a live Model handle (closed or invalid)");
    return;
  }
  mobrt_model_delete(model);
}

JNIEXPORT jint JNICALL Java_ai_mobconv_Model_nativeInputCount(JNIEnv* env, jclass, jlong handle) {
  mobrt_model* model = model_from(env, handle);
  return model ? mobrt_model_num_inputs(model) : 0;
}

JNIEXPORT jint JNICALL Java_ai_mobconv_Model_nativeOutputCount(JNIEnv* env, jclass, jlong handle) {
  mobrt_model* model = model_from(env, handle);
  return model ? mobrt_model_num_outputs(model) : 0;
}

}  // extern "C"
