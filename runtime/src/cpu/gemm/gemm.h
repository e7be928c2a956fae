// Packed single-precision GEMM: C[M,N] = act(A[M,K] x B[K,N] + bias).
//
// Why: Conv (im2col or 1x1), FullyConnected, Gemm and MatMul all reduce to this,
// so one fast driver plus one small microkernel per instruction set covers them.
//
// Algorithm (BLIS/GotoBLAS style):
//   1. A is packed into MR-row panels, each panel k-major (a[k*MR + r]), K-blocked by
//      KC (all panels of one KC block are contiguous); weights are packed once at
//      prepare time (sgemm_pack_a / sgemm_pack_b).
//   2. B is packed into NR-column panels (b[k*NR + c]), per run for activations.
//   3. The output is cut into MC x NC blocks (the unit of parallelism); inside a block
//      K is walked in KC slices so an A micro-panel stays in L1 and the B slice in L2.
//   4. The microkernel computes an MR x NR tile in registers; the last K slice applies
//      the epilogue (bias, then clamp to [min,max]); activations that are not a clamp
//      (LeakyRelu, HardSwish, Sigmoid, Tanh) run vectorized over the finished tile.
// Block sizes never depend on the thread count, so results agree across threads.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/activation.h"

namespace mobrt {
namespace cpu {

// The fused activation (applied after bias) is the runtime's one Activation
// (core/activation.h): mobrt::Activation, reached unqualified from namespace cpu.
using ActKind = Activation::Kind;

// Bias is added per output row (conv in NCHW: per output channel) or per column (FC).
enum class BiasMode : int32_t { kNone = 0, kPerRow = 1, kPerCol = 2 };

// What the microkernel does after the last K slice.
struct GemmEpilogue {
  const float* bias = nullptr;  // already offset to this tile's first row/col
  BiasMode bias_mode = BiasMode::kNone;
  float min = -__builtin_inff();  // clamp bounds (Relu/Clip folded here)
  float max = __builtin_inff();
};

// Microkernel: C tile (mr <= MR rows, nr <= NR cols, row stride ldc) =
//   (accumulate ? C : 0) + sum_k a[k*MR + r] * b[k*ldb + c], then if ep != nullptr
//   the epilogue. B is a packed panel (ldb == NR) or rows of a matrix read in place
//   (ldb > NR, e.g. a 1x1 convolution's input). Partial tiles (mr < MR or nr < NR)
//   read/write only the valid part.
typedef void (*GemmUkernelFn)(size_t kc, const float* a, const float* b, size_t ldb, float* c,
                              size_t ldc, size_t mr, size_t nr, int accumulate,
                              const GemmEpilogue* ep);

// Vectorized in-place activation over n contiguous floats (n may be anything).
typedef void (*ActivationFn)(float* x, size_t n, const Activation* act);

struct GemmUkernel {
  const char* name;  // e.g. "f32_gemm_ukernel_14x32__avx512f"
  GemmUkernelFn fn;
  int mr;
  int nr;
};

// Runs fn(ctx, i) for i in [0, n), possibly on several threads. The core's thread pool
// is adapted to this shape; nullptr or a runner with threads <= 1 means serial.
struct TaskRunner {
  void (*parallel_for)(void* pool, int64_t n, void* ctx, void (*fn)(void* ctx, int64_t i)) =
      nullptr;
  void* pool = nullptr;
  int threads = 1;
};
void run_tasks(const TaskRunner* runner, int64_t n, void* ctx, void (*fn)(void* ctx, int64_t i));

// ---- Dispatch ------------------------------------------------------------------------
// Instruction sets the optimized kernels are built for. Values index kernel tables.
enum class SimdIsa : int32_t { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kNeon = 3, kCount = 4 };
const char* isa_name(SimdIsa isa);
// Whether this build has kernels for `isa` and the running CPU/OS can execute them.
bool isa_available(SimdIsa isa);
// Best available instruction set on this machine (MOBRT_ISA=scalar|avx2|avx512|neon
// in the environment caps it, for testing and benchmarking).
SimdIsa best_isa();

// ---- Per-instruction-set kernel table -------------------------------------------------
// y[i] = op(a[i*sa], b[i*sb]) for i < n, sa/sb in {0, 1}, then act (kNone/kRelu/kClip).
enum class BinOp : int32_t { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3, kMax = 4, kMin = 5 };
typedef void (*BinaryFn)(BinOp op, const float* a, size_t sa, const float* b, size_t sb,
                         float* y, size_t n, const Activation* act);
// One output row of a 3x3 depthwise convolution with stride S (1 or 2):
//   y[x] = act(bias + sum_{r<3,k<3} rows_r[x*S + k] * w9[3r + k]) for x < n.
// Reads at most one float past rows_r[(n-1)*S + 2] (stride 2 loads pairs).
typedef void (*DwRowFn)(const float* r0, const float* r1, const float* r2, const float* w9,
                        float bias, float* y, size_t n, const Activation* act);
// Softmax over rows: `rows` rows of `len` contiguous floats (LogSoftmax when log != 0).
typedef void (*SoftmaxRowsFn)(const float* x, float* y, size_t rows, size_t len, int log);
// Softmax along a strided axis: x[o][a][i] with inner `inner` > 1, per outer block.
typedef void (*SoftmaxInnerFn)(const float* x, float* y, size_t len, size_t inner, int log);
// Sum of n contiguous floats (global average pooling, reductions).
typedef float (*SumFn)(const float* x, size_t n);
// One output row of pooling over `nrows` input rows (the window rows inside the image):
//   y[x] = max/sum over i < nrows, j < kw of rows[i][x*s + j], for x < n (avg: times scale).
// Reads at most one float past the last tap (stride 2 loads pairs).
typedef void (*MaxPoolRowFn)(const float* const* rows, size_t nrows, size_t kw, size_t s,
                             float* y, size_t n);
typedef void (*AvgPoolRowFn)(const float* const* rows, size_t nrows, size_t kw, size_t s,
                             float* y, size_t n, float scale);

// Whole-plane depthwise 3x3 (dilation 1, stride s = 2, any pads, ow <= 480): y[oh, ow]
// from x[ih, iw] read in place (no padded copy), clamped to [lo, hi]. Optional per ISA
// (nullptr: the driver uses the row kernels above).
typedef void (*DwPlaneFn)(const float* x, int64_t ih, int64_t iw, int64_t pt, int64_t pl,
                          int64_t s, const float* w9, float bias, float* y, int64_t oh,
                          int64_t ow, float lo, float hi);

struct IsaKernels {
  SimdIsa isa;
  GemmUkernel gemm;
  ActivationFn activation;
  BinaryFn binary;
  DwRowFn dwconv3x3s1;  // "f32_dwconv_3x3s1__<isa>"
  DwRowFn dwconv3x3s2;
  SoftmaxRowsFn softmax_rows;
  SoftmaxInnerFn softmax_inner;
  SumFn sum;
  MaxPoolRowFn maxpool_row;
  AvgPoolRowFn avgpool_row;
  // im2col fused with B packing (a BPacker::pack; ctx is an Im2col, see im2col.h).
  void (*im2col_pack)(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr,
                      float* dst);
  DwPlaneFn dwconv3x3s2_plane;  // optional, "f32_dwconv_3x3s2_plane__<isa>"
  // Optional stride-1 plane kernel for rows up to 128 wide: iw + pl <= 128, ow + 2 <= 128.
  DwPlaneFn dwconv3x3s1_narrow;
};

// Table of the running machine's best instruction set (or `isa`, if available).
const IsaKernels& isa_kernels();
const IsaKernels* isa_kernels_for(SimdIsa isa);  // nullptr when not built/not runnable

// ---- Packing -------------------------------------------------------------------------
// Size in floats of A (M x K) packed into MR panels (zero padded to a multiple of MR).
size_t sgemm_packed_a_size(const GemmUkernel& uk, size_t m, size_t k);
// A element (i, kk) is a[i*rs + kk*cs]: row-major A is (lda, 1), transposed is (1, lda).
// kseg != 0: K slices never cross a multiple of kseg (must match SgemmArgs::kseg).
void sgemm_pack_a(const GemmUkernel& uk, size_t m, size_t k, const float* a, size_t rs,
                  size_t cs, float* packed, size_t kseg = 0);
size_t sgemm_packed_b_size(const GemmUkernel& uk, size_t k, size_t n);
// B element (kk, j) is b[kk*rs + j*cs].
void sgemm_pack_b(const GemmUkernel& uk, size_t k, size_t n, const float* b, size_t rs,
                  size_t cs, float* packed);

// ---- Driver --------------------------------------------------------------------------
// Produces rows [k0, k0 + kc) x columns [j0, j0 + nc) of B (j0 a multiple of nr) as packed
// panels: dst[(j - j0) / nr * kc * nr + (kk - k0) * nr + j % nr], zero for columns >= n.
// Lets B be gathered block by block into a cache-resident buffer (im2col, strided inputs)
// instead of packing all of it up front.
struct BPacker {
  void (*pack)(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr,
               float* dst) = nullptr;
  const void* ctx = nullptr;
};

// C = act(packed_a x B + bias). A is packed (sgemm_pack_a); B is pre-packed in full
// (packed_b, e.g. FC weights), produced block by block by b_packer (im2col), or read in
// place from row-major rows (b_rows/ldb, e.g. a 1x1 convolution's input).
struct SgemmArgs {
  size_t m = 0, n = 0, k = 0;
  const float* packed_a = nullptr;
  const float* packed_b = nullptr;
  const BPacker* b_packer = nullptr;
  const float* b_rows = nullptr;  // or: B row-major with row stride ldb, read in place
  size_t ldb = 0;
  // or: B in segments of kseg rows; b_slice(ctx, pc) gives row pc, rows of a slice (which
  // never crosses a segment) are ldb apart. For shift-and-accumulate convolution.
  const float* (*b_slice)(const void* ctx, size_t pc) = nullptr;
  const void* b_slice_ctx = nullptr;
  size_t kseg = 0;  // also set when A was packed with a kseg
  float* c = nullptr;
  size_t ldc = 0;
  // C already holds an addend (a convolution's fused residual): the first K slice
  // accumulates onto it instead of overwriting it.
  bool accumulate_c = false;
  const float* bias = nullptr;
  BiasMode bias_mode = BiasMode::kNone;
  Activation act;
};
void sgemm_packed(const IsaKernels& ks, const SgemmArgs& args, const TaskRunner* runner);

// Convenience: C = act(op(A) x op(B) + bias) on unpacked row-major operands; packs A into
// memory it allocates and gathers B block by block. Used by MatMul and benchmarks.
void sgemm(const IsaKernels& ks, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
           const float* a, size_t lda, const float* b, size_t ldb, float* c, size_t ldc,
           const float* bias, BiasMode bias_mode, const Activation& act,
           const TaskRunner* runner);

// Full clamp bounds an activation folds into the GEMM epilogue; other kinds return
// false and must run as a separate ActivationFn pass over the tile.
bool act_as_clamp(const Activation& act, float* lo, float* hi);

}  // namespace cpu
}  // namespace mobrt
