// q8_requant.h: requantization of int32 accumulators to int8/uint8, one output
// channel's row at a time, as every optimized int8 kernel finishes its tile.
//
// The arithmetic is the reference's, bit for bit (docs/quantization.md section 2):
//   fixed point (default)  clamp(MBQM(acc, q, shift) + zp, lo, hi)   quant::requantize
//   float32 rule           quant::requantize_float32(acc, fscale, zp, lo, hi)
// One Q8Requant per output channel (its multiplier) or per tensor. Each instruction
// set provides a row function; they must agree with q8_requant_row_scalar on every
// int32 input (tests/test_int8_requant_rows.py sweeps the rounding ties and the
// saturating corners through the runtime).
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/reference/quant_fixed_point.h"
#include "cpu/reference/quant_float_requant.h"

namespace mobrt {
namespace q8 {

struct Q8Requant {
  int32_t q = 0;      // fixed point multiplier: 0 or in [2^30, 2^31) (quant::Multiplier::q)
  int32_t shift = 0;  // in [-31, 31]
  float fscale = 0.f; // float32 rule: quant::float32_scale(s_x, s_w, s_y)
  bool float32 = false;
  int32_t zp = 0, lo = 0, hi = 0;  // output zero point and clamp range (in the output dtype)

  int64_t apply(int64_t acc) const {
    if (float32) return quant::requantize_float32(acc, fscale, zp, lo, hi);
    quant::Multiplier m;
    m.q = q;
    m.shift = shift;
    return quant::requantize(acc, m, zp, lo, hi);
  }
};

// out[i] = r.apply(acc[i]) for i < n, stored as uint8 when out_u8 else int8.
typedef void (*Q8RequantRowFn)(const int32_t* acc, size_t n, const Q8Requant& r, void* out, bool out_u8);

inline void q8_requant_row_scalar(const int32_t* acc, size_t n, const Q8Requant& r, void* out, bool out_u8) {
  if (out_u8) {
    uint8_t* y = static_cast<uint8_t*>(out);
    for (size_t i = 0; i < n; ++i) y[i] = static_cast<uint8_t>(r.apply(acc[i]));
  } else {
    int8_t* y = static_cast<int8_t*>(out);
    for (size_t i = 0; i < n; ++i) y[i] = static_cast<int8_t>(r.apply(acc[i]));
  }
}

}  // namespace q8
}  // namespace mobrt
