/* mobrt_consumer: the C API from an application built against the installed
 * package. Prints what the model declares (without an interpreter), then runs
 * it once on raw input bytes and writes the raw output bytes:
 *
 *   mobrt_consumer model.mob input.bin output.bin [threads]
 *
 * Symbolic dims of input 0 are resized to 1; input.bin must hold exactly the
 * input's byte size. Exit code 0 on success, 1 on any failure (message on stderr). */
#include <stdio.h>
#include <stdlib.h>

#include <mobrt.h>

static void report(void* user_data, mobrt_status status, const char* message) {
  (void)user_data;
  fprintf(stderr, "mobrt: %s: %s\n", mobrt_status_name(status), message);
}

static void print_tensor(const char* what, int index, const mobrt_tensor* t) {
  int k, rank = mobrt_tensor_rank(t);
  printf("%s %d %s %s [", what, index, mobrt_tensor_name(t), mobrt_dtype_name(mobrt_tensor_dtype(t)));
  for (k = 0; k < rank; ++k) printf("%s%lld", k ? ", " : "", (long long)mobrt_tensor_dim(t, k));
  printf("] bytes %zu", mobrt_tensor_byte_size(t));
  if (mobrt_tensor_quant_scale_count(t) > 0)
    printf(" scale %.9g zero_point %lld", mobrt_tensor_quant_scale(t, 0),
           (long long)mobrt_tensor_quant_zero_point(t, 0));
  printf("\n");
}

int main(int argc, char** argv) {
  mobrt_model* model = NULL;
  mobrt_options* opts = NULL;
  mobrt_interpreter* it = NULL;
  const mobrt_tensor* in;
  const mobrt_tensor* out;
  float mean[16];
  int64_t dims[MOBRT_MAX_RANK];
  int i, k, n, rank, rc = 1;
  void* data = NULL;
  size_t size;
  FILE* f;

  if (argc < 4) {
    fprintf(stderr, "usage: %s model.mob input.bin output.bin [threads]\n", argv[0]);
    return 2;
  }
  printf("mobrt %s\n", mobrt_version());
  mobrt_set_error_reporter(report, NULL);
  if (mobrt_model_create_from_file(argv[1], &model) != MOBRT_OK) return 1;

  /* what the file declares, no interpreter needed */
  for (i = 0; i < mobrt_model_num_inputs(model); ++i) print_tensor("model input", i, mobrt_model_input_tensor(model, i));
  for (i = 0; i < mobrt_model_num_outputs(model); ++i) print_tensor("model output", i, mobrt_model_output_tensor(model, i));
  n = mobrt_model_input_mean(model, 0, mean, 16);
  printf("layout %s preprocessing mean count %d channel_order '%s'\n", mobrt_model_input_layout(model, 0), n,
         mobrt_model_input_channel_order(model, 0));

  opts = mobrt_options_create();
  if (!opts || mobrt_options_set_num_threads(opts, argc > 4 ? atoi(argv[4]) : 1) != MOBRT_OK) goto done;
  if (mobrt_interpreter_create(model, opts, &it) != MOBRT_OK) goto done;

  in = mobrt_interpreter_input_tensor(it, 0);
  rank = mobrt_tensor_rank(in);
  for (k = 0; k < rank; ++k) dims[k] = mobrt_tensor_dim(in, k) < 0 ? 1 : mobrt_tensor_dim(in, k);
  if (mobrt_interpreter_resize_input(it, 0, rank, dims) != MOBRT_OK) goto done;

  size = mobrt_tensor_byte_size(in);
  data = malloc(size ? size : 1);
  f = fopen(argv[2], "rb");
  if (!data || !f || fread(data, 1, size, f) != size || fgetc(f) != EOF) {
    fprintf(stderr, "%s: expected exactly %zu bytes for input '%s'\n", argv[2], size, mobrt_tensor_name(in));
    if (f) fclose(f);
    goto done;
  }
  fclose(f);
  if (mobrt_interpreter_set_input(it, 0, data, size) != MOBRT_OK) goto done;
  if (mobrt_interpreter_invoke(it) != MOBRT_OK) goto done;

  out = mobrt_interpreter_output_tensor(it, 0);
  print_tensor("output", 0, out);
  f = fopen(argv[3], "wb");
  if (!f || fwrite(mobrt_tensor_data(out), 1, mobrt_tensor_byte_size(out), f) != mobrt_tensor_byte_size(out)) {
    fprintf(stderr, "%s: cannot write the output\n", argv[3]);
    if (f) fclose(f);
    goto done;
  }
  fclose(f);
  rc = 0;
done:
  free(data);
  mobrt_interpreter_delete(it);
  mobrt_options_delete(opts);
  mobrt_model_delete(model);
  return rc;
}
