// JNI glue of ai.mobconv.Model: create (file, direct ByteBuffer), delete, input/output counts,
// the signature and preprocessing the file records.
#include <jni.h>

#include <string>
#include <vector>

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
  return new_handle(env, st, model);
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
  return new_handle(env, st, model);
}

JNIEXPORT void JNICALL Java_ai_mobconv_Model_nativeDelete(JNIEnv* env, jclass, jlong handle) {
  delete_model(env, handle);
}

JNIEXPORT jint JNICALL Java_ai_mobconv_Model_nativeInputCount(JNIEnv* env, jclass, jlong handle) {
  mobrt_model* model = model_from(env, handle);
  return model ? mobrt_model_num_inputs(model) : 0;
}

JNIEXPORT jint JNICALL Java_ai_mobconv_Model_nativeOutputCount(JNIEnv* env, jclass, jlong handle) {
  mobrt_model* model = model_from(env, handle);
  return model ? mobrt_model_num_outputs(model) : 0;
}

JNIEXPORT jstring JNICALL Java_ai_mobconv_Model_nativeLayout(JNIEnv* env, jclass, jlong handle, jboolean input,
                                                            jint index) {
  mobrt_model* model = model_from(env, handle);
  if (model == nullptr) return nullptr;
  const char* s = input ? mobrt_model_input_layout(model, index) : mobrt_model_output_layout(model, index);
  if (s == nullptr) {
    throw_illegal_argument(env, std::string(input ? "input" : "output") + " index " + std::to_string(index) +
                                    " out of range");
    return nullptr;
  }
  return env->NewStringUTF(s);
}

// which: 0 mean, 1 scale (mobrt_model_input_mean / _scale).
JNIEXPORT jfloatArray JNICALL Java_ai_mobconv_Model_nativePreprocessing(JNIEnv* env, jclass, jlong handle,
                                                                       jint index, jint which) {
  mobrt_model* model = model_from(env, handle);
  if (model == nullptr) return nullptr;
  auto fn = which == 0 ? mobrt_model_input_mean : mobrt_model_input_scale;
  int n = fn(model, index, nullptr, 0);
  if (n < 0) {
    throw_illegal_argument(env, "input index " + std::to_string(index) + " out of range");
    return nullptr;
  }
  std::vector<float> v(static_cast<size_t>(n));
  if (n > 0 && fn(model, index, v.data(), n) != n) {
    throw_illegal_state(env, "preprocessing changed while read");
    return nullptr;
  }
  jfloatArray out = env->NewFloatArray(n);
  if (out != nullptr && n > 0) env->SetFloatArrayRegion(out, 0, n, v.data());
  return out;
}

JNIEXPORT jstring JNICALL Java_ai_mobconv_Model_nativeChannelOrder(JNIEnv* env, jclass, jlong handle, jint index) {
  mobrt_model* model = model_from(env, handle);
  if (model == nullptr) return nullptr;
  const char* s = mobrt_model_input_channel_order(model, index);
  if (s == nullptr) {
    throw_illegal_argument(env, "input index " + std::to_string(index) + " out of range");
    return nullptr;
  }
  return env->NewStringUTF(s);
}

}  // extern "C"
