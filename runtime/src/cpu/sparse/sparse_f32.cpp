// Packing, the MOBRT_SPARSE mode and the layer drivers of the sparse fp32 kernels
// (sparse_f32.h): task split, column-block copies and the activation; the per-ISA
// SpMM/SpMV microkernels do the arithmetic. Baseline flags (no intrinsics here).
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

void run(const SparseRunner* r, int64_t n, void* ctx, void (*fn)(void*, int64_t, int64_t, int)) {
  if (n <= 0) return;
  if (r == nullptr || r->parallel_for == nullptr || r->threads <= 1 || n == 1) return fn(ctx, 0, n, 0);
  r->parallel_for(r->pool, n, ctx, fn);
}

// NaN and infinities (docs/runtime.md): the dense kernels and the numpy reference add
// 0 * x for every pruned weight, which is NaN when x is NaN or +-inf; the sparse kernels
// skip those products. So when an input value is not finite (rare: checked with one pass
// over the data the kernel reads, SparseF32Kernels::any_nonfinite), every output that a pruned weight links to it is set
// to NaN afterwards (NaN stays NaN through every fused activation, as in the reference).
bool nonfinite(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return (b & 0x7f800000u) == 0x7f800000u;
}
bool stores(const SparseRows& w, int64_t r, int32_t c) {  // row r has a non-zero at column c
  const int32_t* b = w.col.data() + w.start[static_cast<size_t>(r)];
  const int32_t* e = w.col.data() + w.start[static_cast<size_t>(r) + 1];
  return std::binary_search(b, e, c);
}
constexpr float kNaN = __builtin_nanf("");

float* aligned64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
}

// What both drivers' tasks read: the kernels, the packed weights, the bias, the
// activation, the dense input and the output.
struct SparseTask {
  const SparseF32Kernels* ks;
  const SparseRows* w;
  const float* bias;
  const Activation* act;
  const float* x;
  float* y;
};

// y[r * stride] = NaN for the rows r in [r0, r1) that store no non-zero at column c,
// whose input value is not finite (above).
void nan_where_skipped(const SparseRows& w, int64_t r0, int64_t r1, int32_t c, float* y, size_t stride) {
  for (int64_t r = r0; r < r1; ++r)
    if (!stores(w, r, c)) y[static_cast<size_t>(r) * stride] = kNaN;
}

// The SpMM over [images] x [column blocks] x [row ranges]: each task copies its column
// block of X into its thread's scratch (rows of `block` floats), runs the microkernel,
// then the activation over each finished row segment.
struct SpmmTask : SparseTask {
  const float* res;
  float* scratch;  // aligned; threads x (cols * block) floats
  int64_t hw, blocks, row_chunks, rows_per_chunk;
};

void spmm_tasks(void* p, int64_t begin, int64_t end, int thread) {
  const SpmmTask& k = *static_cast<const SpmmTask*>(p);
  const size_t blk = k.ks->block, ld = static_cast<size_t>(k.hw), cols = static_cast<size_t>(k.w->cols);
  float* xb = k.scratch + static_cast<size_t>(thread) * cols * blk;
  int64_t copied = -1;  // the (image, block) now in xb
  bool bad = false;     // xb holds a NaN or an infinity
  for (int64_t t = begin; t < end; ++t) {
    const int64_t chunk = t % k.row_chunks, ib = t / k.row_chunks;  // ib = image * blocks + block
    const int64_t r0 = chunk * k.rows_per_chunk, r1 = std::min(k.w->rows, r0 + k.rows_per_chunk);
    const int64_t img = ib / k.blocks;
    const size_t c0 = static_cast<size_t>(ib % k.blocks) * blk;
    const size_t n = std::min(blk, ld - c0);
    if (r0 >= r1) continue;
    const float* xi = k.x + static_cast<size_t>(img) * cols * ld + c0;
    if (copied != ib) {
      for (size_t c = 0; c < cols; ++c) std::memcpy(xb + c * blk, xi + c * ld, n * sizeof(float));
      copied = ib;
      bad = false;
      for (size_t c = 0; c < cols && !bad; ++c) bad = k.ks->any_nonfinite(xb + c * blk, n);
    }
    const size_t yoff = static_cast<size_t>(img) * static_cast<size_t>(k.w->rows) * ld + c0;
    float* y = k.y + yoff;
    k.ks->spmm(*k.w, r0, r1, xb, blk, n, k.bias, k.res ? k.res + yoff : nullptr, y, ld);
    if (k.act->kind != Activation::Kind::None)
      for (int64_t r = r0; r < r1; ++r) k.ks->dense->activation(y + r * ld, n, k.act);
    if (bad)
      for (size_t c = 0; c < cols; ++c)
        for (size_t j = 0; j < n; ++j)
          if (nonfinite(xb[c * blk + j])) nan_where_skipped(*k.w, r0, r1, static_cast<int32_t>(c), y + j, ld);
  }
}

