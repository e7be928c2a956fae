// q8_gemm_pack_neon.cpp: the NEON B packers of the int8 GEMM (Q8PackBFn, q8_gemm.h),
// armv8.0 (used by the neon and the neon_dot tables): one k-group of KR activation rows
// converted and interleaved into NR = 12 wide panels, 12 columns a step (12 bytes read
// per row: an 8-byte and a 4-byte load, never past n).
//   s16 kr 1 (q8_gemm_ukernel_8x12__neon):        b = (int8 or uint8)(raw) - zx, widened
//   s8  kr 4 (q8_gemm_ukernel_8x12c4__neon_dot):  b = raw ^ xor_mask, rows interleaved
//     by byte then by halfword (zip1/zip2): 4 consecutive k of one column adjacent.
#include <arm_neon.h>

#include <cstring>

#include "cpu/int8/q8_gemm.h"
#include "cpu/int8/q8_gemm_neon.h"

namespace mobrt {
namespace q8 {
namespace {

// p[0..12) in lanes 0..11 (lanes 12..15: p[8..12) again, never stored).
inline uint8x16_t load12(const uint8_t* p) {
  uint32_t tail;
  std::memcpy(&tail, p + 8, 4);
  return vcombine_u8(vld1_u8(p), vreinterpret_u8_u32(vdup_n_u32(tail)));
}

template <bool XU8>
void pack_s16_kr1(const uint8_t* row, size_t n, int16_t zx, char* dst, size_t panel_stride) {
  const int16x8_t vzx = vdupq_n_s16(zx);
  for (size_t c = 0; c < n; c += 12, dst += panel_stride) {
    const uint8x16_t raw = load12(row + c);
    int16x8_t lo, hi;
    if (XU8) {
      lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(raw)));
      hi = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(raw)));
    } else {
      lo = vmovl_s8(vreinterpret_s8_u8(vget_low_u8(raw)));
      hi = vmovl_s8(vreinterpret_s8_u8(vget_high_u8(raw)));
    }
    int16_t* d = reinterpret_cast<int16_t*>(dst);
    vst1q_s16(d, vsubq_s16(lo, vzx));
    vst1_s16(d + 8, vget_low_s16(vsubq_s16(hi, vzx)));
  }
}

}  // namespace

void q8_pack_b_s16_kr1_nr12_neon(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst,
                                 size_t panel_stride) {
  if (cv.x_u8)
    pack_s16_kr1<true>(rows[0], n, static_cast<int16_t>(cv.zx), static_cast<char*>(dst), panel_stride);
  else
    pack_s16_kr1<false>(rows[0], n, static_cast<int16_t>(cv.zx), static_cast<char*>(dst), panel_stride);
}

void q8_pack_b_s8_kr4_nr12_neon(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst,
                                size_t panel_stride) {
  const uint8x16_t mask = vdupq_n_u8(cv.xor_mask);
  const uint8_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3];
  char* d = static_cast<char*>(dst);
  for (size_t c = 0; c < n; c += 12, d += panel_stride) {
    const uint8x16_t a = veorq_u8(load12(r0 + c), mask), b = veorq_u8(load12(r1 + c), mask);
    const uint8x16_t e = veorq_u8(load12(r2 + c), mask), f = veorq_u8(load12(r3 + c), mask);
    const uint16x8_t ab0 = vreinterpretq_u16_u8(vzip1q_u8(a, b)), ab1 = vreinterpretq_u16_u8(vzip2q_u8(a, b));
    const uint16x8_t ef0 = vreinterpretq_u16_u8(vzip1q_u8(e, f)), ef1 = vreinterpretq_u16_u8(vzip2q_u8(e, f));
    uint8_t* o = reinterpret_cast<uint8_t*>(d);
    vst1q_u8(o, vreinterpretq_u8_u16(vzip1q_u16(ab0, ef0)));       // columns 0-3, k 0-3 each
    vst1q_u8(o + 16, vreinterpretq_u8_u16(vzip2q_u16(ab0, ef0)));  // columns 4-7
    vst1q_u8(o + 32, vreinterpretq_u8_u16(vzip1q_u16(ab1, ef1)));  // columns 8-11
  }
}

}  // namespace q8
}  // namespace mobrt
