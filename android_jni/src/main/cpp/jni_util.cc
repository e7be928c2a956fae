#include "jni_util.h"

#include <cstdint>
#include <mutex>
#include <unordered_set>

namespace mobconv_jni {
namespace {

// The live handles of one kind and the message a handle not among them throws.
struct Registry {
  std::unordered_set<const void*> live;
  const char* not_live;
};

std::mutex g_mutex;
Registry g_models{{}, "not a live Model handle (closed or invalid)"};
Registry g_interpreters{{}, "not a live Interpreter handle (closed or invalid)"};

jclass g_mobconv_exception = nullptr;
jmethodID g_mobconv_exception_init = nullptr;
jclass g_illegal_argument = nullptr;
jclass g_illegal_state = nullptr;
jclass g_byte_array = nullptr;
jclass g_float_array = nullptr;
jclass g_int_array = nullptr;
jclass g_long_array = nullptr;

jclass global_class(JNIEnv* env, const char* name) {
  jclass local = env->FindClass(name);
  if (local == nullptr) return nullptr;
  jclass global = static_cast<jclass>(env->NewGlobalRef(local));
  env->DeleteLocalRef(local);
  return global;
}

template <typename T>
T* pointer(jlong handle) {
  return reinterpret_cast<T*>(static_cast<intptr_t>(handle));
}

template <typename T>
T* live_from(JNIEnv* env, jlong handle, const Registry& registry) {
  T* p = pointer<T>(handle);
  bool live = false;
  if (p != nullptr) {
    std::lock_guard<std::mutex> lock(g_mutex);
    live = registry.live.count(p) != 0;
  }
  if (!live) {
    throw_illegal_state(env, registry.not_live);
    return nullptr;
  }
  return p;
}

template <typename T>
jlong registered(JNIEnv* env, mobrt_status st, T* p, Registry& registry) {
  if (st != MOBRT_OK) {
    throw_mobconv(env, st, mobrt_global_last_error());
    return 0;
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  registry.live.insert(p);
  return reinterpret_cast<jlong>(p);
}

template <typename T>
void release(JNIEnv* env, jlong handle, Registry& registry, void (*free_fn)(T*)) {
  T* p = pointer<T>(handle);
  if (p == nullptr) return;  // already freed by close()
  bool was_live;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    was_live = registry.live.erase(p) != 0;
  }
  if (!was_live) {
    throw_illegal_state(env, registry.not_live);
    return;
  }
  free_fn(p);
}

}  // namespace

void throw_mobconv(JNIEnv* env, int status, const std::string& message) {
  if (env->ExceptionCheck()) return;
  jstring msg = env->NewStringUTF(message.c_str());
  if (msg == nullptr) return;  // OutOfMemoryError pending
  jobject ex = env->NewObject(g_mobconv_exception, g_mobconv_exception_init, static_cast<jint>(status), msg);
  if (ex != nullptr) env->Throw(static_cast<jthrowable>(ex));
}

void throw_illegal_argument(JNIEnv* env, const std::string& message) {
  if (!env->ExceptionCheck()) env->ThrowNew(g_illegal_argument, message.c_str());
}

void throw_illegal_state(JNIEnv* env, const std::string& message) {
  if (!env->ExceptionCheck()) env->ThrowNew(g_illegal_state, message.c_str());
}

jlong new_handle(JNIEnv* env, mobrt_status st, mobrt_model* model) {
  return registered(env, st, model, g_models);
}

jlong new_handle(JNIEnv* env, mobrt_status st, mobrt_interpreter* interpreter) {
  return registered(env, st, interpreter, g_interpreters);
}

void delete_model(JNIEnv* env, jlong handle) { release(env, handle, g_models, mobrt_model_delete); }

void delete_interpreter(JNIEnv* env, jlong handle) {
  release(env, handle, g_interpreters, mobrt_interpreter_delete);
}

int live_handles() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return static_cast<int>(g_models.live.size() + g_interpreters.live.size());
}

mobrt_model* model_from(JNIEnv* env, jlong handle) { return live_from<mobrt_model>(env, handle, g_models); }

