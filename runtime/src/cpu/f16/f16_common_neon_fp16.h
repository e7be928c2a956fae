// Shared by the fp16 kernel files (included only by *_neon_fp16.cpp files, which are
// compiled with -march=armv8.2-a+fp16). Layouts:
//   A panel (weights, packed once at prepare): 8 output rows (conv output channels of one
//     group, Gemm output features) x K: a[k*8 + r] = W[row0 + r][k], 0 beyond the rows.
//   B panel (activations, packed per run into the thread's scratch): K x 16 columns
//     (conv output pixels, Gemm input rows): b[k*16 + c] = X[k][col0 + c], 0 beyond them.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/kernel.h"
#include "cpu/f16/f16_neon_fp16.h"

namespace mobrt {
namespace f16 {

constexpr int kMR = 8, kNR = 16;

void f16_gemm_ukernel_8x16(size_t k, const float16_t* a, const float16_t* b, float16_t* c);
void f16_gemv_ukernel_8(size_t k, const float16_t* a, const float16_t* x, float16_t* c);

// What prepare derives from attributes and constants.
struct State {
  std::vector<float16_t> packed;  // A panels (GEMM) or [channel][kh*kw] (depthwise), fp16
  std::vector<float> bias;        // float32, one per output channel / feature (beta*C for Gemm)
  Activation act;
  int64_t rows_per_group = 0;     // conv: output channels per group
  int64_t k = 0;                  // reduction length (conv: per group)
  int64_t n = 0;                  // Gemm/MatMul: output features
};
inline State* state_of(const KernelContext& ctx) { return static_cast<State*>(*ctx.state); }

inline bool is_f32(const TensorView& t) { return t.present() && t.dtype == DType::F32; }
inline bool is_const_f32(const TensorView& t) { return is_f32(t) && t.is_constant && t.data != nullptr; }

// fp16 holds finite values up to 65504: a larger finite weight would become inf, so such
// a node keeps the float32 kernels (inf/NaN weights stay what they are either way).
inline bool fits_fp16(const TensorView& w) {
  const float* p = w.as<float>();
  for (int64_t i = 0, n = w.numel(); i < n; ++i)
    if (p[i] > 65504.f && p[i] != __builtin_inff()) return false;
    else if (p[i] < -65504.f && p[i] != -__builtin_inff()) return false;
  return true;
}

// Scratch is split in one slice per pool thread, each 64-byte aligned.
inline size_t slice_bytes(size_t halfs) { return (halfs * sizeof(float16_t) + 63) & ~size_t(63); }

// y = act(acc + bias + residual) in float32, for one output element.
inline float finish(float acc, float bias, const float* residual, int64_t i, const Activation& act) {
  float v = acc + bias;
  if (residual != nullptr) v += residual[i];
  return act.apply(v);
}

}  // namespace f16
}  // namespace mobrt
