/* mobrt_bridge.c: the conveniences of mobrt_bridge.h, over mobrt.h only.
 *
 * A session is a model, an interpreter over it and a label for messages (the
 * file path, or "<buffer>"). Names are looked up on the model (immutable, so the
 * lookup never races with another thread's call on the interpreter); every
 * failure copies a one-line message that starts with the label into the
 * caller's error buffer.
 */
#include "mobrt_bridge.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mobrt_bridge_session {
  mobrt_model* model;
  mobrt_interpreter* interpreter;
  char* label; /* path or "<buffer>", starts every message */
};

/* Writes "label: message" into error[0..error_size) (truncated, NUL-terminated)
 * and returns `status`, so failures read `return fail(...)`. */
static mobrt_status fail(mobrt_status status, char* error, size_t error_size, const char* label,
                         const char* format, ...) {
  if (error == NULL || error_size == 0) return status;
  int n = snprintf(error, error_size, "%s: ", label ? label : "mobrt");
  if (n < 0) {
    error[0] = '\0';
    return status;
  }
  if ((size_t)n < error_size) {
    va_list args;
    va_start(args, format);
    vsnprintf(error + n, error_size - (size_t)n, format, args);
    va_end(args);
  }
  return status;
}

/* A runtime message: passed on as it is when it already starts with the label
 * (load errors name the file), else prefixed with it. */
static mobrt_status fail_with(mobrt_status status, char* error, size_t error_size, const char* label,
                              const char* message) {
  if (error != NULL && error_size > 0 && label != NULL && strncmp(message, label, strlen(label)) == 0) {
    snprintf(error, error_size, "%s", message);
    return status;
  }
  return fail(status, error, error_size, label, "%s", message);
}

static char* copy_string(const char* s) {
  size_t n = strlen(s) + 1;
  char* out = (char*)malloc(n);
  if (out) memcpy(out, s, n);
  return out;
}

const char* mobrt_bridge_version(void) { return mobrt_version(); }

/* Takes ownership of `model` (deleted on failure). */
static mobrt_status finish_create(mobrt_model* model, const char* label, int num_threads,
                                  mobrt_bridge_session** out, char* error, size_t error_size) {
  mobrt_bridge_session* s = (mobrt_bridge_session*)calloc(1, sizeof *s);
  char* owned_label = copy_string(label);
  mobrt_options* opts = mobrt_options_create();
  if (s == NULL || owned_label == NULL || opts == NULL) {
    free(s);
    free(owned_label);
    mobrt_options_delete(opts);
    mobrt_model_delete(model);
    return fail(MOBRT_OUT_OF_MEMORY, error, error_size, label, "out of memory creating the session");
  }
  mobrt_status st = mobrt_options_set_num_threads(opts, num_threads);
  if (st != MOBRT_OK) {
    mobrt_options_delete(opts);
    free(s);
    free(owned_label);
    mobrt_model_delete(model);
    return fail(st, error, error_size, label, "num_threads must be >= 1, got %d", num_threads);
  }
  st = mobrt_interpreter_create(model, opts, &s->interpreter);
  mobrt_options_delete(opts); /* not retained by the interpreter */
  if (st != MOBRT_OK) {
    fail_with(st, error, error_size, label, mobrt_global_last_error());
    free(s);
    free(owned_label);
    mobrt_model_delete(model);
    return st;
  }
  s->model = model;
  s->label = owned_label;
  *out = s;
  return MOBRT_OK;
}

mobrt_status mobrt_bridge_session_create(const char* path, int num_threads, mobrt_bridge_session** out,
                                         char* error, size_t error_size) {
  if (out == NULL) return fail(MOBRT_INVALID_ARGUMENT, error, error_size, path, "out is NULL");
  *out = NULL;
  if (path == NULL) return fail(MOBRT_INVALID_ARGUMENT, error, error_size, NULL, "path is NULL");
  mobrt_model* model = NULL;
  mobrt_status st = mobrt_model_create_from_file(path, &model);
  if (st != MOBRT_OK) return fail_with(st, error, error_size, path, mobrt_global_last_error());
  return finish_create(model, path, num_threads, out, error, error_size);
}

