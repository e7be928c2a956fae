// The fp32 function table of one instruction set: its GEMM microkernel and the
// vectorized row functions (activation, binary, depthwise 3x3, pooling, softmax, sum)
// the layer drivers in f32/ call. One table per set, constant-initialized in that set's
// file (f32/ops_scalar.cpp, x86/ops_avx2.cpp, x86/ops_avx512.cpp, neon/ops_neon.cpp).
//
// A table is plain data: it does not choose anything. The kernel registry is the one
// dispatch: each register_f32_<isa>.cpp registers the op kernels (register_f32.h) with
// its own table under its Isa, and the interpreter picks the kernel (and so the table)
// by CPU features and the MOBRT_MAX_ISA / max_isa cap.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu/gemm/gemm.h"

namespace mobrt {
namespace cpu {

// y[i] = op(a[i*sa], b[i*sb]) for i < n, sa/sb in {0, 1}, then act.
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

struct F32Kernels {
  const char* isa;          // the set's name, as kernel names spell it ("avx2")
  const GemmUkernel* gemm;  // its GEMM microkernel (gemm/gemm.h)
  ActivationFn activation;
  BinaryFn binary;
  DwRowFn dwconv3x3s1;  // "f32_dwconv_3x3s1__<isa>"
  DwRowFn dwconv3x3s2;
  SoftmaxRowsFn softmax_rows;
  SoftmaxInnerFn softmax_inner;
  SumFn sum;
  MaxPoolRowFn maxpool_row;
  AvgPoolRowFn avgpool_row;
  // im2col fused with B packing (a BPacker::pack; ctx is an Im2col, see f32/im2col.h).
  void (*im2col_pack)(const void* ctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr,
                      float* dst);
  DwPlaneFn dwconv3x3s2_plane;  // optional, "f32_dwconv_3x3s2_plane__<isa>"
  // Optional stride-1 plane kernel for rows up to 128 wide: iw + pl <= 128, ow + 2 <= 128.
  DwPlaneFn dwconv3x3s1_narrow;
};

// The tables. Only those of the build's architecture exist (x86: avx2, avx512; arm64:
// neon; scalar everywhere); only the registry decides which one runs.
extern const F32Kernels kF32Scalar;
extern const F32Kernels kF32Avx2;
extern const F32Kernels kF32Avx512;
extern const F32Kernels kF32Neon;

}  // namespace cpu
}  // namespace mobrt
