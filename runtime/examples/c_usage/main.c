/* main.c: load a .mob model, fill every float32 input with a ramp, run it and
 * print each output's shape and first values. Plain C over mobrt.h only.
 *
 *   mobrt_example model.mob [threads]
 */
#include <stdio.h>
#include <stdlib.h>

#include "mobrt.h"

static int fail(const char* what, mobrt_status st, const char* msg) {
  fprintf(stderr, "%s failed (%s): %s\n", what, mobrt_status_name(st), msg);
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s model.mob [threads]\n", argv[0]);
    return 2;
  }
  printf("mobrt %s\n", mobrt_version());
  mobrt_model* model = NULL;
  mobrt_status st = mobrt_model_create_from_file(argv[1], &model);
  if (st != MOBRT_OK) return fail("load", st, mobrt_global_last_error());

  mobrt_options* opts = mobrt_options_create();
  mobrt_options_set_num_threads(opts, argc > 2 ? atoi(argv[2]) : 1);
  mobrt_interpreter* it = NULL;
  st = mobrt_interpreter_create(model, opts, &it);
  mobrt_options_delete(opts); /* not retained by the interpreter */
  if (st != MOBRT_OK) {
    mobrt_model_delete(model);
    return fail("create", st, mobrt_global_last_error());
  }

  int rc = 0;
  for (int i = 0; i < mobrt_interpreter_num_inputs(it) && rc == 0; ++i) {
    mobrt_dtype dt;
    int rank;
    int64_t dims[MOBRT_MAX_RANK];
    mobrt_interpreter_input_info(it, i, &dt, &rank, dims);
    int symbolic = 0;
    for (int d = 0; d < rank; ++d)
      if (dims[d] < 0) { dims[d] = 1; symbolic = 1; } /* symbolic dims (batch): run with 1 */
    if (symbolic && (st = mobrt_interpreter_resize_input(it, i, rank, dims)) != MOBRT_OK) {
      rc = fail("resize", st, mobrt_interpreter_last_error(it));
      break;
    }
    if (dt != MOBRT_FLOAT32) {
      fprintf(stderr, "input %d is not float32\n", i);
      rc = 1;
      break;
    }
    float* x = (float*)mobrt_interpreter_input_data(it, i); /* fill in place, no copy */
    size_t n = 1;
    for (int d = 0; d < rank; ++d) n *= (size_t)dims[d];
    for (size_t k = 0; k < n; ++k) x[k] = (float)(k % 17) / 17.0f - 0.5f;
  }
  if (rc == 0 && (st = mobrt_interpreter_invoke(it)) != MOBRT_OK) rc = fail("invoke", st, mobrt_interpreter_last_error(it));
  for (int o = 0; rc == 0 && o < mobrt_interpreter_num_outputs(it); ++o) {
    mobrt_dtype dt;
    int rank;
    int64_t dims[MOBRT_MAX_RANK];
    mobrt_interpreter_output_info(it, o, &dt, &rank, dims);
    printf("output %s shape (", mobrt_interpreter_output_name(it, o));
    for (int d = 0; d < rank; ++d) printf("%s%lld", d ? ", " : "", (long long)dims[d]);
    printf(")");
    if (dt == MOBRT_FLOAT32) {
      const float* y = (const float*)mobrt_interpreter_output_data(it, o);
      size_t n = mobrt_interpreter_output_size(it, o) / sizeof(float);
      printf(" values");
      for (size_t k = 0; k < n; ++k) printf(" %.9g", y[k]);  /* 9 significant digits: the float32 value exactly */
    }
    printf("\n");
  }
  mobrt_interpreter_delete(it);
  mobrt_model_delete(model);
  return rc;
}
