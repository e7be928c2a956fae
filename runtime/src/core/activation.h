// activation.h: the fused activation of Conv/ConvTranspose/Gemm/MatMul (attributes
// `activation`, `activation_params`; mobconv/ops/_fused.py), the one Activation type of
// the runtime: the reference kernels apply it element by element, the optimized fp32
// kernels (GEMM epilogue, vectorized activation rows) take it as is.
//
// A header of its own (no FlatBuffers, no core types) so the optimized kernels and
// their standalone tests (runtime/tests/kernel_tests) can include it; core/kernel.h
// includes it and defines parse().
#pragma once

#include <cmath>
#include <cstdint>

namespace mobrt {

class Attrs;   // core/kernel.h
struct Status;  // core/kernel.h

struct Activation {
  enum class Kind : uint8_t { None, Relu, Clip, LeakyRelu, HardSigmoid, HardSwish, Sigmoid, Tanh };
  Kind kind = Kind::None;
  float a = 0.f, b = 0.f;  // Clip: min,max; LeakyRelu: alpha; HardSigmoid: alpha,beta
  static Status parse(const Attrs& attrs, Activation* out);
  float apply(float y) const {
    switch (kind) {
      case Kind::None: return y;
      case Kind::Relu: return y > 0.f || y != y ? y : 0.f;  // NaN stays NaN
      case Kind::Clip: return a != a || b != b ? a + b : (y < a ? a : (y > b ? b : y));  // NaN bound: NaN
      case Kind::LeakyRelu: return y >= 0.f ? y : y * a;
      case Kind::HardSigmoid: { float t = y * a + b; return t < 0.f ? 0.f : (t > 1.f ? 1.f : t); }
      case Kind::HardSwish: { float t = y / 6.f + 0.5f; t = t < 0.f ? 0.f : (t > 1.f ? 1.f : t); return y * t; }
      case Kind::Sigmoid: return 1.f / (1.f + std::exp(-y));
      case Kind::Tanh: return std::tanh(y);
    }
    return y;
  }
  void apply(float* y, int64_t n) const {
    if (kind == Kind::None) return;
    for (int64_t i = 0; i < n; ++i) y[i] = apply(y[i]);
  }
};

}  // namespace mobrt
