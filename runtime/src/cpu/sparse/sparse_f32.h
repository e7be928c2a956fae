// Sparse fp32 kernels for pruned weights: 1x1 convolution (NCHW, stride 1, no pads,
// dilation 1, group 1) and fully connected (Gemm with constant B, MatMul with a constant
// 2-D B). Core-free: the op glue (sparse_f32_kernel.h) and standalone tests call them.
//
// Why: unstructured magnitude pruning (quantize.prune) leaves 50-95 % zeros that a dense
// GEMM still multiplies. Skipping them pays once the zero fraction is high enough that
// the indexed loads cost less than the dense FLOPs saved (thresholds below, measured).
//
// Algorithm (XNNPACK's SpMM idea):
//   1. prepare: W [rows = outputs, cols = inputs] becomes compressed rows (SparseRows):
//      per output its non-zero values and their input indices, in input order; the
//      dense weight is not read again.
//   2. 1x1 conv: per image, Y[o, p] = bias[o] + sum over non-zero W[o, c] of
//      W[o, c] * X[c, p] (+ residual), vectorised along p = H*W: the columns are cut in
//      blocks of SparseF32Kernels::block floats; a block of X is copied to the thread's
//      scratch as cin aligned rows (X's own rows are H*W apart: power-of-two-ish strides
//      alias in L1 and odd ones split cache lines; the copy made the kernel 2x faster),
//      then every output row walks its non-zeros, broadcasting the value and FMAing
//      X[c, block] into one register tile, so the block stays in L1 for all rows.
//      Tasks: (image, column block[, row range when there are few blocks]).
//   3. FC with batch 1 (m < fc_spmm_min_rows, 2 in every set): per output row, a dot
//      product of its non-zeros with the A row, gathering A[c] by index (AVX2/AVX-512
//      vgatherdps, NEON lane loads), plus the bias. Larger batches transpose A to [K, m]
//      in scratch, run step 2's SpMM with m as the columns, and transpose the [N, m]
//      result back.
//   4. The SpMM starts each sum at the bias, then adds the non-zeros in input order (then
//      the conv's fused residual); the fused activation runs over each finished row
//      segment with the dense fp32 table's vectorised activation (as the dense conv/FC
//      epilogues do).
//      Each output element's arithmetic does not depend on the task split, so results
//      agree across thread counts.
//   5. NaN and infinities: a skipped 0 * x is NaN in the dense kernels and the reference
//      when x is NaN or +-inf, so when the input holds such a value (one pass over the
//      data, in cache) the outputs a pruned weight links to it become NaN afterwards.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpu/f32/f32_kernels.h"