mobrt_interpreter* interpreter_from(JNIEnv* env, jlong handle) {
  return live_from<mobrt_interpreter>(env, handle, g_interpreters);
}

bool java_memory(JNIEnv* env, jobject obj, JavaMemory* out) {
  if (obj == nullptr) {
    throw_illegal_argument(env, "tensor data is null");
    return false;
  }
  struct ArrayKind {
    jclass cls;
    size_t size;
    char type;
  };
  const ArrayKind kinds[] = {
      {g_byte_array, 1, 'B'}, {g_float_array, 4, 'F'}, {g_int_array, 4, 'I'}, {g_long_array, 8, 'J'}};
  for (const ArrayKind& k : kinds) {
    if (env->IsInstanceOf(obj, k.cls)) {
      out->direct = false;
      out->address = nullptr;
      out->element_size = k.size;
      out->array_type = k.type;
      out->capacity = static_cast<size_t>(env->GetArrayLength(static_cast<jarray>(obj))) * k.size;
      return true;
    }
  }
  void* address = env->GetDirectBufferAddress(obj);
  jlong capacity = env->GetDirectBufferCapacity(obj);
  if (address == nullptr || capacity < 0) {
    throw_illegal_argument(env, "tensor data must be a direct ByteBuffer or a byte[], float[], int[] or long[]");
    return false;
  }
  out->direct = true;
  out->address = address;
  out->element_size = 1;
  out->array_type = 0;
  out->capacity = static_cast<size_t>(capacity);
  return true;
}

bool check_array_type(JNIEnv* env, const JavaMemory& mem, mobrt_dtype dtype, const std::string& what) {
  bool ok = false;
  switch (mem.array_type) {
    case 0: ok = true; break;
    case 'F': ok = dtype == MOBRT_FLOAT32; break;
    case 'I': ok = dtype == MOBRT_INT32; break;
    case 'J': ok = dtype == MOBRT_INT64; break;
    case 'B': ok = dtype == MOBRT_INT8 || dtype == MOBRT_UINT8 || dtype == MOBRT_BOOL; break;
    default: break;
  }
  if (!ok) {
    const char* java = mem.array_type == 'F' ? "float[]" : mem.array_type == 'I' ? "int[]"
                     : mem.array_type == 'J' ? "long[]" : "byte[]";
    throw_illegal_argument(env, what + " is " + mobrt_dtype_name(dtype) + ": a Java " + java + " cannot carry it");
  }
  return ok;
}

bool check_range(JNIEnv* env, const JavaMemory& mem, jlong offset, size_t count, const std::string& what) {
  if (offset < 0 || static_cast<size_t>(offset) > mem.capacity || count > mem.capacity - static_cast<size_t>(offset)) {
    throw_illegal_argument(env, what + " needs " + std::to_string(count) + " bytes at offset " +
                                    std::to_string(offset) + ", the Java " + (mem.direct ? "ByteBuffer" : "array") +
                                    " has " + std::to_string(mem.capacity) + " bytes");
    return false;
  }
  return true;
}

bool cache_classes(JNIEnv* env) {
  g_mobconv_exception = global_class(env, "ai/mobconv/MobconvException");
  g_illegal_argument = global_class(env, "java/lang/IllegalArgumentException");
  g_illegal_state = global_class(env, "java/lang/IllegalStateException");
  g_byte_array = global_class(env, "[B");
  g_float_array = global_class(env, "[F");
  g_int_array = global_class(env, "[I");
  g_long_array = global_class(env, "[J");
  if (!g_mobconv_exception || !g_illegal_argument || !g_illegal_state || !g_byte_array || !g_float_array ||
      !g_int_array || !g_long_array)
    return false;
  g_mobconv_exception_init = env->GetMethodID(g_mobconv_exception, "<init>", "(ILjava/lang/String;)V");
  return g_mobconv_exception_init != nullptr;
}

void release_classes(JNIEnv* env) {
  for (jclass* c : {&g_mobconv_exception, &g_illegal_argument, &g_illegal_state, &g_byte_array, &g_float_array,
                    &g_int_array, &g_long_array}) {
    if (*c != nullptr) env->DeleteGlobalRef(*c);
    *c = nullptr;
  }
}

}  // namespace mobconv_jni