mobrt_status mobrt_bridge_session_create_from_buffer(const void* data, size_t size, int num_threads,
                                                     mobrt_bridge_session** out, char* error, size_t error_size) {
  const char* label = "<buffer>";
  if (out == NULL) return fail(MOBRT_INVALID_ARGUMENT, error, error_size, label, "out is NULL");
  *out = NULL;
  if (data == NULL) return fail(MOBRT_INVALID_ARGUMENT, error, error_size, label, "data is NULL");
  mobrt_model* model = NULL;
  mobrt_status st = mobrt_model_create_from_buffer(data, size, /*copy=*/1, &model);
  if (st != MOBRT_OK) return fail_with(st, error, error_size, label, mobrt_global_last_error());
  return finish_create(model, label, num_threads, out, error, error_size);
}

void mobrt_bridge_session_delete(mobrt_bridge_session* session) {
  if (session == NULL) return;
  mobrt_interpreter_delete(session->interpreter); /* before the model it runs */
  mobrt_model_delete(session->model);
  free(session->label);
  free(session);
}

const mobrt_model* mobrt_bridge_session_model(const mobrt_bridge_session* session) {
  return session ? session->model : NULL;
}

mobrt_interpreter* mobrt_bridge_session_interpreter(const mobrt_bridge_session* session) {
  return session ? session->interpreter : NULL;
}

int64_t mobrt_bridge_tensor_element_count(const mobrt_tensor* tensor) {
  int rank = mobrt_tensor_rank(tensor);
  if (rank < 0) return -1;
  int64_t n = 1;
  for (int k = 0; k < rank; ++k) {
    int64_t d = mobrt_tensor_dim(tensor, k);
    if (d < 0) return -1;
    n *= d;
  }
  return n;
}

/* Index of the input (is_input) or output called `name` on the session's model,
 * or -1. */
static int find(const mobrt_bridge_session* s, const char* name, int is_input) {
  int n = is_input ? mobrt_model_num_inputs(s->model) : mobrt_model_num_outputs(s->model);
  for (int i = 0; i < n; ++i) {
    const mobrt_tensor* t = is_input ? mobrt_model_input_tensor(s->model, i) : mobrt_model_output_tensor(s->model, i);
    const char* tn = mobrt_tensor_name(t);
    if (tn != NULL && strcmp(tn, name) == 0) return i;
  }
  return -1;
}

/* "'a', 'b'": the input or output names, for unknown-name messages. */
static void list_names(const mobrt_bridge_session* s, int is_input, char* buf, size_t cap) {
  int n = is_input ? mobrt_model_num_inputs(s->model) : mobrt_model_num_outputs(s->model);
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < n && used < cap; ++i) {
    const mobrt_tensor* t = is_input ? mobrt_model_input_tensor(s->model, i) : mobrt_model_output_tensor(s->model, i);
    int w = snprintf(buf + used, cap - used, "%s'%s'", i ? ", " : "", mobrt_tensor_name(t) ? mobrt_tensor_name(t) : "");
    if (w < 0) break;
    used += (size_t)w;
  }
}

/* Common checks of the by-name calls: session, name, lookup. Returns the index
 * or -1 after writing the message. */
static int lookup(const mobrt_bridge_session* s, const char* name, int is_input, const char* fn, char* error,
                  size_t error_size, mobrt_status* st) {
  *st = MOBRT_INVALID_ARGUMENT;
  if (s == NULL) {
    fail(*st, error, error_size, NULL, "%s: session is NULL", fn);
    return -1;
  }
  if (name == NULL) {
    fail(*st, error, error_size, s->label, "%s: name is NULL", fn);
    return -1;
  }
  int index = find(s, name, is_input);
  if (index < 0) {
    char names[512];
    list_names(s, is_input, names, sizeof names);
    fail(*st, error, error_size, s->label, "%s: the model has no %s '%s' (%ss: %s)", fn,
         is_input ? "input" : "output", name, is_input ? "input" : "output", names);
  }
  return index;
}