namespace mobrt {
namespace cpu {

// W [rows, cols] as compressed rows: row r's non-zeros are val[start[r] .. start[r+1])
// at input indices col[...], ascending.
struct SparseRows {
  int64_t rows = 0, cols = 0;
  std::vector<uint32_t> start;  // rows + 1 entries
  std::vector<int32_t> col;
  std::vector<float> val;
  int64_t nnz() const { return static_cast<int64_t>(val.size()); }
};

// Packs W scaled by `scale`: element (r, c) at w[r * rs + c * cs] (Conv weights [cout,
// cin, 1, 1]: rs = cols, cs = 1; Gemm B [K, N]: rs = 1, cs = N; transB: rs = K, cs = 1).
// An entry is stored when it is not +-0 (NaN and infinities are stored).
void sparse_pack(const float* w, int64_t rows, int64_t cols, int64_t rs, int64_t cs, float scale,
                 SparseRows* out);
// The fraction of n floats that are +-0 (1 when n == 0).
double zero_fraction(const float* w, int64_t n);

// SpMM over one column block (n <= the table's block columns) and rows [r0, r1):
//   y[r*ldy + j] = (bias ? bias[r] : 0) + sum_k val[k] * x[col[k]*ldx + j] (+ res[r*ldy + j])
// for j < n. res may equal y. No activation (the driver applies it).
typedef void (*SpmmFn)(const SparseRows& w, int64_t r0, int64_t r1, const float* x, size_t ldx,
                       size_t n, const float* bias, const float* res, float* y, size_t ldy);
// Sparse rows times dense rows: for r in [r0, r1) and i < m:
//   y[i*ldy + r] = (bias ? bias[r] : 0) + sum_k val[k] * a[i*lda + col[k]].
typedef void (*SpmvFn)(const SparseRows& w, int64_t r0, int64_t r1, const float* a, size_t lda,
                       size_t m, const float* bias, float* y, size_t ldy);

// One instruction set's sparse kernels (sparse_f32_<isa>.cpp) and when `auto` picks them.
struct SparseF32Kernels {
  const char* isa;          // as kernel names spell it ("avx2")
  SpmmFn spmm;
  SpmvFn spmv;
  const F32Kernels* dense;  // the set's dense table: its vectorised activation
  bool (*any_nonfinite)(const float* x, size_t n);  // a NaN or +-inf among x[0, n)
  size_t block;             // columns per SpMM block (a multiple of the vector width)
  size_t fc_spmm_min_rows;  // FC batch from which the transposed SpMM beats the gather path
  // MOBRT_SPARSE=auto takes the sparse kernel when the weight's zero fraction is at
  // least this (kernel-selection time); > 1: never (see the constants below). FC: the
  // batch-1 threshold when A's rows are declared as 1 (the gather path), else fc_batch.
  float conv_min_sparsity;
  float fc_b1_min_sparsity;
  float fc_batch_min_sparsity;
};
extern const SparseF32Kernels kSparseF32Scalar;  // every build
extern const SparseF32Kernels kSparseF32Avx2;    // x86-64 builds
extern const SparseF32Kernels kSparseF32Avx512;
extern const SparseF32Kernels kSparseF32Neon;    // arm64 builds

// Crossover sparsities for MOBRT_SPARSE=auto: the zero fraction from which the sparse
// kernel beats the dense GEMM kernel of the same set, measured per layer (dense / sparse
// time at 1 thread: benchmarks/bench_sparse.py --layers; the table is in
// runtime/KERNELS.md, "Sparse fp32 kernels") and rounded up for a margin. 1x1 convs
// (56x56x128 .. 7x7x1024) cross over at 45-60 % (AVX2) and 50-65 % (AVX-512, whose dense
// GEMM is faster); FC at batch 1 (gathers) at 50-70 % when the weights stream from
// memory (the MLP of bench_sparse.py, 8-16 MB layers) but 80-90 % for a 4 MB layer run
// again and again from cache, so 75/80 %; at batch >= 2 (SpMM over the transposed batch)
// at 50-75 % for weights from memory, 70-85 % from cache (batches of 2-8 rows need the
// most), so 80 %. Scalar: never automatically (the scalar cap runs the
// reference kernels; MOBRT_SPARSE=always still selects the scalar sparse kernels, for tests).
constexpr float kSparseNever = 2.f;
constexpr float kSparseConvMinSparsityAvx2 = 0.60f;
constexpr float kSparseFcB1MinSparsityAvx2 = 0.80f;
constexpr float kSparseFcBatchMinSparsityAvx2 = 0.80f;
constexpr float kSparseConvMinSparsityAvx512 = 0.65f;
constexpr float kSparseFcB1MinSparsityAvx512 = 0.75f;
constexpr float kSparseFcBatchMinSparsityAvx512 = 0.80f;
// NEON: not measured (qemu's timings say nothing about a phone): the x86 values raised
// by 10 points, XNNPACK's sparse MobileNet path being reported to win from about 70 %
// on armv8 cores. Replace with measurements from a device.
constexpr float kSparseConvMinSparsityNeon = 0.70f;
constexpr float kSparseFcB1MinSparsityNeon = 0.85f;
constexpr float kSparseFcBatchMinSparsityNeon = 0.90f;

// MOBRT_SPARSE=off|auto|always (environment, read at kernel selection, i.e. once per
// interpreter creation like MOBRT_MAX_ISA). Absent, empty or another value: auto.
enum class SparseMode { kOff, kAuto, kAlways };
SparseMode sparse_mode();

// The interpreter's thread pool as the drivers see it: fn(ctx, begin, end, thread) on
// contiguous chunks of [0, n), thread < threads (each thread owns a slice of the scratch).
// A null runner (or threads <= 1) runs everything inline as thread 0.
struct SparseRunner {
  void (*parallel_for)(void* pool, int64_t n, void* ctx,
                       void (*fn)(void* ctx, int64_t begin, int64_t end, int thread)) = nullptr;
  void* pool = nullptr;
  int threads = 1;
};

// Scratch (floats) of sparse_conv1x1_run: per thread, one column block of X copied to
// rows of `block` floats (64-byte aligned, so no load splits a cache line and the block
// does not alias itself in L1 whatever H*W is).
size_t sparse_conv1x1_scratch_floats(const SparseF32Kernels& ks, const SparseRows& w, int threads);
// y[N, rows, hw] = act(conv1x1(x[N, cols, hw]) + bias (+ residual)), residual may equal y.
void sparse_conv1x1_run(const SparseF32Kernels& ks, const SparseRows& w, const float* bias,
                        const Activation& act, int64_t n, int64_t hw, const float* x, float* y,
                        const float* residual, float* scratch, const SparseRunner* runner);
// Scratch (floats) of sparse_fc_run for a batch of m rows.
size_t sparse_fc_scratch_floats(const SparseF32Kernels& ks, const SparseRows& w, int64_t m, int threads);
// y[m, rows] = act(a[m, cols] x W^T + bias).
void sparse_fc_run(const SparseF32Kernels& ks, const SparseRows& w, const float* bias,
                   const Activation& act, int64_t m, const float* a, float* y, float* scratch,
                   const SparseRunner* runner);

}  // namespace cpu
}  // namespace mobrt
