/* bridge_checks.c: the bridge's argument, size and state checks, and its error
 * buffer contract (tests/test_ios_bridge.py compiles it through the module map and
 * runs it on the digits model: input "data" [-1,1,8,8] float32, output "prob" [1,10]).
 *
 *   bridge_checks digits.mob      prints "ok" or the first failed check, exit 1
 */
#include <Mobrt/mobrt.h>
#include <Mobrt/mobrt_bridge.h>

#include <stdio.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                              \
  do {                                                           \
    if (!(cond)) {                                               \
      printf("line %d: check failed: %s\n", __LINE__, #cond);    \
      ++failures;                                                \
    }                                                            \
  } while (0)

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  char err[512];
  mobrt_bridge_session* s = (mobrt_bridge_session*)1;

  /* Creation failures: *out NULL, status and message. */
  CHECK(mobrt_bridge_session_create("/nonexistent/x.mob", 1, &s, err, sizeof err) == MOBRT_IO_ERROR);
  CHECK(s == NULL);
  CHECK(strstr(err, "/nonexistent/x.mob") == err);
  CHECK(mobrt_bridge_session_create(argv[1], 0, &s, err, sizeof err) == MOBRT_INVALID_ARGUMENT && s == NULL);
  CHECK(strstr(err, "num_threads must be >= 1, got 0") != NULL);
  CHECK(mobrt_bridge_session_create_from_buffer("not a model", 11, 1, &s, err, sizeof err) == MOBRT_INVALID_MODEL);
  CHECK(s == NULL && strncmp(err, "<buffer>: ", 10) == 0);

  /* The error buffer: truncated and terminated; NULL with size 0 is allowed;
   * untouched on success. */
  char small[8];
  memset(small, 'x', sizeof small);
  CHECK(mobrt_bridge_session_create("/nonexistent/x.mob", 1, &s, small, sizeof small) == MOBRT_IO_ERROR);
  CHECK(small[7] == '\0' && strlen(small) == 7 && strncmp(small, "/nonexi", 7) == 0);
  CHECK(mobrt_bridge_session_create("/nonexistent/x.mob", 1, &s, NULL, 0) == MOBRT_IO_ERROR);

  strcpy(err, "unchanged");
  CHECK(mobrt_bridge_session_create(argv[1], 1, &s, err, sizeof err) == MOBRT_OK && s != NULL);
  CHECK(strcmp(err, "unchanged") == 0);
  if (s == NULL) return 1;
  CHECK(mobrt_bridge_session_model(s) != NULL && mobrt_bridge_session_interpreter(s) != NULL);
  CHECK(mobrt_bridge_session_model(NULL) == NULL && mobrt_bridge_session_interpreter(NULL) == NULL);

  /* The symbolic batch: no element count until resized. */
  const mobrt_tensor* in = mobrt_interpreter_input_tensor(mobrt_bridge_session_interpreter(s), 0);
  CHECK(mobrt_bridge_tensor_element_count(in) == -1);
  CHECK(mobrt_bridge_tensor_element_count(NULL) == -1);
  float x[128];
  for (int i = 0; i < 128; ++i) x[i] = (float)(i % 17);
  CHECK(mobrt_bridge_set_input_float(s, "data", x, 64, err, sizeof err) == MOBRT_NOT_READY);
  CHECK(strstr(err, "unresolved dim") != NULL);
  int64_t bad_rank[1] = {1};
  CHECK(mobrt_bridge_resize_input(s, "data", NULL, 4, err, sizeof err) == MOBRT_INVALID_ARGUMENT);
  CHECK(mobrt_bridge_resize_input(s, "data", bad_rank, MOBRT_MAX_RANK + 1, err, sizeof err) == MOBRT_INVALID_ARGUMENT);
  int64_t dims[4] = {2, 1, 8, 8};
  CHECK(mobrt_bridge_resize_input(s, "data", dims, 4, err, sizeof err) == MOBRT_OK);
  CHECK(mobrt_bridge_tensor_element_count(in) == 128);

  /* Outputs before any invoke. */
  float prob[20];
  size_t n = 99;
  CHECK(mobrt_bridge_get_output_float(s, "prob", prob, 20, &n, err, sizeof err) == MOBRT_NOT_READY);
  CHECK(strstr(err, "invoke (successfully) first") != NULL);

  /* Input checks: name, count, bytes, NULLs. */
  CHECK(mobrt_bridge_set_input_float(s, "nope", x, 128, err, sizeof err) == MOBRT_INVALID_ARGUMENT);
  CHECK(strstr(err, "no input 'nope' (inputs: 'data')") != NULL);
  CHECK(mobrt_bridge_set_input_float(s, "data", x, 127, err, sizeof err) == MOBRT_INVALID_ARGUMENT);
  CHECK(strstr(err, "holds 128 float32 values, got 127") != NULL);
  CHECK(mobrt_bridge_set_input_bytes(s, "data", x, 511, err, sizeof err) == MOBRT_INVALID_ARGUMENT);
  CHECK(strstr(err, "holds 512 bytes, got 511") != NULL);
  /* NULL where the header says MOBRT_NONNULL (clang refuses a literal NULL there:
   * -Wnonnull) is still checked at run time. */
  mobrt_bridge_session* volatile no_session = NULL;
  CHECK(mobrt_bridge_set_input_float(no_session, "data", x, 128, err, sizeof err) == MOBRT_INVALID_ARGUMENT);
  CHECK(mobrt_bridge_session_invoke(no_session, err, sizeof err) == MOBRT_INVALID_ARGUMENT);
  CHECK(mobrt_bridge_set_input_float(s, "data", x, 128, err, sizeof err) == MOBRT_OK);
  CHECK(mobrt_bridge_session_invoke(s, err, sizeof err) == MOBRT_OK);

  /* Output checks: the count is reported with an empty buffer, a short buffer is
   * refused and left untouched, bytes and floats agree. */
  n = 0;
  CHECK(mobrt_bridge_get_output_float(s, "prob", NULL, 0, &n, err, sizeof err) == MOBRT_INVALID_ARGUMENT);
  CHECK(n == 20);
  for (int i = 0; i < 20; ++i) prob[i] = -1.0f;
  CHECK(mobrt_bridge_get_output_float(s, "prob", prob, 19, &n, err, sizeof err) == MOBRT_INVALID_ARGUMENT);
  CHECK(strstr(err, "has 20 float32 values, the buffer holds 19") != NULL && prob[0] == -1.0f);
  CHECK(mobrt_bridge_get_output_float(s, "prob", prob, 20, &n, err, sizeof err) == MOBRT_OK && n == 20);
  float sum0 = 0, sum1 = 0;
  for (int i = 0; i < 10; ++i) sum0 += prob[i], sum1 += prob[10 + i];
  CHECK(sum0 > 0.99f && sum0 < 1.01f && sum1 > 0.99f && sum1 < 1.01f); /* softmax rows */
  unsigned char bytes[80];
  size_t size = 0;
  CHECK(mobrt_bridge_get_output_bytes(s, "prob", bytes, sizeof bytes, &size, err, sizeof err) == MOBRT_OK);
  CHECK(size == 80 && memcmp(bytes, prob, 80) == 0);
  CHECK(mobrt_bridge_get_output_bytes(s, "prob", bytes, 80, NULL, err, sizeof err) == MOBRT_OK);
  CHECK(mobrt_bridge_get_output_float(s, "pro", prob, 20, &n, err, sizeof err) == MOBRT_INVALID_ARGUMENT);
  CHECK(strstr(err, "no output 'pro' (outputs: 'prob')") != NULL);

  mobrt_bridge_session_delete(s);
  mobrt_bridge_session_delete(NULL);
  puts(failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