mobrt_status mobrt_bridge_resize_input(mobrt_bridge_session* session, const char* name, const int64_t* dims,
                                       int rank, char* error, size_t error_size) {
  const char* fn = "mobrt_bridge_resize_input";
  mobrt_status st;
  int index = lookup(session, name, 1, fn, error, error_size, &st);
  if (index < 0) return st;
  if (rank < 0 || rank > MOBRT_MAX_RANK || (rank > 0 && dims == NULL))
    return fail(MOBRT_INVALID_ARGUMENT, error, error_size, session->label,
                "%s: input '%s': rank must be 0..%d with dims for each, got rank %d%s", fn, name, MOBRT_MAX_RANK,
                rank, rank > 0 && dims == NULL ? " and no dims" : "");
  st = mobrt_interpreter_resize_input(session->interpreter, index, rank, dims);
  if (st != MOBRT_OK)
    return fail_with(st, error, error_size, session->label, mobrt_interpreter_last_error(session->interpreter));
  return MOBRT_OK;
}

/* Copies `size` bytes into input `name` after checking dtype (want_float) and size. */
static mobrt_status set_input(mobrt_bridge_session* s, const char* name, const void* data, size_t size,
                              int want_float, const char* fn, char* error, size_t error_size) {
  mobrt_status st;
  int index = lookup(s, name, 1, fn, error, error_size, &st);
  if (index < 0) return st;
  if (data == NULL) return fail(MOBRT_INVALID_ARGUMENT, error, error_size, s->label, "%s: data is NULL", fn);
  const mobrt_tensor* t = mobrt_interpreter_input_tensor(s->interpreter, index);
  if (t == NULL) return fail_with(MOBRT_BUSY, error, error_size, s->label, mobrt_interpreter_last_error(s->interpreter));
  mobrt_dtype dt = mobrt_tensor_dtype(t);
  if (want_float && dt != MOBRT_FLOAT32)
    return fail(MOBRT_INVALID_ARGUMENT, error, error_size, s->label,
                "%s: input '%s' is %s, not float32 (use mobrt_bridge_set_input_bytes)", fn, name, mobrt_dtype_name(dt));
  int64_t count = mobrt_bridge_tensor_element_count(t);
  if (count < 0)
    return fail(MOBRT_NOT_READY, error, error_size, s->label,
                "%s: input '%s' has an unresolved dim: resize it first (mobrt_interpreter_resize_input)", fn, name);
  size_t want = mobrt_tensor_byte_size(t);
  if (size != want) {
    if (want_float)
      return fail(MOBRT_INVALID_ARGUMENT, error, error_size, s->label,
                  "%s: input '%s' holds %lld float32 values, got %llu", fn, name, (long long)count,
                  (unsigned long long)(size / sizeof(float)));
    return fail(MOBRT_INVALID_ARGUMENT, error, error_size, s->label, "%s: input '%s' holds %llu bytes, got %llu", fn,
                name, (unsigned long long)want, (unsigned long long)size);
  }
  mobrt_status rc = mobrt_interpreter_set_input(s->interpreter, index, data, size);
  if (rc != MOBRT_OK) return fail_with(rc, error, error_size, s->label, mobrt_interpreter_last_error(s->interpreter));
  return MOBRT_OK;
}

mobrt_status mobrt_bridge_set_input_float(mobrt_bridge_session* session, const char* name, const float* data,
                                          size_t count, char* error, size_t error_size) {
  if (count > SIZE_MAX / sizeof(float))
    return fail(MOBRT_INVALID_ARGUMENT, error, error_size, session ? session->label : NULL,
                "mobrt_bridge_set_input_float: count %llu is too large", (unsigned long long)count);
  return set_input(session, name, data, count * sizeof(float), 1, "mobrt_bridge_set_input_float", error, error_size);
}

