// q8_gemm_avx512_vnni.cpp: the AVX512-VNNI int8 GEMM micro-kernels: zmm 8x32 (vpdpbusd,
// U8 activations x S8 weights, kr 4) and the EVEX-encoded twin of the AVX-VNNI ymm
// kernel (q8_gemm_ymm_vnni.h with _mm256_dpbusd_epi32, 8x16) used for narrow column tails.
#include <immintrin.h>

#include <cstring>

#include "cpu/int8/q8_gemm_x86.h"
#include "cpu/int8/q8_gemm_ymm_vnni.h"

namespace mobrt {
namespace q8 {
namespace {

struct DotEvex256 {
  static __m256i dot(__m256i acc, __m256i b_u8, __m256i a_s8) { return _mm256_dpbusd_epi32(acc, b_u8, a_s8); }
};

void zmm_8x32(size_t kgroups, const void* a, const void* b, int32_t* c, size_t ldc, size_t mr, size_t nr,
              const int32_t* init) {
  constexpr int MR = 8;
  __m512i acc0[MR], acc1[MR];
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm512_set1_epi32(static_cast<size_t>(r) < mr ? init[r] : 0);
  const uint8_t* pa = static_cast<const uint8_t*>(a);
  const uint8_t* pb = static_cast<const uint8_t*>(b);
  for (size_t g = 0; g < kgroups; ++g) {
    const __m512i b0 = _mm512_loadu_si512(pb), b1 = _mm512_loadu_si512(pb + 64);
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      int32_t w;
      std::memcpy(&w, pa + 4 * r, 4);
      const __m512i av = _mm512_set1_epi32(w);
      acc0[r] = _mm512_dpbusd_epi32(acc0[r], b0, av);
      acc1[r] = _mm512_dpbusd_epi32(acc1[r], b1, av);
    }
    pa += MR * 4;
    pb += 128;
  }
  const __mmask16 m0 = nr >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? static_cast<__mmask16>(0xFFFF)
                                : (nr > 16 ? static_cast<__mmask16>((1u << (nr - 16)) - 1) : static_cast<__mmask16>(0));
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (static_cast<size_t>(r) >= mr) break;
    _mm512_mask_storeu_epi32(c + r * ldc, m0, acc0[r]);
    _mm512_mask_storeu_epi32(c + r * ldc + 16, m1, acc1[r]);
  }
}

}  // namespace

// Constant-initialized (no code of this ISA runs at start-up).
const Q8GemmUkernel kQ8GemmAvx512Vnni_8x32c4 = {"q8_gemm_ukernel_8x32c4__avx512_vnni", &zmm_8x32, 8, 32, 4,
                                                Q8Operand::S8, Q8Operand::U8};
const Q8GemmUkernel kQ8GemmAvx512VnniYmm_8x16c4 = {"q8_gemm_ukernel_8x16c4__avx512_vnni_ymm",
                                                   &q8_gemm_ymm_vnni_8xn<DotEvex256, 2>, 8, 16, 4, Q8Operand::S8,
                                                   Q8Operand::U8};
const Q8GemmUkernel kQ8GemmAvx512VnniYmm_8x1c4 = {"q8_gemv_ukernel_8x1c4__avx512_vnni_ymm",
                                                  &q8_gemv_ymm_vnni_8x1<DotEvex256>, 8, 1, 4, Q8Operand::S8,
                                                  Q8Operand::U8};

}  // namespace q8
}  // namespace mobrt
