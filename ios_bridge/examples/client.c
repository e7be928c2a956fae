/* client.c: a C client of the Mobrt module (the iOS bridge), tested on Linux
 * natively and on arm64 under qemu (tests/test_ios_bridge.py); docs/ios.md shows
 * it verbatim. It uses the headers exactly as an Xcode target sees them:
 * include/Mobrt/{mobrt.h, mobrt_bridge.h, module.modulemap}; with clang
 * -fmodules the #includes below become imports of the module Mobrt.
 *
 *   mobrt_bridge_client model.mob out_dir name[:shape]=input.raw ...
 *
 * shape (e.g. 1x1x8x8) resizes the input first, as a symbolic dim (a batch of
 * -1) needs. Prints every input and output (name, dtype, shape, quantization),
 * feeds each input the raw bytes of its file (native byte order; a float32 input through
 * mobrt_bridge_set_input_float, any other through mobrt_bridge_set_input_bytes),
 * invokes, and writes output k's raw bytes to out_dir/output<k>.raw.
 * MOBRT_CLIENT_FROM_BUFFER=1 loads the model from memory instead of mapping it.
 */
#include <Mobrt/mobrt.h>
#include <Mobrt/mobrt_bridge.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a whole file into malloc'ed memory; NULL (with a message) on failure. */
static void* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "%s: cannot open\n", path);
    return NULL;
  }
  void* data = NULL;
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    data = malloc(n > 0 ? (size_t)n : 1);
    if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
      free(data);
      data = NULL;
    }
  }
  fclose(f);
  if (data == NULL) fprintf(stderr, "%s: cannot read\n", path);
  *size = n > 0 ? (size_t)n : 0;
  return data;
}

static void print_tensor(const char* kind, int index, const mobrt_tensor* t) {
  printf("%s %d %s %s [", kind, index, mobrt_tensor_name(t), mobrt_dtype_name(mobrt_tensor_dtype(t)));
  for (int k = 0; k < mobrt_tensor_rank(t); ++k) printf("%s%lld", k ? "," : "", (long long)mobrt_tensor_dim(t, k));
  printf("] %zu bytes", mobrt_tensor_byte_size(t));
  int scales = mobrt_tensor_quant_scale_count(t);
  if (scales == 1)
    printf(" scale %.9g zero_point %lld", mobrt_tensor_quant_scale(t, 0), (long long)mobrt_tensor_quant_zero_point(t, 0));
  else if (scales > 1)
    printf(" %d scales on axis %d", scales, mobrt_tensor_quant_axis(t));
  printf("\n");
}

/* Sets input `name` from the raw file `path`. */
static int feed(mobrt_bridge_session* s, const char* name, const char* path) {
  char err[512];
  const mobrt_model* model = mobrt_bridge_session_model(s);
  const mobrt_tensor* t = NULL;
  for (int i = 0; i < mobrt_model_num_inputs(model); ++i)
    if (strcmp(mobrt_tensor_name(mobrt_model_input_tensor(model, i)), name) == 0)
      t = mobrt_model_input_tensor(model, i);
  size_t size = 0;
  void* data = read_file(path, &size);
  if (data == NULL) return 1;
  mobrt_status st;
  if (t != NULL && mobrt_tensor_dtype(t) == MOBRT_FLOAT32)
    st = mobrt_bridge_set_input_float(s, name, (const float*)data, size / sizeof(float), err, sizeof err);
  else /* any other dtype, or an unknown name (the bridge then names the inputs) */
    st = mobrt_bridge_set_input_bytes(s, name, data, size, err, sizeof err);
  free(data);
  if (st != MOBRT_OK) {
    fprintf(stderr, "%s: %s\n", mobrt_status_name(st), err);
    return 1;
  }
  return 0;
}