void run_spmm(const SparseF32Kernels& ks, const SparseRows& w, const float* bias, const Activation& act,
              int64_t images, int64_t hw, const float* x, float* y, const float* res, float* scratch,
              const SparseRunner* runner) {
  if (images <= 0 || hw <= 0 || w.rows <= 0) return;
  SpmmTask k{{&ks, &w, bias, &act, x, y}, res, aligned64(scratch), hw, 0, 1, w.rows};
  k.blocks = (hw + static_cast<int64_t>(ks.block) - 1) / static_cast<int64_t>(ks.block);
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
  run(runner, col_tasks * k.row_chunks, &k, &spmm_tasks);
}

size_t spmm_scratch_floats(const SparseF32Kernels& ks, const SparseRows& w, int threads) {
  return static_cast<size_t>(std::max(threads, 1)) * static_cast<size_t>(w.cols) * ks.block + 16;
}

// y[c, r] = x[r, c] for r < rows, c < cols, in tiles of 32 x 32.
struct TransposeTask {
  const float* x;
  float* y;
  int64_t rows, cols;
};
constexpr int64_t kTile = 32;
void transpose_tasks(void* p, int64_t begin, int64_t end, int) {
  const TransposeTask& k = *static_cast<const TransposeTask*>(p);
  const int64_t ct = (k.cols + kTile - 1) / kTile;
  for (int64_t t = begin; t < end; ++t) {
    const int64_t r0 = (t / ct) * kTile, c0 = (t % ct) * kTile;
    const int64_t r1 = std::min(k.rows, r0 + kTile), c1 = std::min(k.cols, c0 + kTile);
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = c0; c < c1; ++c) k.y[c * k.rows + r] = k.x[r * k.cols + c];
  }
}
void transpose(const float* x, float* y, int64_t rows, int64_t cols, const SparseRunner* runner) {
  TransposeTask k{x, y, rows, cols};
  run(runner, ((rows + kTile - 1) / kTile) * ((cols + kTile - 1) / kTile), &k, &transpose_tasks);
}

struct SpmvTask : SparseTask {  // x is A [m, cols]
  int64_t m, rows_per_task;
  bool bad;  // A holds a NaN or an infinity
};
void spmv_tasks(void* p, int64_t begin, int64_t end, int) {
  const SpmvTask& k = *static_cast<const SpmvTask*>(p);
  const size_t n = static_cast<size_t>(k.w->rows);
  for (int64_t t = begin; t < end; ++t) {
    const int64_t r0 = t * k.rows_per_task, r1 = std::min(k.w->rows, r0 + k.rows_per_task);
    k.ks->spmv(*k.w, r0, r1, k.x, static_cast<size_t>(k.w->cols), static_cast<size_t>(k.m), k.bias, k.y, n);
    if (k.act->kind != Activation::Kind::None)
      for (int64_t i = 0; i < k.m; ++i)
        k.ks->dense->activation(k.y + i * n + r0, static_cast<size_t>(r1 - r0), k.act);
    if (k.bad)
      for (int64_t i = 0; i < k.m; ++i)
        for (int64_t c = 0; c < k.w->cols; ++c)
          if (nonfinite(k.x[i * k.w->cols + c]))
            nan_where_skipped(*k.w, r0, r1, static_cast<int32_t>(c), k.y + i * n, 1);
  }
}

}  // namespace

size_t sparse_conv1x1_scratch_floats(const SparseF32Kernels& ks, const SparseRows& w, int threads) {
  return spmm_scratch_floats(ks, w, threads);
}

void sparse_conv1x1_run(const SparseF32Kernels& ks, const SparseRows& w, const float* bias,
                        const Activation& act, int64_t n, int64_t hw, const float* x, float* y,
                        const float* residual, float* scratch, const SparseRunner* runner) {
  run_spmm(ks, w, bias, act, n, hw, x, y, residual, scratch, runner);
}

size_t sparse_fc_scratch_floats(const SparseF32Kernels& ks, const SparseRows& w, int64_t m, int threads) {
  if (m < static_cast<int64_t>(ks.fc_spmm_min_rows)) return 0;
  return static_cast<size_t>((w.cols + w.rows) * m) + spmm_scratch_floats(ks, w, threads);
}

void sparse_fc_run(const SparseF32Kernels& ks, const SparseRows& w, const float* bias,
                   const Activation& act, int64_t m, const float* a, float* y, float* scratch,
                   const SparseRunner* runner) {
  if (m <= 0 || w.rows <= 0) return;
  if (m < static_cast<int64_t>(ks.fc_spmm_min_rows)) {
    // 64 output rows per task (the split only decides which thread computes a row).
    const int64_t per = 64, tasks = (w.rows + per - 1) / per;
    SpmvTask k{{&ks, &w, bias, &act, a, y}, m, per, ks.any_nonfinite(a, static_cast<size_t>(m * w.cols))};
    run(runner, tasks, &k, &spmv_tasks);
    return;
  }
  float* at = scratch;                 // A^T [cols, m]
  float* yt = scratch + w.cols * m;    // Y^T [rows, m]
  transpose(a, at, m, w.cols, runner);
  run_spmm(ks, w, bias, act, 1, m, at, yt, nullptr, yt + w.rows * m, runner);
  transpose(yt, y, w.rows, m, runner);
}

}  // namespace cpu
}  // namespace mobrt
