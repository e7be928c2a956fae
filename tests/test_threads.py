"""Threads misusing one interpreter (issue 7, finding 7): eight Python threads sharing
one `runtime.Interpreter` (run, resize, close) crashed the process with SIGSEGV. Now
the binding serializes calls on one Interpreter with a lock, and the C API refuses an
overlapping call on one mobrt_interpreter with MOBRT_BUSY instead of corrupting it.

Each hammer runs in a child process, so a crash is a failed test with its signal, not
a dead test session. Results are checked against a serial run of the same interpreter
(the numpy reference checks that one in test_runtime_capi)."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))


def run_child(code: str, timeout: int = 240) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=TESTS, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (f"child exited with {proc.returncode} (negative: killed by that signal)\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc.stdout


PYTHON_HAMMER = """
    import sys, threading
    import numpy as np
    from mobconv import runtime
    from mobconv.errors import ClosedError
    from mobconv.formats.writer import to_bytes
    from test_runtime_capi import batch_net, x_of

    data = to_bytes(batch_net(size=16, channels=16))   # symbolic batch dim N
    inputs = {n: x_of(n, size=16, seed=n) for n in (1, 2, 3)}
    with runtime.Interpreter(data) as serial:
        expected = {n: serial.run({"x": x})["y"] for n, x in inputs.items()}

    it = runtime.Interpreter(data, threads=2)
    start = threading.Barrier(8)
    errors, counts, closed_seen = [], [0] * 8, [0] * 8

    def worker(k):
        try:
            start.wait()
            for rep in range(REPS):
                n = 1 + (k + rep) % 3
                try:
                    if k == 7 and rep == CLOSE_AT:
                        it.close()               # waits for the call in progress, then frees
                        continue
                    if rep % 4 == 3:
                        it.resize("x", (n, 3, 16, 16))
                        continue
                    got = it.run({"x": inputs[n]})["y"]
                    if not np.array_equal(got, expected[n]):
                        errors.append(f"thread {k} rep {rep}: wrong result for batch {n}")
                    counts[k] += 1
                except ClosedError as exc:
                    assert "the interpreter is closed" in str(exc), exc
                    closed_seen[k] += 1
        except BaseException as exc:
            errors.append(f"thread {k}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("runs", sum(counts), "closed", sum(closed_seen))
    assert not errors, errors[:5]
    assert it.closed
"""


def test_eight_threads_share_one_interpreter_run_resize_close():
    """Runs and resizes interleave on one Interpreter, then one thread closes it while
    the others keep calling: every run before the close gives the serial result, every
    call after it raises ClosedError, and the process does not crash."""
    out = run_child(PYTHON_HAMMER.replace("REPS", "24").replace("CLOSE_AT", "18"))
    runs, closed = int(out.split()[1]), int(out.split()[3])
    assert runs > 0 and closed > 0, out


def test_close_from_an_observer_callback_is_refused():
    run_child("""
        import numpy as np, pytest
        from mobconv import runtime
        from mobconv.formats.writer import to_bytes
        from test_runtime_capi import batch_net, concrete, x_of

        it = runtime.Interpreter(to_bytes(concrete(batch_net(), 1)))
        with pytest.raises(runtime.RuntimeError_, match="cannot close the interpreter from its own observer"):
            it.run({"x": x_of(1)}, observer=lambda *_: it.close())
        seen = []
        it.run({"x": x_of(1)}, observer=lambda *_: seen.append(it.inputs[0]["shape"]))  # reading is fine
        assert seen and seen[0] == (1, 3, 12, 12)
        with pytest.raises(runtime.RuntimeError_, match="BUSY: .*cannot be called from its own observer"):
            it.run({"x": x_of(1)}, observer=lambda *_: it.invoke())
        it.close()
    """)


C_HAMMER = r"""
/* Threads misusing ONE interpreter through the C API (the header forbids overlapping
   calls; they must be refused, never corrupt it):
   1. deterministic: thread A is inside invoke (its observer callback waits) while
      thread B calls invoke, resize and output_info: all MOBRT_BUSY with the "in use by
      another thread" message; from A's own callback invoke is MOBRT_BUSY and reading
      output_info is allowed;
   2. a storm: eight threads call invoke, resize and set_input with no lock; every call
      returns MOBRT_OK or MOBRT_BUSY, and afterwards a serial run gives the serial result;
   3. delete from thread B while A is inside invoke waits until A's invoke returns;
   4. delete from the interpreter's own observer is deferred until its invoke returns. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "mobrt.h"

#define THREADS 8
#define REPS 300
static mobrt_model* model;
static mobrt_interpreter* shared;
static float x[2 * 3 * 12 * 12];
static float expected[2 * 5];
static int failures, busy_seen, ok_seen;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static int a_inside, b_done, delete_returned, a_saw_delete_early;  /* handshakes: atomic builtins */
#define LOAD(v) __atomic_load_n(&(v), __ATOMIC_ACQUIRE)
#define STORE(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELEASE)

static void fail(const char* what, int status, const char* msg) {
  pthread_mutex_lock(&count_lock);
  if (failures++ < 10) fprintf(stderr, "%s: status %d: %s\n", what, status, msg ? msg : "(null)");
  pthread_mutex_unlock(&count_lock);
}

static void expect_busy(int status, const char* what, const char* fragment) {
  const char* msg = mobrt_interpreter_last_error(shared);
  if (status != MOBRT_BUSY || !strstr(msg, fragment)) fail(what, status, msg);
}

static void sleep_ms(int ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

/* phase 1: A's observer holds the interpreter until B has tried its calls */
static int hold_until_b_done(void* user, int op, const char* name, const char* type, int n,
                             const mobrt_tensor_info* outs) {
  (void)user; (void)name; (void)type; (void)n; (void)outs;
  if (op != 0) return 0;
  expect_busy(mobrt_interpreter_invoke(shared), "invoke from its own observer", "observer callback");
  mobrt_dtype dt; int rank; int64_t d[MOBRT_MAX_RANK];
  int st = mobrt_interpreter_output_info(shared, 0, &dt, &rank, d);
  if (st != MOBRT_OK) fail("output_info from its own observer", st, mobrt_interpreter_last_error(shared));
  STORE(a_inside, 1);
  while (!LOAD(b_done)) sleep_ms(1);
  return 0;
}

static void* phase1_b(void* arg) {
  (void)arg;
  while (!LOAD(a_inside)) sleep_ms(1);
  int64_t dims[4] = {2, 3, 12, 12};
  mobrt_dtype dt; int rank; int64_t d[MOBRT_MAX_RANK];
  expect_busy(mobrt_interpreter_invoke(shared), "concurrent invoke", "in use by another thread");
  expect_busy(mobrt_interpreter_resize_input(shared, 0, 4, dims), "concurrent resize", "in use by another thread");
  expect_busy(mobrt_interpreter_output_info(shared, 0, &dt, &rank, d), "concurrent output_info", "in use by another thread");
  if (mobrt_interpreter_output_data(shared, 0) != NULL) fail("concurrent output_data", 0, "not NULL");
  STORE(b_done, 1);
  return NULL;
}

/* phase 2 */
static void count(int status, const char* what) {
  if (status == MOBRT_OK) { __atomic_add_fetch(&ok_seen, 1, __ATOMIC_RELAXED); return; }
  const char* msg = mobrt_interpreter_last_error(shared);
  if (status == MOBRT_BUSY && strstr(msg, "in use by another thread")) {
    __atomic_add_fetch(&busy_seen, 1, __ATOMIC_RELAXED);
    return;
  }
  fail(what, status, msg);
}

static void* storm(void* arg) {
  long k = (long)arg;
  int64_t dims[4] = {2, 3, 12, 12};
  for (int rep = 0; rep < REPS; ++rep) {
    int which = (int)((k + rep) % 3);
    if (which == 0) count(mobrt_interpreter_resize_input(shared, 0, 4, dims), "resize");
    else if (which == 1) count(mobrt_interpreter_set_input(shared, 0, x, sizeof x), "set_input");
    else count(mobrt_interpreter_invoke(shared), "invoke");
    mobrt_dtype dt; int rank; int64_t d[MOBRT_MAX_RANK];
    int st = mobrt_interpreter_output_info(shared, 0, &dt, &rank, d);
    if (st == MOBRT_OK && (rank != 2 || d[0] != 2 || d[1] != 5)) fail("output_info", st, "wrong shape");
    if (st != MOBRT_OK && st != MOBRT_BUSY) fail("output_info", st, mobrt_global_last_error());
  }
  return NULL;
}

/* phase 3 */
static int slow_observer(void* user, int op, const char* name, const char* type, int n,
                         const mobrt_tensor_info* outs) {
  (void)user; (void)name; (void)type; (void)n; (void)outs;
  if (op == 0) {
    STORE(a_inside, 1);
    sleep_ms(100);
    if (LOAD(delete_returned)) STORE(a_saw_delete_early, 1);
  }
  return 0;
}

static void* phase3_b(void* arg) {
  (void)arg;
  while (!LOAD(a_inside)) sleep_ms(1);
  mobrt_interpreter_delete(shared);
  STORE(delete_returned, 1);
  return NULL;
}

/* phase 4: an interpreter deleted from its own observer is freed when invoke returns */
static int delete_self(void* user, int op, const char* name, const char* type, int n,
                       const mobrt_tensor_info* outs) {
  (void)name; (void)type; (void)n; (void)outs;
  if (op == 0) mobrt_interpreter_delete((mobrt_interpreter*)user);
  return 0;
}

static int serial_run(const char* when) {
  if (mobrt_interpreter_set_input(shared, 0, x, sizeof x) || mobrt_interpreter_invoke(shared)) {
    fprintf(stderr, "%s: %s\n", when, mobrt_interpreter_last_error(shared));
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  if (mobrt_model_create_from_file(argv[1], &model) != MOBRT_OK) { fprintf(stderr, "%s\n", mobrt_global_last_error()); return 3; }
  for (int i = 0; i < 2 * 3 * 12 * 12; ++i) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
  if (mobrt_interpreter_create(model, NULL, &shared) != MOBRT_OK) return 4;
  int64_t dims[4] = {2, 3, 12, 12};
  if (mobrt_interpreter_resize_input(shared, 0, 4, dims) || serial_run("serial")) return 5;
  memcpy(expected, mobrt_interpreter_output_data(shared, 0), sizeof expected);

  pthread_t b, t[THREADS];
  mobrt_interpreter_set_observer(shared, hold_until_b_done, NULL);
  pthread_create(&b, NULL, phase1_b, NULL);
  count(mobrt_interpreter_invoke(shared), "phase 1 invoke");
  pthread_join(b, NULL);
  mobrt_interpreter_set_observer(shared, NULL, NULL);
  if (failures) { fprintf(stderr, "phase 1 failed\n"); return 1; }

  for (long k = 0; k < THREADS; ++k) pthread_create(&t[k], NULL, storm, (void*)k);
  for (int k = 0; k < THREADS; ++k) pthread_join(t[k], NULL);
  if (mobrt_interpreter_resize_input(shared, 0, 4, dims) || serial_run("after the storm")) return 6;
  if (memcmp(expected, mobrt_interpreter_output_data(shared, 0), sizeof expected) != 0) {
    fprintf(stderr, "after the storm: wrong result\n");
    return 7;
  }

  STORE(a_inside, 0);
  mobrt_interpreter_set_observer(shared, slow_observer, NULL);
  pthread_create(&b, NULL, phase3_b, NULL);
  int st = mobrt_interpreter_invoke(shared);  /* shared is deleted right after this returns */
  pthread_join(b, NULL);
  if (st != MOBRT_OK) fail("phase 3 invoke", st, "");
  if (LOAD(a_saw_delete_early)) fail("phase 3", 0, "delete returned while invoke was running");

  mobrt_interpreter* own = NULL;
  if (mobrt_interpreter_create(model, NULL, &own) || mobrt_interpreter_resize_input(own, 0, 4, dims) ||
      mobrt_interpreter_set_input(own, 0, x, sizeof x) || mobrt_interpreter_set_observer(own, delete_self, own))
    return 8;
  st = mobrt_interpreter_invoke(own);  /* own is freed when this returns */
  if (st != MOBRT_OK) fail("phase 4 invoke", st, "");
  mobrt_model_delete(model);
  printf("ok %d busy %d failures %d\n", ok_seen, busy_seen, failures);
  return failures ? 1 : 0;
}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_c_api_refuses_overlapping_calls_on_one_interpreter(tmp_path):
    from mobconv.formats.writer import write_model
    from test_runtime_capi import batch_net

    model = tmp_path / "net.mob"
    write_model(batch_net(), str(model))
    src = tmp_path / "hammer.c"
    src.write_text(C_HAMMER)
    lib = runtime.library_path()
    exe = tmp_path / "hammer"
    build = subprocess.run(["cc", "-std=c11", "-O1", "-pthread", "-Wall", "-Werror", str(src),
                            "-I", os.path.join(ROOT, "runtime", "include"), lib,
                            f"-Wl,-rpath,{os.path.dirname(lib)}", "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    proc = subprocess.run([str(exe), str(model)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, (f"exit {proc.returncode} (negative: killed by that signal)\n"
                                  f"{proc.stdout}\n{proc.stderr[-4000:]}")
    assert proc.stdout.startswith("ok ") and proc.stdout.split()[5] == "0", proc.stdout
