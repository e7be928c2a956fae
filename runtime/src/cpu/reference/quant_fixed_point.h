// quant_fixed_point.h: the fixed-point primitives of quantized (int8/uint8)
// arithmetic, exactly as docs/quantization.md section 2 states them and
// mobconv/ops/quant_math.py computes them (gemmlowp/TFLite rules):
//
//   quantize_multiplier(M)           real M >= 0 -> (q, shift), M ~ q * 2^(shift - 31)
//   rounding_doubling_high_mul(a, b) round(a * b / 2^31), ties toward +infinity, saturating
//   rounding_divide_by_pot(x, e)     round(x / 2^e), ties away from zero
//   multiply_by_quantized_multiplier x * M with the two roundings above (x * 2^left saturates)
//   requantize(acc, m, zp, lo, hi)   clamp(MBQM(acc) + zp, lo, hi)
//
// Header-only and scalar so the reference kernels and, later, the SIMD int8
// kernels share one definition (their results must equal these bit for bit).
// Everything is computed in int64 (no signed overflow, no shift of a negative
// number); values that the spec defines as int32 stay within int32.
#pragma once

#include <cmath>
#include <cstdint>

namespace mobrt {
namespace quant {

constexpr int64_t kInt32Min = -(int64_t(1) << 31);
constexpr int64_t kInt32Max = (int64_t(1) << 31) - 1;
constexpr int kAddLeftShift = 20;  // pre-shift of Add's inputs and of requantize_tensor (TFLite's)

struct Multiplier {
  int64_t q = 0;   // 0, or in [2^30, 2^31)
  int shift = 0;   // in [-31, 31]
};

enum class MultiplierError { kOk, kInvalid, kTooLarge };

// real = f * 2^shift with f in [0.5, 1) (frexp); q = round(f * 2^31) with ties
// away from zero (exact in double); q == 2^31 becomes 2^30 with shift + 1;
// shift < -31 flushes to (0, 0); shift > 31 (real >= 2^31) is refused, as is a
// negative or non-finite real.
inline MultiplierError quantize_multiplier(double real, Multiplier* out) {
  *out = Multiplier();
  if (!std::isfinite(real) || real < 0) return MultiplierError::kInvalid;
  if (real == 0.0) return MultiplierError::kOk;
  int shift = 0;
  double f = std::frexp(real, &shift);
  int64_t q = static_cast<int64_t>(std::floor(f * 2147483648.0 + 0.5));
  if (q == (int64_t(1) << 31)) {
    q /= 2;
    shift += 1;
  }
  if (shift < -31) return MultiplierError::kOk;
  if (shift > 31) return MultiplierError::kTooLarge;
  out->q = q;
  out->shift = shift;
  return MultiplierError::kOk;
}

// gemmlowp SaturatingRoundingDoublingHighMul: a, b int32 values; ab exact in
// 64 bits; nudge 2^30 (ab >= 0) or 1 - 2^30; (ab + nudge) / 2^31 truncated
// toward zero. a = b = -2^31 gives 2^31 - 1.
inline int64_t rounding_doubling_high_mul(int64_t a, int64_t b) {
  if (a == kInt32Min && b == kInt32Min) return kInt32Max;
  int64_t ab = a * b;
  int64_t nudge = ab >= 0 ? (int64_t(1) << 30) : 1 - (int64_t(1) << 30);
  return (ab + nudge) / (int64_t(1) << 31);  // C++ division truncates toward zero
}

// gemmlowp RoundingDivideByPOT, 0 <= e <= 31: mask = 2^e - 1, remainder =
// x & mask, threshold = (mask >> 1) + (x < 0); (x >> e) + (remainder > threshold)
// with >> arithmetic (floor): x / 2^e rounded to nearest, ties away from zero.
inline int64_t rounding_divide_by_pot(int64_t x, int e) {
  const int64_t mask = (int64_t(1) << e) - 1;
  const int64_t remainder = x & mask;
  const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  // floor(x / 2^e) without shifting a negative number
  const int64_t floor_div = x >= 0 ? x / (int64_t(1) << e) : -((-x + mask) / (int64_t(1) << e));
  return floor_div + (remainder > threshold ? 1 : 0);
}

// TFLite MultiplyByQuantizedMultiplier: left = max(shift, 0), right = max(-shift, 0);
// x * 2^left saturated to int32 (defined here, unlike TFLite); then the high
// multiply by q and the rounding right shift. x must be within +-2^32 (any int32
// accumulator is).
inline int64_t multiply_by_quantized_multiplier(int64_t x, const Multiplier& m) {
  const int left = m.shift > 0 ? m.shift : 0;
  const int right = m.shift < 0 ? -m.shift : 0;
  int64_t shifted = x * (int64_t(1) << left);
  if (shifted < kInt32Min) shifted = kInt32Min;
  if (shifted > kInt32Max) shifted = kInt32Max;
  return rounding_divide_by_pot(rounding_doubling_high_mul(shifted, m.q), right);
}

// np.clip's order: max with lo, then min with hi, so hi wins when lo > hi (a fused Clip
// whose min is above its max: quant_math and the float32 rule give hi there too).
inline int64_t clamp(int64_t v, int64_t lo, int64_t hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

// zp + acc * M, clamped to [lo, hi] (acc an int32 accumulator).
inline int64_t requantize(int64_t acc, const Multiplier& m, int64_t zp, int64_t lo, int64_t hi) {
  return clamp(multiply_by_quantized_multiplier(acc, m) + zp, lo, hi);
}

inline bool fits_int32(int64_t v) { return v >= kInt32Min && v <= kInt32Max; }

// QuantizeLinear's rule on one float32 value (the fused activation bounds):
// saturate(round_half_to_even(v / scale) + zp), one float32 division, NaN -> lo.
inline int64_t quantize_value(float v, float scale, int64_t zp, int64_t lo, int64_t hi) {
  float r = std::nearbyint(v / scale);  // default rounding mode: to nearest, ties to even
  if (std::isnan(r)) return lo;
  double c = static_cast<double>(r);
  const double lim = 1099511627776.0;  // 2^40, as the numpy reference clips before the int cast
  c = c < -lim ? -lim : (c > lim ? lim : c);
  return clamp(static_cast<int64_t>(c) + zp, lo, hi);
}

}  // namespace quant
}  // namespace mobrt
