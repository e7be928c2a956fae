// NEON (armv8.0) sparse fp32 kernels (sparse_f32.h): the SpMM of sparse_simd.h over
// 4-float q vectors in blocks of 32 columns (8 accumulators), tails of 1-3 columns
// element by element (scalar fmaf: the same fused rounding as vfmaq_f32), and the SpMV
// of sparse_simd.h with lane loads in place of a gather. Compiled for arm64 only
// (baseline armv8-a); reached only through register_sparse_f32_neon.cpp.
#include <arm_neon.h>

#include <cmath>

#include "sparse_simd.h"

namespace mobrt {
namespace cpu {
namespace {

struct VecNeon {
  using T = float32x4_t;
  static constexpr size_t N = 4;
  static T set1(float v) { return vdupq_n_f32(v); }
  static T load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, T v) { vst1q_f32(p, v); }
  static T add(T a, T b) { return vaddq_f32(a, b); }
  static T fma(T a, T b, T c) { return vfmaq_f32(c, a, b); }
  static T load_part(const float* p, size_t n) {
    float t[4] = {0.f, 0.f, 0.f, 0.f};
    for (size_t i = 0; i < n; ++i) t[i] = p[i];
    return vld1q_f32(t);
  }
  static void store_part(float* p, T v, size_t n) {
    float t[4];
    vst1q_f32(t, v);
    for (size_t i = 0; i < n; ++i) p[i] = t[i];
  }

  static constexpr bool kOneVectorStep = false;  // the last 0-7 non-zeros one by one
  static T gather_fma(const int32_t* col, const float* val, const float* a, T acc) {
    T g = vld1q_dup_f32(a + col[0]);
    g = vld1q_lane_f32(a + col[1], g, 1);
    g = vld1q_lane_f32(a + col[2], g, 2);
    g = vld1q_lane_f32(a + col[3], g, 3);
    return vfmaq_f32(acc, vld1q_f32(val), g);
  }
  static float finish(T acc0, T acc1, const int32_t* col, const float* val, size_t n, const float* a) {
    float tail = 0.f;
    for (size_t k = 0; k < n; ++k) tail = std::fma(val[k], a[col[k]], tail);
    return vaddvq_f32(vaddq_f32(acc0, acc1)) + tail;
  }
};

bool any_nonfinite_neon(const float* x, size_t n) {  // exponent all ones
  const uint32x4_t e = vdupq_n_u32(0x7f800000u);
  uint32x4_t hit = vdupq_n_u32(0);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) hit = vorrq_u32(hit, vceqq_u32(vandq_u32(vreinterpretq_u32_f32(vld1q_f32(x + i)), e), e));
  bool tail = false;
  for (; i < n; ++i) tail = tail || !std::isfinite(x[i]);
  return tail || vmaxvq_u32(hit) != 0;
}

}  // namespace

const SparseF32Kernels kSparseF32Neon = {
    "neon", &spmm_simd<VecNeon, 8>, &spmv_simd<VecNeon>, &kF32Neon, &any_nonfinite_neon, 32, 2,
    kSparseConvMinSparsityNeon, kSparseFcB1MinSparsityNeon, kSparseFcBatchMinSparsityNeon,
};

}  // namespace cpu
}  // namespace mobrt