/* Writes output `index` to out_dir/output<index>.raw. */
static int save(const mobrt_bridge_session* s, int index, const char* out_dir) {
  char err[512];
  const mobrt_tensor* t = mobrt_interpreter_output_tensor(mobrt_bridge_session_interpreter(s), index);
  const char* name = mobrt_tensor_name(t);
  size_t n = 0, bytes = 0;
  void* data = NULL;
  mobrt_status st;
  if (mobrt_tensor_dtype(t) == MOBRT_FLOAT32) {
    /* Ask for the count with an empty buffer, then copy. */
    mobrt_bridge_get_output_float(s, name, NULL, 0, &n, err, sizeof err);
    data = malloc(n ? n * sizeof(float) : 1);
    st = mobrt_bridge_get_output_float(s, name, (float*)data, n, &n, err, sizeof err);
    bytes = n * sizeof(float);
  } else {
    mobrt_bridge_get_output_bytes(s, name, NULL, 0, &n, err, sizeof err);
    data = malloc(n ? n : 1);
    st = mobrt_bridge_get_output_bytes(s, name, data, n, &n, err, sizeof err);
    bytes = n;
  }
  if (st != MOBRT_OK) {
    fprintf(stderr, "%s: %s\n", mobrt_status_name(st), err);
    free(data);
    return 1;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/output%d.raw", out_dir, index);
  FILE* f = fopen(path, "wb");
  int rc = f == NULL || fwrite(data, 1, bytes, f) != bytes;
  if (f != NULL && fclose(f) != 0) rc = 1;
  if (rc) fprintf(stderr, "%s: cannot write\n", path);
  free(data);
  return rc;
}

/* Splits "name[:shape]=path" in place; resizes the input when a shape is given.
 * *path receives the file name. */
static int parse_and_resize(mobrt_bridge_session* s, char* arg, char** path) {
  char err[512];
  char* eq = strchr(arg, '=');
  if (eq == NULL) {
    fprintf(stderr, "%s: expected name[:shape]=input.raw\n", arg);
    return 2;
  }
  *eq = '\0';
  *path = eq + 1;
  char* colon = strchr(arg, ':');
  if (colon == NULL) return 0;
  *colon = '\0';
  int64_t dims[MOBRT_MAX_RANK];
  int rank = 0;
  for (char* p = colon + 1; *p != '\0';) {
    char* end = NULL;
    if (rank < MOBRT_MAX_RANK) dims[rank] = strtoll(p, &end, 10);
    if (rank++ == MOBRT_MAX_RANK || end == p || (*end != 'x' && *end != '\0')) {
      fprintf(stderr, "%s: shape '%s' is not like 1x3x224x224\n", arg, colon + 1);
      return 2;
    }
    p = *end == 'x' ? end + 1 : end;
  }
  mobrt_status st = mobrt_bridge_resize_input(s, arg, dims, rank, err, sizeof err);
  if (st != MOBRT_OK) {
    fprintf(stderr, "%s: %s\n", mobrt_status_name(st), err);
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s model.mob out_dir name[:shape]=input.raw ...\n", argv[0]);
    return 2;
  }
  char err[512];
  mobrt_bridge_session* s = NULL;
  mobrt_status st;
  const char* from_buffer = getenv("MOBRT_CLIENT_FROM_BUFFER");
  if (from_buffer != NULL && strcmp(from_buffer, "1") == 0) {
    size_t size = 0;
    void* bytes = read_file(argv[1], &size);
    if (bytes == NULL) return 1;
    st = mobrt_bridge_session_create_from_buffer(bytes, size, 1, &s, err, sizeof err);
    free(bytes); /* the session keeps its own copy */
  } else {
    st = mobrt_bridge_session_create(argv[1], 1, &s, err, sizeof err);
  }
  if (st != MOBRT_OK) {
    fprintf(stderr, "%s: %s\n", mobrt_status_name(st), err);
    return 1;
  }
  printf("mobrt %s\n", mobrt_bridge_version());
  const mobrt_model* model = mobrt_bridge_session_model(s);
  for (int i = 0; i < mobrt_model_num_inputs(model); ++i) print_tensor("input", i, mobrt_model_input_tensor(model, i));

  /* Every resize before any input is set: with several symbolic inputs the
   * interpreter is ready only once all of them have shapes. */
  int rc = 0;
  char* paths[64];
  int n_inputs = argc - 3;
  if (n_inputs > 64) {
    fprintf(stderr, "at most 64 inputs, got %d\n", n_inputs);
    rc = 2;
  }
  for (int a = 0; a < n_inputs && rc == 0; ++a) rc = parse_and_resize(s, argv[3 + a], &paths[a]);
  for (int a = 0; a < n_inputs && rc == 0; ++a) rc = feed(s, argv[3 + a], paths[a]);
  if (rc == 0 && (st = mobrt_bridge_session_invoke(s, err, sizeof err)) != MOBRT_OK) {
    fprintf(stderr, "%s: %s\n", mobrt_status_name(st), err);
    rc = 1;
  }
  mobrt_interpreter* it = mobrt_bridge_session_interpreter(s);
  for (int k = 0; rc == 0 && k < mobrt_interpreter_num_outputs(it); ++k) {
    print_tensor("output", k, mobrt_interpreter_output_tensor(it, k));
    rc = save(s, k, argv[2]);
  }
  mobrt_bridge_session_delete(s);
  return rc;
}
