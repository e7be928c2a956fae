// Softmax / LogSoftmax driver (softmax_f32.h): contiguous rows (inner == 1) in groups
// of about kChunk floats per task, else one task per outer block (vectorized across inner).
#include <algorithm>

#include "softmax_f32.h"

namespace mobrt {
namespace cpu {

namespace {
constexpr int64_t kChunk = 16384;  // floats per task

struct SmCtx {
  const F32Kernels* ks;
  int64_t len, inner, rows_per_task, outer;
  bool log;
  const float* x;
  float* y;
};
void sm_task(void* vctx, int64_t t) {
  const SmCtx& c = *static_cast<const SmCtx*>(vctx);
  if (c.inner == 1) {
    const int64_t r0 = t * c.rows_per_task, nr = std::min(c.rows_per_task, c.outer - r0);
    c.ks->softmax_rows(c.x + r0 * c.len, c.y + r0 * c.len, size_t(nr), size_t(c.len), c.log);
  } else {
    const int64_t off = t * c.len * c.inner;
    c.ks->softmax_inner(c.x + off, c.y + off, size_t(c.len), size_t(c.inner), c.log);
  }
}
}  // namespace

void softmax_run(const F32Kernels& ks, int64_t outer, int64_t len, int64_t inner, bool log,
                 const float* x, float* y, const TaskRunner* runner) {
  SmCtx c{&ks, len, inner, 1, outer, log, x, y};
  int64_t tasks = outer;
  if (inner == 1) {
    c.rows_per_task = std::max<int64_t>(1, kChunk / std::max<int64_t>(len, 1));
    tasks = (outer + c.rows_per_task - 1) / c.rows_per_task;
  }
  run_tasks(runner, tasks, &c, sm_task);
}

}  // namespace cpu
}  // namespace mobrt
