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

// The microkernel of each instruction set (f32_gemm_<isa>.cpp; the SIMD ones exist only
// in builds for their architecture). Which one runs is decided by the kernel registry:
// each register_<set>.cpp hands its set's table (f32/f32_kernels.h) to the op kernels.
extern const GemmUkernel kF32GemmScalar;
extern const GemmUkernel kF32GemmAvx2;
extern const GemmUkernel kF32GemmAvx512;
extern const GemmUkernel kF32GemmNeon;

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
// `uk` computes the tiles; `act_fn` (the same instruction set's vectorized activation)
// runs over finished tiles when args.act is not a clamp the epilogue can fold.
void sgemm_packed(const GemmUkernel& uk, ActivationFn act_fn, const SgemmArgs& args,
                  const TaskRunner* runner);

// Convenience: C = act(op(A) x op(B) + bias) on unpacked row-major operands; packs A into
// memory it allocates and gathers B block by block. Used by MatMul and benchmarks.
void sgemm(const GemmUkernel& uk, ActivationFn act_fn, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
           const float* a, size_t lda, const float* b, size_t ldb, float* c, size_t ldc,
           const float* bias, BiasMode bias_mode, const Activation& act,
           const TaskRunner* runner);

// Full clamp bounds an activation folds into the GEMM epilogue; other kinds return
// false and must run as a separate ActivationFn pass over the tile.
bool act_as_clamp(const Activation& act, float* lo, float* hi);

}  // namespace cpu
}  // namespace mobrt
