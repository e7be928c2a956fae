/* mobrt_bridge.h: conveniences over the C API (mobrt.h) for Swift and
 * Objective-C callers.
 *
 * Everything here is written against mobrt.h only; the full C API stays
 * available (mobrt_bridge_session_model / _interpreter give the handles). What
 * it adds:
 *  - load-and-prepare in one call (model + options + interpreter);
 *  - errors as a caller-owned string buffer: every fallible call takes
 *    (char* error, size_t error_size) and, on failure, copies the one-line
 *    message there (truncated to error_size - 1 bytes, always NUL-terminated;
 *    error may be NULL when error_size is 0). On success the buffer is left
 *    unchanged. Swift:  let size = 256; var err = [CChar](repeating: 0, count: size)
 *                       mobrt_bridge_session_invoke(s, &err, size)
 *  - inputs and outputs by NAME, copied from/to caller buffers with the dtype
 *    and size checked (float32 variants count elements; the byte variants take
 *    any dtype and count bytes).
 *
 * Ownership: a session is created by mobrt_bridge_session_create* and owned by
 * the caller (free with mobrt_bridge_session_delete); it owns its model and
 * interpreter. Thread safety: a session follows the interpreter's rule in
 * mobrt.h (one thread at a time; a call overlapping another on the same
 * session returns MOBRT_BUSY); mobrt_interpreter_cancel on
 * mobrt_bridge_session_interpreter(s) may be called from any thread. Different
 * sessions are independent.
 *
 * Typical use (C; Swift reads the same, see docs/ios.md):
 *   char err[256];
 *   mobrt_bridge_session* s = NULL;
 *   if (mobrt_bridge_session_create("digits.mob", 1, &s, err, sizeof err) != MOBRT_OK) {
 *     puts(err); return;
 *   }
 *   mobrt_bridge_set_input_float(s, "data", pixels, 64, err, sizeof err);
 *   mobrt_bridge_session_invoke(s, err, sizeof err);
 *   float prob[10]; size_t n = 0;
 *   mobrt_bridge_get_output_float(s, "prob", prob, 10, &n, err, sizeof err);
 *   mobrt_bridge_session_delete(s);
 */
#ifndef MOBRT_BRIDGE_H_
#define MOBRT_BRIDGE_H_

#include <stddef.h>
#include <stdint.h>

#include "mobrt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A model and one interpreter over it (opaque). */
typedef struct mobrt_bridge_session mobrt_bridge_session;

/* Version of this header's functions ("0.1.0"; follows mobrt_version()). Static
 * string, never free. */
MOBRT_API const char* MOBRT_NONNULL mobrt_bridge_version(void);

/* Loads the .mob file at `path` (mapped, zero copy), validates it, and creates
 * an interpreter with `num_threads` threads (>= 1; the other options at their
 * defaults). On success *out receives a new session owned by the caller; on
 * failure *out is NULL and error holds the message (it names the file). */
MOBRT_API mobrt_status mobrt_bridge_session_create(const char* MOBRT_NONNULL path, int num_threads,
                                                   mobrt_bridge_session* MOBRT_NULLABLE* MOBRT_NONNULL out,
                                                   char* MOBRT_NULLABLE error, size_t error_size);

/* As mobrt_bridge_session_create, from `size` bytes of a .mob file in memory
 * (e.g. an asset's Data). The bytes are copied: the caller may free them when
 * this returns. */
MOBRT_API mobrt_status mobrt_bridge_session_create_from_buffer(const void* MOBRT_NONNULL data, size_t size,
                                                               int num_threads,
                                                               mobrt_bridge_session* MOBRT_NULLABLE* MOBRT_NONNULL out,
                                                               char* MOBRT_NULLABLE error, size_t error_size);

/* Frees the interpreter, then the model, then the session. NULL is ignored.
 * Tensors and data pointers obtained through the session become invalid. */
MOBRT_API void mobrt_bridge_session_delete(mobrt_bridge_session* MOBRT_NULLABLE session);

/* The session's model and interpreter, owned by the session (never delete them
 * yourself), for the rest of the C API (tensor info, resize, cancel, ...).
 * NULL only for a NULL session. */
