// q8_gemm_ukernel_8x12c4__neon_dot (and its narrow 8x4c4 form for the last columns of a
// small N): the armv8.2 dot-product int8 GEMM micro-kernels (compiled with
// -march=armv8.2-a+dotprod; registered only when the CPU has the dot product).
//
// Operands are S8 (q8_gemm.h): A = w - zw as int8 (symmetric int8 weights); B = x for
// int8 activations and x - 128 for uint8 ones. The driver folds -zb * rowsum(A) (zb the
// activation zero point in B's domain) into init with the bias and pads B with zb, so
// sum_k A*B + init = bias + sum_k (w - zw) * (x - zx) exactly (int32 wrap-around is
// exact whenever the true sum fits). sdot is signed x signed with no saturation.
// KR = 4: per group of 4 k the 8x12 kernel loads the A panel's 8 rows x 4 (two q
// registers) and the B panel's 12 columns x 4 (three) and issues 24 dot products by lane:
//   C[r][c..c+3] += sum_j B[c..c+3][j] * A[r][j]     (sdot v.4s, v.16b, v.4b[r % 4])
// 24 accumulators + 5 operand registers of the 32.
#include <arm_neon.h>

#include "cpu/int8/q8_gemm_neon.h"
#include "cpu/int8/q8_gemm_neon_store.h"

#ifndef __ARM_FEATURE_DOTPROD
#error "q8_gemm_ukernel_neon_dot.cpp needs -march=armv8.2-a+dotprod (runtime/CMakeLists.txt sets it by file name)"
#endif

namespace mobrt {
namespace q8 {

// X(row, A register holding the row, lane of the row in it)
#define MOBRT_Q8_EACH_ROW(X) \
  X(0, va0123, 0) X(1, va0123, 1) X(2, va0123, 2) X(3, va0123, 3) \
  X(4, va4567, 0) X(5, va4567, 1) X(6, va4567, 2) X(7, va4567, 3)

void q8_gemm_ukernel_8x12c4__neon_dot(size_t kgroups, const void* a_panel, const void* b_panel, int32_t* c,
                                      size_t ldc, size_t mr, size_t nr, const int32_t* init) {
  const int8_t* a = static_cast<const int8_t*>(a_panel);
  const int8_t* b = static_cast<const int8_t*>(b_panel);
  int32_t ini[8];
  neon_tile::load_init8(init, mr, ini);
#define MOBRT_Q8_INIT(r, va, lane) int32x4_t c##r##0 = vdupq_n_s32(ini[r]), c##r##1 = c##r##0, c##r##2 = c##r##0;
  MOBRT_Q8_EACH_ROW(MOBRT_Q8_INIT)
#undef MOBRT_Q8_INIT
  for (size_t g = 0; g < kgroups; ++g) {
    const int8x16_t va0123 = vld1q_s8(a);
    const int8x16_t va4567 = vld1q_s8(a + 16);
    const int8x16_t vb0 = vld1q_s8(b);
    const int8x16_t vb1 = vld1q_s8(b + 16);
    const int8x16_t vb2 = vld1q_s8(b + 32);
    a += 32;
    b += 48;
#define MOBRT_Q8_DOT(r, va, lane)                    \
  c##r##0 = vdotq_laneq_s32(c##r##0, vb0, va, lane); \
  c##r##1 = vdotq_laneq_s32(c##r##1, vb1, va, lane); \
  c##r##2 = vdotq_laneq_s32(c##r##2, vb2, va, lane);
    MOBRT_Q8_EACH_ROW(MOBRT_Q8_DOT)
#undef MOBRT_Q8_DOT
  }
#define MOBRT_Q8_STORE(r, va, lane) \
  if (mr > r) neon_tile::store_row12(c + r * ldc, nr, c##r##0, c##r##1, c##r##2);
  MOBRT_Q8_EACH_ROW(MOBRT_Q8_STORE)
#undef MOBRT_Q8_STORE
}

void q8_gemm_ukernel_8x4c4__neon_dot(size_t kgroups, const void* a_panel, const void* b_panel, int32_t* c,
                                     size_t ldc, size_t mr, size_t nr, const int32_t* init) {
  const int8_t* a = static_cast<const int8_t*>(a_panel);
  const int8_t* b = static_cast<const int8_t*>(b_panel);
  int32_t ini[8];
  neon_tile::load_init8(init, mr, ini);
#define MOBRT_Q8_INIT(r, va, lane) int32x4_t c##r = vdupq_n_s32(ini[r]);
  MOBRT_Q8_EACH_ROW(MOBRT_Q8_INIT)
#undef MOBRT_Q8_INIT
  for (size_t g = 0; g < kgroups; ++g) {
    const int8x16_t va0123 = vld1q_s8(a);
    const int8x16_t va4567 = vld1q_s8(a + 16);
    const int8x16_t vb = vld1q_s8(b);
    a += 32;
    b += 16;
#define MOBRT_Q8_DOT(r, va, lane) c##r = vdotq_laneq_s32(c##r, vb, va, lane);
    MOBRT_Q8_EACH_ROW(MOBRT_Q8_DOT)
#undef MOBRT_Q8_DOT
  }
#define MOBRT_Q8_STORE(r, va, lane) \
  if (mr > r) neon_tile::store_row4(c + r * ldc, nr, c##r);
  MOBRT_Q8_EACH_ROW(MOBRT_Q8_STORE)
#undef MOBRT_Q8_STORE
}

#undef MOBRT_Q8_EACH_ROW

}  // namespace q8
}  // namespace mobrt