mobrt_status mobrt_bridge_set_input_bytes(mobrt_bridge_session* session, const char* name, const void* data,
                                          size_t size, char* error, size_t error_size) {
  return set_input(session, name, data, size, 0, "mobrt_bridge_set_input_bytes", error, error_size);
}

mobrt_status mobrt_bridge_session_invoke(mobrt_bridge_session* session, char* error, size_t error_size) {
  if (session == NULL)
    return fail(MOBRT_INVALID_ARGUMENT, error, error_size, NULL, "mobrt_bridge_session_invoke: session is NULL");
  mobrt_status st = mobrt_interpreter_invoke(session->interpreter);
  if (st != MOBRT_OK)
    return fail_with(st, error, error_size, session->label, mobrt_interpreter_last_error(session->interpreter));
  return MOBRT_OK;
}

/* Copies output `name` into out[0..capacity bytes) after the dtype and size checks;
 * *size_out gets its byte size. */
static mobrt_status get_output(const mobrt_bridge_session* s, const char* name, void* out, size_t capacity,
                               size_t* size_out, int want_float, const char* fn, char* error, size_t error_size) {
  mobrt_status st;
  int index = lookup(s, name, 0, fn, error, error_size, &st);
  if (index < 0) return st;
  const mobrt_tensor* t = mobrt_interpreter_output_tensor(s->interpreter, index);
  if (t == NULL) return fail_with(MOBRT_BUSY, error, error_size, s->label, mobrt_interpreter_last_error(s->interpreter));
  mobrt_dtype dt = mobrt_tensor_dtype(t);
  if (want_float && dt != MOBRT_FLOAT32)
    return fail(MOBRT_INVALID_ARGUMENT, error, error_size, s->label,
                "%s: output '%s' is %s, not float32 (use mobrt_bridge_get_output_bytes)", fn, name,
                mobrt_dtype_name(dt));
  const void* data = mobrt_tensor_data(t);
  if (data == NULL)
    return fail(MOBRT_NOT_READY, error, error_size, s->label,
                "%s: output '%s' has no data: invoke (successfully) first", fn, name);
  size_t bytes = mobrt_tensor_byte_size(t);
  if (size_out) *size_out = want_float ? bytes / sizeof(float) : bytes;
  if (capacity < bytes) {
    if (want_float)
      return fail(MOBRT_INVALID_ARGUMENT, error, error_size, s->label,
                  "%s: output '%s' has %llu float32 values, the buffer holds %llu", fn, name,
                  (unsigned long long)(bytes / sizeof(float)), (unsigned long long)(capacity / sizeof(float)));
    return fail(MOBRT_INVALID_ARGUMENT, error, error_size, s->label,
                "%s: output '%s' has %llu bytes, the buffer holds %llu", fn, name, (unsigned long long)bytes,
                (unsigned long long)capacity);
  }
  if (bytes > 0) {
    if (out == NULL) return fail(MOBRT_INVALID_ARGUMENT, error, error_size, s->label, "%s: out is NULL", fn);
    memcpy(out, data, bytes);
  }
  return MOBRT_OK;
}

mobrt_status mobrt_bridge_get_output_float(const mobrt_bridge_session* session, const char* name, float* out,
                                           size_t capacity, size_t* count, char* error, size_t error_size) {
  size_t cap_bytes = capacity > SIZE_MAX / sizeof(float) ? SIZE_MAX : capacity * sizeof(float);
  return get_output(session, name, out, cap_bytes, count, 1, "mobrt_bridge_get_output_float", error, error_size);
}

mobrt_status mobrt_bridge_get_output_bytes(const mobrt_bridge_session* session, const char* name, void* out,
                                           size_t capacity, size_t* size, char* error, size_t error_size) {
  return get_output(session, name, out, capacity, size, 0, "mobrt_bridge_get_output_bytes", error, error_size);
}
