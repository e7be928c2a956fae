// JNI glue of ai.mobconv.Interpreter: create/delete, resize, inputs from direct ByteBuffers
// (pointed at in place when aligned) or primitive arrays (copied), invoke, outputs copied into
// Java memory, cancel. Each call checks the handle against the registry and every buffer against
// the tensor's byte size before touching memory.
#include <jni.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "jni_util.h"
#include "mobrt.h"

using namespace mobconv_jni;

namespace {

bool check(JNIEnv* env, mobrt_interpreter* it, mobrt_status st) {
  if (st == MOBRT_OK) return true;
  throw_mobconv(env, st, mobrt_interpreter_last_error(it));
  return false;
}

std::string where(const char* what, jint index, const mobrt_tensor* t) {
  const char* name = mobrt_tensor_name(t);
  return std::string(what) + " " + std::to_string(index) + " ('" + (name ? name : "") + "')";
}

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_ai_mobconv_Interpreter_nativeCreate(JNIEnv* env, jclass, jlong model_handle,
                                                                 jint threads, jboolean allow_fp16, jint backend) {
  mobrt_model* model = model_from(env, model_handle);
  if (model == nullptr) return 0;
  mobrt_options* opts = mobrt_options_create();
  if (opts == nullptr) {
    throw_mobconv(env, MOBRT_OUT_OF_MEMORY, "out of memory creating interpreter options");
    return 0;
  }
  mobrt_status st = mobrt_options_set_num_threads(opts, threads);
  if (st == MOBRT_OK) st = mobrt_options_set_allow_fp16(opts, allow_fp16 ? 1 : 0);
  if (st == MOBRT_OK) st = mobrt_options_set_backend(opts, static_cast<mobrt_backend>(backend));
  mobrt_interpreter* it = nullptr;
  if (st == MOBRT_OK) st = mobrt_interpreter_create(model, opts, &it);
  mobrt_options_delete(opts);
  return new_handle(env, st, it);
}

JNIEXPORT void JNICALL Java_ai_mobconv_Interpreter_nativeDelete(JNIEnv* env, jclass, jlong handle) {
  delete_interpreter(env, handle);
}

JNIEXPORT jint JNICALL Java_ai_mobconv_Interpreter_nativeInputCount(JNIEnv* env, jclass, jlong handle) {
  mobrt_interpreter* it = interpreter_from(env, handle);
  return it ? mobrt_interpreter_num_inputs(it) : 0;
}

JNIEXPORT jint JNICALL Java_ai_mobconv_Interpreter_nativeOutputCount(JNIEnv* env, jclass, jlong handle) {
  mobrt_interpreter* it = interpreter_from(env, handle);
  return it ? mobrt_interpreter_num_outputs(it) : 0;
}

static jint index_of(JNIEnv* env, jlong handle, jstring name, bool input) {
  mobrt_interpreter* it = interpreter_from(env, handle);
  if (it == nullptr) return -1;
  if (name == nullptr) {
    throw_illegal_argument(env, "name is null");
    return -1;
  }
  const char* s = env->GetStringUTFChars(name, nullptr);
  if (s == nullptr) return -1;
  int i = input ? mobrt_interpreter_input_index(it, s) : mobrt_interpreter_output_index(it, s);
  env->ReleaseStringUTFChars(name, s);
  return i;
}

JNIEXPORT jint JNICALL Java_ai_mobconv_Interpreter_nativeInputIndex(JNIEnv* env, jclass, jlong handle,
                                                                    jstring name) {
  return index_of(env, handle, name, true);
}

JNIEXPORT jint JNICALL Java_ai_mobconv_Interpreter_nativeOutputIndex(JNIEnv* env, jclass, jlong handle,
                                                                     jstring name) {
  return index_of(env, handle, name, false);
}

JNIEXPORT void JNICALL Java_ai_mobconv_Interpreter_nativeResizeInput(JNIEnv* env, jclass, jlong handle, jint index,
                                                                     jintArray dims) {
  mobrt_interpreter* it = interpreter_from(env, handle);
  if (it == nullptr) return;
  if (dims == nullptr) {
    throw_illegal_argument(env, "dims is null");
    return;
  }
  jsize rank = env->GetArrayLength(dims);
  if (rank > MOBRT_MAX_RANK) {
    throw_illegal_argument(env, "rank " + std::to_string(rank) + " exceeds " + std::to_string(MOBRT_MAX_RANK));
    return;
  }
  std::vector<jint> d(static_cast<size_t>(rank));
  if (rank > 0) env->GetIntArrayRegion(dims, 0, rank, d.data());
  std::vector<int64_t> d64(d.begin(), d.end());
  check(env, it, mobrt_interpreter_resize_input(it, index, rank, d64.empty() ? nullptr : d64.data()));
}

// Returns true when the interpreter now reads the caller's direct buffer in place.
JNIEXPORT jboolean JNICALL Java_ai_mobconv_Interpreter_nativeSetInput(JNIEnv* env, jclass, jlong handle, jint index,
                                                                      jobject src, jlong offset, jlong count) {
  mobrt_interpreter* it = interpreter_from(env, handle);
  if (it == nullptr) return JNI_FALSE;
  const mobrt_tensor* t = mobrt_interpreter_input_tensor(it, index);
  if (t == nullptr) {
    throw_illegal_argument(env, "input index " + std::to_string(index) + " out of range");
    return JNI_FALSE;
  }
  const size_t need = mobrt_tensor_byte_size(t);
  const size_t elem = mobrt_dtype_size(mobrt_tensor_dtype(t));
  if (count < 0 || static_cast<size_t>(count) != need) {
    throw_illegal_argument(env, where("input", index, t) + " needs " + std::to_string(need) + " bytes, got " +
                                    std::to_string(count));
    return JNI_FALSE;
  }
  JavaMemory mem;
  if (!java_memory(env, src, &mem)) return JNI_FALSE;
  if (!check_range(env, mem, offset, need, where("input", index, t))) return JNI_FALSE;
  if (!check_array_type(env, mem, mobrt_tensor_dtype(t), where("input", index, t))) return JNI_FALSE;
  if (mem.direct) {
    const char* p = static_cast<const char*>(mem.address) + offset;
    if (elem != 0 && reinterpret_cast<uintptr_t>(p) % elem == 0) {
      return check(env, it, mobrt_interpreter_set_input_pointer(it, index, p, need)) ? JNI_TRUE : JNI_FALSE;
    }
    check(env, it, mobrt_interpreter_set_input(it, index, p, need));
    return JNI_FALSE;
  }
  void* base = env->GetPrimitiveArrayCritical(static_cast<jarray>(src), nullptr);
  if (base == nullptr) {
    throw_mobconv(env, MOBRT_OUT_OF_MEMORY, "cannot access the Java array");
    return JNI_FALSE;
  }
  mobrt_status st = mobrt_interpreter_set_input(it, index, static_cast<const char*>(base) + offset, need);
  env->ReleasePrimitiveArrayCritical(static_cast<jarray>(src), base, JNI_ABORT);
  check(env, it, st);
  return JNI_FALSE;
}

JNIEXPORT void JNICALL Java_ai_mobconv_Interpreter_nativeClearInputPointer(JNIEnv* env, jclass, jlong handle,
                                                                           jint index) {
  mobrt_interpreter* it = interpreter_from(env, handle);
  if (it == nullptr) return;
  if (index < 0 || index >= mobrt_interpreter_num_inputs(it)) {
    throw_illegal_argument(env, "input index " + std::to_string(index) + " out of range");
    return;
  }
  check(env, it, mobrt_interpreter_set_input_pointer(it, index, nullptr, 0));
}

JNIEXPORT void JNICALL Java_ai_mobconv_Interpreter_nativeInvoke(JNIEnv* env, jclass, jlong handle) {
  mobrt_interpreter* it = interpreter_from(env, handle);
  if (it != nullptr) check(env, it, mobrt_interpreter_invoke(it));
}

JNIEXPORT void JNICALL Java_ai_mobconv_Interpreter_nativeCopyOutput(JNIEnv* env, jclass, jlong handle, jint index,
                                                                    jobject dst, jlong offset) {
  mobrt_interpreter* it = interpreter_from(env, handle);
  if (it == nullptr) return;
  const mobrt_tensor* t = mobrt_interpreter_output_tensor(it, index);
  if (t == nullptr) {
    throw_illegal_argument(env, "output index " + std::to_string(index) + " out of range");
    return;
  }
  const size_t need = mobrt_tensor_byte_size(t);
  const void* data = mobrt_tensor_data(t);
  if (data == nullptr && need != 0) {
    throw_illegal_state(env, where("output", index, t) + " has no data: run the model first");
    return;
  }
  JavaMemory mem;
  if (!java_memory(env, dst, &mem)) return;
  if (!check_range(env, mem, offset, need, where("output", index, t))) return;
  if (!check_array_type(env, mem, mobrt_tensor_dtype(t), where("output", index, t))) return;
  if (need == 0) return;
  if (mem.direct) {
    std::memcpy(static_cast<char*>(mem.address) + offset, data, need);
    return;
  }
  void* base = env->GetPrimitiveArrayCritical(static_cast<jarray>(dst), nullptr);
  if (base == nullptr) {
    throw_mobconv(env, MOBRT_OUT_OF_MEMORY, "cannot access the Java array");
    return;
  }
  std::memcpy(static_cast<char*>(base) + offset, data, need);
  env->ReleasePrimitiveArrayCritical(static_cast<jarray>(dst), base, 0);
}

JNIEXPORT void JNICALL Java_ai_mobconv_Interpreter_nativeCancel(JNIEnv* env, jclass, jlong handle) {
  mobrt_interpreter* it = interpreter_from(env, handle);
  if (it != nullptr) mobrt_interpreter_cancel(it);
}

}  // extern "C"
