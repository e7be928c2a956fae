// Shared helpers of the JNI glue (one *_jni.cc per Java class): exceptions, the registry of live
// native handles, and access to the Java memory a tensor is read from or written to.
//
// Every handle that crosses from Java is looked up in a registry of the handles this library
// created and has not freed yet, so a stale, zero or made-up handle throws IllegalStateException
// instead of reaching the runtime. Every buffer is checked against its capacity before a byte is
// copied.
#ifndef MOBCONV_JNI_UTIL_H_
#define MOBCONV_JNI_UTIL_H_

#include <jni.h>

#include <cstddef>
#include <string>

#include "mobrt.h"

namespace mobconv_jni {

// Throws ai.mobconv.MobconvException(status, message).
void throw_mobconv(JNIEnv* env, int status, const std::string& message);
void throw_illegal_argument(JNIEnv* env, const std::string& message);
void throw_illegal_state(JNIEnv* env, const std::string& message);

// Registry of live handles. new_handle takes what a mobrt_*_create call returned: on MOBRT_OK it
// registers the object and returns its handle for Java; otherwise 0 with
// MobconvException(st, mobrt_global_last_error()) pending.
jlong new_handle(JNIEnv* env, mobrt_status st, mobrt_model* model);
jlong new_handle(JNIEnv* env, mobrt_status st, mobrt_interpreter* interpreter);

// Unregisters and frees a handle (close() or the safety net). 0 is a no-op (already freed); a
// handle that is not live throws IllegalStateException and frees nothing.
void delete_model(JNIEnv* env, jlong handle);
void delete_interpreter(JNIEnv* env, jlong handle);

// Models + interpreters created and not freed yet (tests check that a Cleaner frees them).
int live_handles();

// The live handle, or nullptr with IllegalStateException pending.
mobrt_model* model_from(JNIEnv* env, jlong handle);
mobrt_interpreter* interpreter_from(JNIEnv* env, jlong handle);

// Java memory: a direct ByteBuffer (address and capacity) or a primitive array
// (byte[], float[], int[], long[]) of `element_size`-byte elements.
struct JavaMemory {
  bool direct = false;
  void* address = nullptr;   // direct buffers only
  size_t capacity = 0;       // bytes
  size_t element_size = 1;   // arrays: 1, 4, 4 or 8; buffers: 1
  char array_type = 0;       // 'B', 'F', 'I', 'J' (byte[], float[], int[], long[]); 0: buffer
};

// True when a Java array of `array_type` may carry `dtype` (float[]: float32, int[]: int32,
// long[]: int64, byte[]: int8/uint8/bool); a direct buffer (0) carries any dtype. Otherwise
// false with IllegalArgumentException pending naming `what`.
bool check_array_type(JNIEnv* env, const JavaMemory& mem, mobrt_dtype dtype, const std::string& what);

// Describes `obj`; false with IllegalArgumentException pending if it is neither.
bool java_memory(JNIEnv* env, jobject obj, JavaMemory* out);

// Checks [offset, offset + count) lies inside `mem`; false with IllegalArgumentException pending.
bool check_range(JNIEnv* env, const JavaMemory& mem, jlong offset, size_t count, const std::string& what);

// Called once from JNI_OnLoad / JNI_OnUnload.
bool cache_classes(JNIEnv* env);
void release_classes(JNIEnv* env);

}  // namespace mobconv_jni

#endif  // MOBCONV_JNI_UTIL_H_
