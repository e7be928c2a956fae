// Packing, the MOBRT_SPARSE mode and the layer drivers of the sparse fp32 kernels
// (sparse_f32.h): task split and activation; the per-ISA SpMM/SpMV microkernels do the
// arithmetic. Baseline flags (no intrinsics here).
#include "sparse_f32.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace mobrt {
namespace cpu {

void sparse_pack(const float* w, int64_t rows, int64_t cols, int64_t rs, int64_t cs, float scale,
                 SparseRows* out) {
  out->rows = rows;
  out->cols = cols;
  out->start.assign(static_cast<size_t>(rows) + 1, 0);
  out->col.clear();
  out->val.clear();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float v = w[r * rs + c * cs];
      if (v == 0.f) continue;  // +-0; NaN compares unequal and is kept
      out->col.push_back(static_cast<int32_t>(c));
      out->val.push_back(v * scale);
    }
    out->start[static_cast<size_t>(r) + 1] = static_cast<uint32_t>(out->val.size());
  }
}

double zero_fraction(const float* w, int64_t n) {
  if (n <= 0) return 1.0;
  int64_t zeros = 0;
  for (int64_t i = 0; i < n; ++i) zeros += w[i] == 0.f;
  return static_cast<double>(zeros) / static_cast<double>(n);
}

SparseMode sparse_mode() {
  const char* env = std::getenv("MOBRT_SPARSE");
  if (env == nullptr) return SparseMode::kAuto;
  if (std::strcmp(env, "off") == 0) return SparseMode::kOff;
  if (std::strcmp(env, "always") == 0) return SparseMode::kAlways;
  return SparseMode::kAuto;
}

namespace {

// The SpMM over [images] x [column blocks] x [row ranges], then the activation over
// each finished row segment.
struct SpmmTask {
  const SparseF32Kernels* ks;
  const SparseRows* w;
  const float* bias;
  const Activation* act;
  const float* x;
  float* y;
  const float* res;
  int64_t hw, blocks, row_chunks, rows_per_chunk;
  size_t x_image, y_image;  // floats per image of x and y
};

void spmm_task(void* p, int64_t t) {
  const SpmmTask& k = *static_cast<const SpmmTask*>(p);
  const int64_t chunk = t % k.row_chunks;
  const int64_t b = (t / k.row_chunks) % k.blocks;
  const int64_t img = t / (k.row_chunks * k.blocks);
  const int64_t r0 = chunk * k.rows_per_chunk, r1 = std::min(k.w->rows, r0 + k.rows_per_chunk);
  if (r0 >= r1) return;
  const size_t c0 = static_cast<size_t>(b) * k.ks->block;
  const size_t n = std::min(k.ks->block, static_cast<size_t>(k.hw) - c0);
  const size_t ld = static_cast<size_t>(k.hw);
  float* y = k.y + img * k.y_image + c0;
  const float* res = k.res ? k.res + img * k.y_image + c0 : nullptr;
  k.ks->spmm(*k.w, r0, r1, k.x + img * k.x_image + c0, ld, n, k.bias, res, y, ld);
  if (k.act->kind != Activation::Kind::None)
    for (int64_t r = r0; r < r1; ++r) k.ks->dense->activation(y + r * ld, n, k.act);
}

void run_spmm(const SparseF32Kernels& ks, const SparseRows& w, const float* bias, const Activation& act,
              int64_t images, int64_t hw, const float* x, float* y, const float* res, const TaskRunner* runner) {
  if (images <= 0 || hw <= 0 || w.rows <= 0) return;
  SpmmTask k{&ks, &w, bias, &act, x, y, res, hw, 0, 1, w.rows, 0, 0};
  k.blocks = (hw + static_cast<int64_t>(ks.block) - 1) / static_cast<int64_t>(ks.block);
  k.x_image = static_cast<size_t>(w.cols * hw);
  k.y_image = static_cast<size_t>(w.rows * hw);
  // Too few column tasks to keep every thread busy: split the output rows too (about
  // 4 tasks per thread; at least 8 rows per task).
  const int threads = runner != nullptr ? runner->threads : 1;
  const int64_t col_tasks = images * k.blocks;
  if (threads > 1 && col_tasks < 4 * threads) {
    const int64_t want = (4 * threads + col_tasks - 1) / col_tasks;
    const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(want, w.rows / 8));
    k.rows_per_chunk = (w.rows + chunks - 1) / chunks;
    k.row_chunks = (w.rows + k.rows_per_chunk - 1) / k.rows_per_chunk;
  }
  run_tasks(runner, col_tasks * k.row_chunks, &k, &spmm_task);
}

