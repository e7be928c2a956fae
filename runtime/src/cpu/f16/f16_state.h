// The fp16 kernels' prepared state (f16_conv.cpp, f16_gemm.cpp: the glue compiled without
// ISA flags, aarch64 only). Not for the *_neon_fp16.cpp files: they get a Packed view.
#pragma once

#include <vector>

#include "cpu/f16/f16_kernels.h"

namespace mobrt {
namespace f16 {

// What prepare derives from attributes and constants.
struct State {
  std::vector<float16_t> packed;  // A panels (GEMM) or [channel][kh*kw] (depthwise), fp16
  std::vector<float> bias;        // float32, one per output channel / feature (beta*C for Gemm)
  Activation act;
  int64_t rows_per_group = 0;     // conv: output channels per group
  int64_t k = 0;                  // reduction length (conv: per group)
  int64_t n = 0;                  // Gemm/MatMul: output features
  Packed view() const { return Packed{packed.data(), bias.data(), &act, rows_per_group, k, n}; }
};
inline State* state_of(const KernelContext& ctx) { return static_cast<State*>(*ctx.state); }

inline bool is_f32(const TensorView& t) { return t.present() && t.dtype == DType::F32; }
inline bool is_const_f32(const TensorView& t) { return is_f32(t) && t.is_constant && t.data != nullptr; }

// fp16 holds finite values up to 65504: a finite weight (times `scale`, Gemm's alpha)
// beyond it would become inf, so such a node keeps the float32 kernels (inf/NaN weights
// stay what they are either way).
bool fits_fp16(const TensorView& w, float scale = 1.f);

}  // namespace f16
}  // namespace mobrt
