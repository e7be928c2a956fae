// q8_quantize.h: the optimized QuantizeLinear (float32 -> int8/uint8) and
// DequantizeLinear (int8/uint8/int32 -> float32) kernels, the float boundary of every int8
// model. Bit for bit the reference kernels (cpu/reference/quantize_linear.cpp, numpy
// mobconv/ops/quant_math.py):
//
//   QuantizeLinear    y = saturate(round_half_to_even(x / scale) + zp), one float32
//                     DIVISION (never a multiply by 1/scale); NaN -> the dtype's minimum
//   DequantizeLinear  y = float32(int32(x) - zp) * scale, one float32 multiply
//
// Vector form of QuantizeLinear (q8_quantize1 is the element rule, equal to the reference):
// clamping before rounding gives the same result as after, because round-half-even is
// monotone and fixes the integer bounds lo - zp and hi - zp; the clamp is an IEEE max whose
// second operand wins on NaN (x86 maxps(q, lo), NEON fmaxnm), so NaN lands on lo - zp and
// +-inf on the bounds; the clamped value (|v| <= 383) is then rounded half to even
// (cvtps under the default MXCSR, NEON fcvtns) and zp is added in int32. No sums: FMA
// contraction cannot change either op.
//
// DequantizeLinear also takes int32 data (zero point int32).
//
// Layouts: per tensor (scale rank 0 or [1]) and per axis (1-D scale of x.dims[axis]) of a
// row-major x, as rows of `inner` contiguous elements sharing one (scale, zp). Blocked
// parameters, int16 data and anything the reference rejects (it reports the error)
// run the reference kernel.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/kernel.h"

namespace mobrt {
namespace q8 {

// The element rule of QuantizeLinear for an int8 (lo, hi = -128, 127) or uint8 (0, 255)
// output: the reference's arithmetic (nearbyint under the default rounding mode).
inline int32_t q8_quantize1(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
  const float r = std::nearbyint(x / scale);
  if (std::isnan(r)) return lo;
  const double c = std::fmin(std::fmax(static_cast<double>(r), -1099511627776.0), 1099511627776.0);
  int64_t q = static_cast<int64_t>(c) + zp;
  if (q < lo) q = lo;
  if (q > hi) q = hi;
  return static_cast<int32_t>(q);
}

inline float q8_dequantize1(int32_t x, float scale, int32_t zp) {
  return static_cast<float>(x - zp) * scale;
}

// int32 data: the difference wraps (two's complement, as the reference's int32 arithmetic),
// then rounds to float32 (nearest even) and is multiplied once.
inline float q8_dequantize_i32_1(int32_t x, float scale, int32_t zp) {
  const int32_t d = static_cast<int32_t>(static_cast<uint32_t>(x) - static_cast<uint32_t>(zp));
  return static_cast<float>(d) * scale;
}

// An instruction set's row functions. u8: the integer side is uint8 (else int8).
struct Q8QuantizeIsa {
  // y[i] = q8_quantize1(x[i], scale, zp, lo, hi), i < n
  void (*quantize)(const float* x, size_t n, float scale, int32_t zp, void* y, bool u8);
  // y[i] = q8_dequantize1(x[i], scale, zp)
  void (*dequantize)(const void* x, size_t n, float scale, int32_t zp, float* y, bool u8);
  // y[i] = q8_dequantize_i32_1(x[i], scale, zp)
  void (*dequantize_i32)(const int32_t* x, size_t n, float scale, int32_t zp, float* y);
};

extern const Q8QuantizeIsa kQ8QuantizeScalar;  // the portable rows (tails of the vector ones)

// Per instruction set (q8_quantize_<isa>.cpp): records that set's table in *ctx.state.
Status q8_quantize_prepare_avx2(KernelContext& ctx);
Status q8_quantize_prepare_avx512(KernelContext& ctx);
Status q8_quantize_prepare_neon(KernelContext& ctx);

// Registers `quantize_name` (quantize_linear_q8_<isa>) under QuantizeLinear {F32, F32} and
// `dequantize_name` (dequantize_linear_q8_<isa>) under DequantizeLinear {I8, F32}, {U8, F32}
// and {I32, F32} at `isa` (register_q8_quantize_<isa>.cpp; names are string literals).
void q8_quantize_register(KernelRegistry& registry, Isa isa, const char* quantize_name,
                          const char* dequantize_name, Status (*prepare)(KernelContext&));

}  // namespace q8
}  // namespace mobrt
