// q8_gemm_ukernel_8x12__neon (and its narrow 8x4 form for the last columns of a small N,
// e.g. a batch-1 Gemm): the armv8.0 NEON int8 GEMM micro-kernels (no dot product).
//
// Operands are S16 (q8_gemm.h): A = w - zw and B = x - zx, both in [-255, 255], so each
// product fits int32 exactly and no compensation term is needed; the int32 accumulators
// wrap, which is exact whenever the true sum fits int32 (the driver proves that).
// KR = 1: per k the 8x12 kernel loads the 8 rows of A (one q register) and the 12
// columns of B (1.5 q registers) and issues 24 widening multiply-accumulates by lane:
//   C[r][c..c+3] += B[k][c..c+3] * A[r][k]     (smlal / smlal2 v.4s, v.4h, v.h[r])
// 24 accumulators + 3 operand registers of the 32. The element operand of smlal by
// lane must live in v0-v15; the compiler allocates it there.
#include <arm_neon.h>

#include "cpu/int8/q8_gemm_neon.h"
#include "cpu/int8/q8_gemm_neon_store.h"

namespace mobrt {
namespace q8 {

#define MOBRT_Q8_EACH_ROW(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

void q8_gemm_ukernel_8x12__neon(size_t kgroups, const void* a_panel, const void* b_panel, int32_t* c, size_t ldc,
                                size_t mr, size_t nr, const int32_t* init) {
  const int16_t* a = static_cast<const int16_t*>(a_panel);
  const int16_t* b = static_cast<const int16_t*>(b_panel);
  int32_t ini[8];
  neon_tile::load_init8(init, mr, ini);
#define MOBRT_Q8_INIT(r) int32x4_t c##r##0 = vdupq_n_s32(ini[r]), c##r##1 = c##r##0, c##r##2 = c##r##0;
  MOBRT_Q8_EACH_ROW(MOBRT_Q8_INIT)
#undef MOBRT_Q8_INIT
  for (size_t k = 0; k < kgroups; ++k) {
    const int16x8_t va = vld1q_s16(a);
    const int16x8_t vb01 = vld1q_s16(b);
    const int16x4_t vb2 = vld1_s16(b + 8);
    a += 8;
    b += 12;
#define MOBRT_Q8_MAC(r)                                          \
  c##r##0 = vmlal_laneq_s16(c##r##0, vget_low_s16(vb01), va, r); \
  c##r##1 = vmlal_high_laneq_s16(c##r##1, vb01, va, r);          \
  c##r##2 = vmlal_laneq_s16(c##r##2, vb2, va, r);
    MOBRT_Q8_EACH_ROW(MOBRT_Q8_MAC)
#undef MOBRT_Q8_MAC
  }
#define MOBRT_Q8_STORE(r) \
  if (mr > r) neon_tile::store_row12(c + r * ldc, nr, c##r##0, c##r##1, c##r##2);
  MOBRT_Q8_EACH_ROW(MOBRT_Q8_STORE)
#undef MOBRT_Q8_STORE
}

void q8_gemm_ukernel_8x4__neon(size_t kgroups, const void* a_panel, const void* b_panel, int32_t* c, size_t ldc,
                               size_t mr, size_t nr, const int32_t* init) {
  const int16_t* a = static_cast<const int16_t*>(a_panel);
  const int16_t* b = static_cast<const int16_t*>(b_panel);
  int32_t ini[8];
  neon_tile::load_init8(init, mr, ini);
#define MOBRT_Q8_INIT(r) int32x4_t c##r = vdupq_n_s32(ini[r]);
  MOBRT_Q8_EACH_ROW(MOBRT_Q8_INIT)
#undef MOBRT_Q8_INIT
  for (size_t k = 0; k < kgroups; ++k) {
    const int16x8_t va = vld1q_s16(a);
    const int16x4_t vb = vld1_s16(b);
    a += 8;
    b += 4;
#define MOBRT_Q8_MAC(r) c##r = vmlal_laneq_s16(c##r, vb, va, r);
    MOBRT_Q8_EACH_ROW(MOBRT_Q8_MAC)
#undef MOBRT_Q8_MAC
  }
#define MOBRT_Q8_STORE(r) \
  if (mr > r) neon_tile::store_row4(c + r * ldc, nr, c##r);
  MOBRT_Q8_EACH_ROW(MOBRT_Q8_STORE)
#undef MOBRT_Q8_STORE
}

#undef MOBRT_Q8_EACH_ROW

}  // namespace q8
}  // namespace mobrt
