// q8_dynamic_avx512_vnni.cpp: dynamic-range int8 MatMul/Gemm (cpu/reference/dynamic_quant.h)
// with AVX512-VNNI: vpdpbusd (never the saturating vpdpbusds) multiplies the row's
// activations moved to uint8 (q + 128, in [1, 255]) by the int8 weights; the offset's
// contribution, -128 * sum_k w[k][c], is the per-column compensation added before the
// float conversion (q8_dynamic.h). Tile 4 rows x 64 columns, k groups of 4.
#include <immintrin.h>

#include <cstring>

#include "cpu/int8/q8_dynamic.h"
#include "cpu/int8/q8_dynamic_x86.h"

namespace mobrt {
namespace q8 {
namespace {

struct Avx512VnniOps {
  using AType = uint8_t;
  using WType = int8_t;
  static constexpr int kMR = 4, kNR = 64, kKR = 4;
  static constexpr int32_t kAOffset = 128;

  static uint32_t amax_bits(const float* a, size_t k) { return dyn_amax_bits_avx2(a, k); }

  static void quantize(const float* a, size_t k, float inv, uint8_t* q) {
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127), off = _mm512_set1_epi32(128);
    size_t i = 0;
    for (; i + 16 <= k; i += 16) {
      __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(a + i), vinv));
      v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi), off);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtepi32_epi8(v));
    }
    for (; i < k; ++i) q[i] = static_cast<uint8_t>(dyn_quantize_value(a[i], inv) + 128);
  }

  template <int R>
  static void rows(size_t kgroups, const uint8_t* a, size_t lda, const int8_t* w, int32_t* c) {
    __m512i acc[R][4];
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
      #pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_setzero_si512();
    for (size_t g = 0; g < kgroups; ++g) {
      const int8_t* wg = w + g * (kNR * kKR);
      const __m512i w0 = _mm512_loadu_si512(wg), w1 = _mm512_loadu_si512(wg + 64);
      const __m512i w2 = _mm512_loadu_si512(wg + 128), w3 = _mm512_loadu_si512(wg + 192);
      #pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        int32_t quad;
        std::memcpy(&quad, a + r * lda + 4 * g, 4);
        const __m512i av = _mm512_set1_epi32(quad);
        acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, w0);
        acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], av, w1);
        acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], av, w2);
        acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], av, w3);
      }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
      #pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) _mm512_store_si512(c + r * kNR + 16 * v, acc[r][v]);
  }

  static void finish(const int32_t* acc, const int32_t* comp, size_t n, float s_a, const float* s_w,
                     const float* bias, const Activation& act, float* y) {
    const __m512 sa = _mm512_set1_ps(s_a);
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
      const __m512i a = _mm512_add_epi32(_mm512_load_si512(acc + j), _mm512_loadu_si512(comp + j));
      __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(sa, _mm512_loadu_ps(s_w + j)));
      if (bias) {
        __asm__("" : "+v"(v));  // keeps the product out of an FMA with the addition
        v = _mm512_add_ps(v, _mm512_loadu_ps(bias + j));
      }
      if (act.kind == Activation::Kind::Relu) {
        v = _mm512_max_ps(_mm512_setzero_ps(), v);  // NaN stays NaN (maxps returns operand 2)
      } else if (act.kind == Activation::Kind::Clip) {
        v = _mm512_max_ps(_mm512_set1_ps(act.a), v);
        v = _mm512_min_ps(_mm512_set1_ps(act.b), v);
      }
      _mm512_storeu_ps(y + j, v);
    }
    dyn_finish_scalar(acc, comp, j, n, s_a, s_w, bias, act, y);
  }
};

}  // namespace

extern const Kernel kQ8DynamicMatMulAvx512Vnni = MOBRT_Q8_DYNAMIC_KERNEL(Avx512VnniOps, "matmul_dynamic_q8_avx512_vnni");
extern const Kernel kQ8DynamicGemmAvx512Vnni = MOBRT_Q8_DYNAMIC_KERNEL(Avx512VnniOps, "gemm_dynamic_q8_avx512_vnni");
extern const Kernel kQ8DynamicConvAvx512Vnni = MOBRT_Q8_DYNAMIC_KERNEL(Avx512VnniOps, "conv_dynamic_q8_avx512_vnni");

}  // namespace q8
}  // namespace mobrt
