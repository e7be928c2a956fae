// JNI glue of ai.mobconv.Tensor: the mobrt_tensor accessors. A Java Tensor names its owner
// handle, a kind (model input/output, interpreter input/output) and an index; the tensor is
// looked up again on every call, so a closed owner or a bad index throws instead of crashing.
#include <jni.h>

#include <climits>
#include <string>
#include <vector>

#include "jni_util.h"
#include "mobrt.h"

using namespace mobconv_jni;

namespace {

enum Kind { kModelInput = 0, kModelOutput = 1, kInput = 2, kOutput = 3 };

const mobrt_tensor* tensor_from(JNIEnv* env, jlong owner, jint kind, jint index) {
  const mobrt_tensor* t = nullptr;
  switch (kind) {
    case kModelInput:
    case kModelOutput: {
      mobrt_model* m = model_from(env, owner);
      if (m == nullptr) return nullptr;
      t = kind == kModelInput ? mobrt_model_input_tensor(m, index) : mobrt_model_output_tensor(m, index);
      break;
    }
    case kInput:
    case kOutput: {
      mobrt_interpreter* it = interpreter_from(env, owner);
      if (it == nullptr) return nullptr;
      t = kind == kInput ? mobrt_interpreter_input_tensor(it, index) : mobrt_interpreter_output_tensor(it, index);
      break;
    }
    default:
      throw_illegal_argument(env, "bad tensor kind " + std::to_string(kind));
      return nullptr;
  }
  if (t == nullptr)
    throw_illegal_argument(env, std::string(kind == kModelInput || kind == kInput ? "input" : "output") +
                                    " index " + std::to_string(index) + " out of range");
  return t;
}

}  // namespace

extern "C" {

JNIEXPORT jstring JNICALL Java_ai_mobconv_Tensor_nativeName(JNIEnv* env, jclass, jlong owner, jint kind,
                                                           jint index) {
  const mobrt_tensor* t = tensor_from(env, owner, kind, index);
  if (t == nullptr) return nullptr;
  const char* name = mobrt_tensor_name(t);
  return env->NewStringUTF(name ? name : "");
}

JNIEXPORT jint JNICALL Java_ai_mobconv_Tensor_nativeDataType(JNIEnv* env, jclass, jlong owner, jint kind,
                                                            jint index) {
  const mobrt_tensor* t = tensor_from(env, owner, kind, index);
  return t ? static_cast<jint>(mobrt_tensor_dtype(t)) : 0;
}

JNIEXPORT jintArray JNICALL Java_ai_mobconv_Tensor_nativeShape(JNIEnv* env, jclass, jlong owner, jint kind,
                                                              jint index) {
  const mobrt_tensor* t = tensor_from(env, owner, kind, index);
  if (t == nullptr) return nullptr;
  int rank = mobrt_tensor_rank(t);
  if (rank < 0 || rank > MOBRT_MAX_RANK) {
    throw_illegal_state(env, "tensor has no readable shape (rank " + std::to_string(rank) + ")");
    return nullptr;
  }
  std::vector<jint> dims(static_cast<size_t>(rank));
  for (int k = 0; k < rank; ++k) {
    int64_t d = mobrt_tensor_dim(t, k);
    if (d > INT_MAX) {
      throw_illegal_state(env, "dim " + std::to_string(k) + " (" + std::to_string(d) + ") does not fit a Java int");
      return nullptr;
    }
    dims[static_cast<size_t>(k)] = static_cast<jint>(d);
  }
  jintArray out = env->NewIntArray(rank);
  if (out != nullptr && rank > 0) env->SetIntArrayRegion(out, 0, rank, dims.data());
  return out;
}

JNIEXPORT jlong JNICALL Java_ai_mobconv_Tensor_nativeNumBytes(JNIEnv* env, jclass, jlong owner, jint kind,
                                                             jint index) {
  const mobrt_tensor* t = tensor_from(env, owner, kind, index);
  return t ? static_cast<jlong>(mobrt_tensor_byte_size(t)) : 0;
}

JNIEXPORT jfloatArray JNICALL Java_ai_mobconv_Tensor_nativeQuantScales(JNIEnv* env, jclass, jlong owner,
                                                                      jint kind, jint index) {
  const mobrt_tensor* t = tensor_from(env, owner, kind, index);
  if (t == nullptr) return nullptr;
  int n = mobrt_tensor_quant_scale_count(t);
  if (n < 0) n = 0;
  std::vector<jfloat> v(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) v[static_cast<size_t>(k)] = mobrt_tensor_quant_scale(t, k);
  jfloatArray out = env->NewFloatArray(n);
  if (out != nullptr && n > 0) env->SetFloatArrayRegion(out, 0, n, v.data());
  return out;
}

JNIEXPORT jlongArray JNICALL Java_ai_mobconv_Tensor_nativeQuantZeroPoints(JNIEnv* env, jclass, jlong owner,
                                                                         jint kind, jint index) {
  const mobrt_tensor* t = tensor_from(env, owner, kind, index);
  if (t == nullptr) return nullptr;
  int n = mobrt_tensor_quant_scale_count(t);
  if (n < 0) n = 0;
  std::vector<jlong> v(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) v[static_cast<size_t>(k)] = mobrt_tensor_quant_zero_point(t, k);
  jlongArray out = env->NewLongArray(n);
  if (out != nullptr && n > 0) env->SetLongArrayRegion(out, 0, n, v.data());
  return out;
}

JNIEXPORT jint JNICALL Java_ai_mobconv_Tensor_nativeQuantAxis(JNIEnv* env, jclass, jlong owner, jint kind,
                                                             jint index) {
  const mobrt_tensor* t = tensor_from(env, owner, kind, index);
  return t ? mobrt_tensor_quant_axis(t) : -1;
}

}  // extern "C"
