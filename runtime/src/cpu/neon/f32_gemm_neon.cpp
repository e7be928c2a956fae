// f32_gemm_ukernel_8x12__neon: packed SGEMM microkernel for AArch64 NEON (armv8-a).
//
// C tile 8 x 12 in 24 q-register accumulators; per k step: 2 loads of A (8 values),
// 3 loads of B (12 values) and 24 FMLA-by-element (vfmaq_laneq_f32), which leaves 3
// of the 32 vector registers for the epilogue. NEON is baseline on AArch64: no flags.
#include <arm_neon.h>

#include "../gemm/ukernel_common.h"

namespace mobrt {
namespace cpu {
namespace {

constexpr int kMr = 8;
constexpr int kNr = 12;

#define MOBRT_ROW_FMA(r, av, lane)                  \
  c##r##0 = vfmaq_laneq_f32(c##r##0, b0, av, lane); \
  c##r##1 = vfmaq_laneq_f32(c##r##1, b1, av, lane); \
  c##r##2 = vfmaq_laneq_f32(c##r##2, b2, av, lane);

#define MOBRT_ROW_DECL(r) \
  float32x4_t c##r##0 = vdupq_n_f32(0.f), c##r##1 = vdupq_n_f32(0.f), c##r##2 = vdupq_n_f32(0.f);

#define MOBRT_ROW_STORE(r)                                        \
  {                                                               \
    float* cr = c + r * ldc;                                      \
    if (accumulate) {                                             \
      c##r##0 = vaddq_f32(c##r##0, vld1q_f32(cr));                \
      c##r##1 = vaddq_f32(c##r##1, vld1q_f32(cr + 4));            \
      c##r##2 = vaddq_f32(c##r##2, vld1q_f32(cr + 8));            \
    }                                                             \
    if (ep != nullptr) {                                          \
      if (ep->bias_mode == BiasMode::kPerRow) {                   \
        const float32x4_t br = vdupq_n_f32(ep->bias[r]);          \
        c##r##0 = vaddq_f32(c##r##0, br);                         \
        c##r##1 = vaddq_f32(c##r##1, br);                         \
        c##r##2 = vaddq_f32(c##r##2, br);                         \
      } else if (ep->bias_mode == BiasMode::kPerCol) {            \
        c##r##0 = vaddq_f32(c##r##0, vld1q_f32(ep->bias));        \
        c##r##1 = vaddq_f32(c##r##1, vld1q_f32(ep->bias + 4));    \
        c##r##2 = vaddq_f32(c##r##2, vld1q_f32(ep->bias + 8));    \
      }                                                           \
      c##r##0 = vminq_f32(vmaxq_f32(c##r##0, lo), hi);            \
      c##r##1 = vminq_f32(vmaxq_f32(c##r##1, lo), hi);            \
      c##r##2 = vminq_f32(vmaxq_f32(c##r##2, lo), hi);            \
    }                                                             \
    vst1q_f32(cr, c##r##0);                                       \
    vst1q_f32(cr + 4, c##r##1);                                   \
    vst1q_f32(cr + 8, c##r##2);                                   \
  }

void gemm_full_8x12(size_t kc, const float* a, const float* b, size_t ldb, float* c, size_t ldc,
                    int accumulate, const GemmEpilogue* ep) {
  MOBRT_ROW_DECL(0) MOBRT_ROW_DECL(1) MOBRT_ROW_DECL(2) MOBRT_ROW_DECL(3)
  MOBRT_ROW_DECL(4) MOBRT_ROW_DECL(5) MOBRT_ROW_DECL(6) MOBRT_ROW_DECL(7)
  for (size_t k = 0; k < kc; ++k) {
    const float32x4_t a0 = vld1q_f32(a);
    const float32x4_t a1 = vld1q_f32(a + 4);
    const float32x4_t b0 = vld1q_f32(b);
    const float32x4_t b1 = vld1q_f32(b + 4);
    const float32x4_t b2 = vld1q_f32(b + 8);
    __builtin_prefetch(a + 64 * kMr);  // weights may come from DRAM
    MOBRT_ROW_FMA(0, a0, 0) MOBRT_ROW_FMA(1, a0, 1) MOBRT_ROW_FMA(2, a0, 2)
    MOBRT_ROW_FMA(3, a0, 3) MOBRT_ROW_FMA(4, a1, 0) MOBRT_ROW_FMA(5, a1, 1)
    MOBRT_ROW_FMA(6, a1, 2) MOBRT_ROW_FMA(7, a1, 3)
    a += kMr;
    b += ldb;
  }
  const float32x4_t lo = vdupq_n_f32(ep != nullptr ? ep->min : 0.f);
  const float32x4_t hi = vdupq_n_f32(ep != nullptr ? ep->max : 0.f);
  MOBRT_ROW_STORE(0) MOBRT_ROW_STORE(1) MOBRT_ROW_STORE(2) MOBRT_ROW_STORE(3)
  MOBRT_ROW_STORE(4) MOBRT_ROW_STORE(5) MOBRT_ROW_STORE(6) MOBRT_ROW_STORE(7)
}

#undef MOBRT_ROW_FMA
#undef MOBRT_ROW_DECL
#undef MOBRT_ROW_STORE

// 1 x 12 row (see ukernel_common.h).
void gemm_row_1x12(size_t kc, const float* a, size_t as, const float* b, size_t ldb, float* c, int accumulate,
                   const GemmEpilogue* ep, size_t r) {
  float32x4_t c0 = vdupq_n_f32(0.f), c1 = vdupq_n_f32(0.f), c2 = vdupq_n_f32(0.f);
  for (size_t k = 0; k < kc; ++k) {
    const float av = a[0];
    c0 = vfmaq_n_f32(c0, vld1q_f32(b), av);
    c1 = vfmaq_n_f32(c1, vld1q_f32(b + 4), av);
    c2 = vfmaq_n_f32(c2, vld1q_f32(b + 8), av);
    a += as;
    b += ldb;
  }
  if (accumulate) {
    c0 = vaddq_f32(c0, vld1q_f32(c));
    c1 = vaddq_f32(c1, vld1q_f32(c + 4));
    c2 = vaddq_f32(c2, vld1q_f32(c + 8));
  }
  if (ep != nullptr) {
    if (ep->bias_mode == BiasMode::kPerRow) {
      const float32x4_t br = vdupq_n_f32(ep->bias[r]);
      c0 = vaddq_f32(c0, br);
      c1 = vaddq_f32(c1, br);
      c2 = vaddq_f32(c2, br);
    } else if (ep->bias_mode == BiasMode::kPerCol) {
      c0 = vaddq_f32(c0, vld1q_f32(ep->bias));
      c1 = vaddq_f32(c1, vld1q_f32(ep->bias + 4));
      c2 = vaddq_f32(c2, vld1q_f32(ep->bias + 8));
    }
    const float32x4_t lo = vdupq_n_f32(ep->min), hi = vdupq_n_f32(ep->max);
    c0 = vminq_f32(vmaxq_f32(c0, lo), hi);
    c1 = vminq_f32(vmaxq_f32(c1, lo), hi);
    c2 = vminq_f32(vmaxq_f32(c2, lo), hi);
  }
  vst1q_f32(c, c0);
  vst1q_f32(c + 4, c1);
  vst1q_f32(c + 8, c2);
}

}  // namespace

extern const GemmUkernel kF32GemmNeon = {"f32_gemm_ukernel_8x12__neon",
                                         &ukernel_any<kMr, kNr, gemm_full_8x12, gemm_row_1x12>, kMr, kNr};

}  // namespace cpu
}  // namespace mobrt