MOBRT_API const mobrt_model* MOBRT_NULLABLE mobrt_bridge_session_model(
    const mobrt_bridge_session* MOBRT_NULLABLE session);
MOBRT_API mobrt_interpreter* MOBRT_NULLABLE mobrt_bridge_session_interpreter(
    const mobrt_bridge_session* MOBRT_NULLABLE session);

/* Elements of a tensor in its current shape (product of its dims; 1 for a
 * scalar); -1 for a NULL tensor or while a dim is unresolved. */
MOBRT_API int64_t mobrt_bridge_tensor_element_count(const mobrt_tensor* MOBRT_NULLABLE tensor);

/* Gives the input called `name` the shape dims[0..rank) (copied): fixed dims of
 * the file must match, symbolic ones (e.g. a batch of -1) take any size >= 0
 * (mobrt_interpreter_resize_input). Earlier input values and output pointers
 * become invalid. */
MOBRT_API mobrt_status mobrt_bridge_resize_input(mobrt_bridge_session* MOBRT_NONNULL session,
                                                 const char* MOBRT_NONNULL name,
                                                 const int64_t* MOBRT_NULLABLE dims, int rank,
                                                 char* MOBRT_NULLABLE error, size_t error_size);

/* Copies `count` float32 values into the input called `name`. The input must
 * be float32 and hold exactly `count` elements in its current shape (resize it
 * first with mobrt_interpreter_resize_input when a dim is symbolic); otherwise
 * MOBRT_INVALID_ARGUMENT (unknown name, wrong dtype, wrong count) and nothing
 * is written. */
MOBRT_API mobrt_status mobrt_bridge_set_input_float(mobrt_bridge_session* MOBRT_NONNULL session,
                                                    const char* MOBRT_NONNULL name,
                                                    const float* MOBRT_NONNULL data, size_t count,
                                                    char* MOBRT_NULLABLE error, size_t error_size);

/* Copies `size` bytes (the input's byte size exactly, any dtype) into the input
 * called `name`. */
MOBRT_API mobrt_status mobrt_bridge_set_input_bytes(mobrt_bridge_session* MOBRT_NONNULL session,
                                                    const char* MOBRT_NONNULL name,
                                                    const void* MOBRT_NONNULL data, size_t size,
                                                    char* MOBRT_NULLABLE error, size_t error_size);

/* Runs the interpreter (mobrt_interpreter_invoke). MOBRT_CANCELLED when
 * mobrt_interpreter_cancel stopped it. */
MOBRT_API mobrt_status mobrt_bridge_session_invoke(mobrt_bridge_session* MOBRT_NONNULL session,
                                                   char* MOBRT_NULLABLE error, size_t error_size);

/* Copies the float32 output called `name` into out[0..capacity). *count (may be
 * NULL) receives the output's element count, also on a size failure, so a
 * caller can query it with capacity 0 and call again. Fails with
 * MOBRT_INVALID_ARGUMENT for an unknown name, a dtype other than float32 or
 * capacity < count (nothing is written to out), and MOBRT_NOT_READY before a
 * successful invoke. */
MOBRT_API mobrt_status mobrt_bridge_get_output_float(const mobrt_bridge_session* MOBRT_NONNULL session,
                                                     const char* MOBRT_NONNULL name,
                                                     float* MOBRT_NULLABLE out, size_t capacity,
                                                     size_t* MOBRT_NULLABLE count,
                                                     char* MOBRT_NULLABLE error, size_t error_size);

/* As mobrt_bridge_get_output_float for any dtype, in bytes: *size (may be
 * NULL) receives the output's byte size. */
MOBRT_API mobrt_status mobrt_bridge_get_output_bytes(const mobrt_bridge_session* MOBRT_NONNULL session,
                                                     const char* MOBRT_NONNULL name,
                                                     void* MOBRT_NULLABLE out, size_t capacity,
                                                     size_t* MOBRT_NULLABLE size,
                                                     char* MOBRT_NULLABLE error, size_t error_size);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* MOBRT_BRIDGE_H_ */
