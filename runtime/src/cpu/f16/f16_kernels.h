// The interface between the fp16 glue (f16_conv.cpp, f16_gemm.cpp: compiled without ISA
// flags, aarch64 only) and the fp16 kernels (*_neon_fp16.cpp, compiled with
// -march=armv8.2-a+fp16): plain data and out-of-line functions only. The kernel files
// must not instantiate std templates or non-static inline functions (the linker would
// keep one copy, possibly the fp16 one, for baseline code too): supports/prepare, the
// geometry, Status messages and the std::vector state stay in the glue.
//   A panel (weights, packed once at prepare): 8 output rows (conv output channels of one
//     group, Gemm output features) x K: a[k*8 + r] = W[row0 + r][k], 0 beyond the rows.
//   B panel (activations, packed per run into the thread's scratch): K x 16 columns
//     (conv output pixels, Gemm input rows): b[k*16 + c] = X[k][col0 + c], 0 beyond them.
#pragma once

#include <arm_neon.h>  // float16_t (a storage type on every aarch64)

#include <cstddef>
#include <cstdint>

#include "core/kernel.h"

namespace mobrt {
namespace f16 {

constexpr int kMR = 8, kNR = 16;

// Scratch is split in one slice per pool thread, each 64-byte aligned.
static inline size_t slice_bytes(size_t halfs) { return (halfs * sizeof(float16_t) + 63) & ~size_t(63); }

// Conv geometry once the input shape is known (pads: t(op), l(eft), b(ottom), r(ight)).
struct Geo {
  int64_t n, cin, ih, iw, cout, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow, group;
};

// The packed weights (prepare) as the kernels read them.
struct Packed {
  const float16_t* a;        // A panels (GEMM) or [channel][kh*kw] (depthwise), fp16
  const float* bias;         // float32, one per output channel / feature (padded to 8 for Gemm)
  const Activation* act;
  int64_t rows_per_group;    // conv: output channels per group
  int64_t k;                 // reduction length (conv: per group)
  int64_t n;                 // Gemm/MatMul: output features
};

// One run's tensors and scratch (slice bytes per thread).
struct Io {
  const float* x;
  const float* residual;     // conv: the fused residual, or null
  float* y;
  char* scratch;
  size_t slice;
};

// f16_conv_neon_fp16.cpp; ctx only for parallel_for.
void conv_gemm_compute(const KernelContext& ctx, const Geo& g, const Packed& w, const Io& io);
void dwconv_compute(const KernelContext& ctx, const Geo& g, const Packed& w, int64_t ph, int64_t pw, const Io& io);
// f16_gemm_neon_fp16.cpp: Y[m, n] from the 16-row blocks and single rows, the features
// split in `chunks` parts.
void gemm_compute(const KernelContext& ctx, const Packed& w, int64_t m, int64_t chunks, const Io& io);

// f16_conv.cpp (no ISA flags): y[i] = act.apply(t[i] (+ residual[i])), i < n.
void store_scalar(float* y, const float* t, const float* residual, int64_t n, const Activation& act);

// f16_ukernel_neon_fp16.cpp
void f16_gemm_ukernel_8x16(size_t k, const float16_t* a, const float16_t* b, float16_t* c);
void f16_gemv_ukernel_8(size_t k, const float16_t* a, const float16_t* x, float16_t* c);

}  // namespace f16
}  // namespace mobrt