// y[c, r] = x[r, c] for r < rows, c < cols, in tiles of 32 x 32.
struct TransposeTask {
  const float* x;
  float* y;
  int64_t rows, cols;
};
constexpr int64_t kTile = 32;
void transpose_task(void* p, int64_t t) {
  const TransposeTask& k = *static_cast<const TransposeTask*>(p);
  const int64_t ct = (k.cols + kTile - 1) / kTile;
  const int64_t r0 = (t / ct) * kTile, c0 = (t % ct) * kTile;
  const int64_t r1 = std::min(k.rows, r0 + kTile), c1 = std::min(k.cols, c0 + kTile);
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) k.y[c * k.rows + r] = k.x[r * k.cols + c];
}
void transpose(const float* x, float* y, int64_t rows, int64_t cols, const TaskRunner* runner) {
  TransposeTask k{x, y, rows, cols};
  run_tasks(runner, ((rows + kTile - 1) / kTile) * ((cols + kTile - 1) / kTile), &k, &transpose_task);
}

struct SpmvTask {
  const SparseF32Kernels* ks;
  const SparseRows* w;
  const float* bias;
  const Activation* act;
  const float* a;
  float* y;
  int64_t m, rows_per_task;
};
void spmv_task(void* p, int64_t t) {
  const SpmvTask& k = *static_cast<const SpmvTask*>(p);
  const int64_t r0 = t * k.rows_per_task, r1 = std::min(k.w->rows, r0 + k.rows_per_task);
  const size_t n = static_cast<size_t>(k.w->rows);
  k.ks->spmv(*k.w, r0, r1, k.a, static_cast<size_t>(k.w->cols), static_cast<size_t>(k.m), k.bias, k.y, n);
  if (k.act->kind != Activation::Kind::None)
    for (int64_t i = 0; i < k.m; ++i) k.ks->dense->activation(k.y + i * n + r0, static_cast<size_t>(r1 - r0), k.act);
}

}  // namespace

void sparse_conv1x1_run(const SparseF32Kernels& ks, const SparseRows& w, const float* bias,
                        const Activation& act, int64_t n, int64_t hw, const float* x, float* y,
                        const float* residual, const TaskRunner* runner) {
  run_spmm(ks, w, bias, act, n, hw, x, y, residual, runner);
}

size_t sparse_fc_scratch_floats(const SparseF32Kernels& ks, const SparseRows& w, int64_t m) {
  if (m < static_cast<int64_t>(ks.fc_spmm_min_rows)) return 0;
  return static_cast<size_t>((w.cols + w.rows) * m);
}

void sparse_fc_run(const SparseF32Kernels& ks, const SparseRows& w, const float* bias,
                   const Activation& act, int64_t m, const float* a, float* y, float* scratch,
                   const TaskRunner* runner) {
  if (m <= 0 || w.rows <= 0) return;
  if (m < static_cast<int64_t>(ks.fc_spmm_min_rows)) {
    // About 64 output rows per task (the split only decides which thread computes a row).
    const int64_t per = 64, tasks = (w.rows + per - 1) / per;
    SpmvTask k{&ks, &w, bias, &act, a, y, m, per};
    run_tasks(runner, tasks, &k, &spmv_task);
    return;
  }
  float* at = scratch;                 // A^T [cols, m]
  float* yt = scratch + w.cols * m;    // Y^T [rows, m]
  transpose(a, at, m, w.cols, runner);
  run_spmm(ks, w, bias, act, 1, m, at, yt, nullptr, runner);
  transpose(yt, y, w.rows, m, runner);
}

}  // namespace cpu
}  // namespace mobrt
