// q8_gemm_avx2.cpp: the AVX2 int8 GEMM micro-kernel without VNNI, exact: both operands
// are int16 (A = w - zw, B = x - zx, |values| <= 255) and vpmaddwd sums pairs of
// int16 products into int32 without saturation (never vpmaddubsw, whose int16 sums
// saturate). 6 rows x 16 columns, kr 2.
#include <immintrin.h>

#include <cstring>

#include "cpu/int8/q8_gemm_x86.h"

namespace mobrt {
namespace q8 {
namespace {

void avx2_6x16(size_t kgroups, const void* a, const void* b, int32_t* c, size_t ldc, size_t mr, size_t nr,
               const int32_t* init) {
  constexpr int MR = 6;
  __m256i acc0[MR], acc1[MR];
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm256_set1_epi32(static_cast<size_t>(r) < mr ? init[r] : 0);
  const uint8_t* pa = static_cast<const uint8_t*>(a);
  const uint8_t* pb = static_cast<const uint8_t*>(b);
  for (size_t g = 0; g < kgroups; ++g) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + 32));
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      int32_t w;
      std::memcpy(&w, pa + 4 * r, 4);
      const __m256i av = _mm256_set1_epi32(w);
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(b0, av));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(b1, av));
    }
    pa += MR * 4;
    pb += 64;
  }
  if (nr == 16) {
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      if (static_cast<size_t>(r) >= mr) break;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc), acc0[r]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + 8), acc1[r]);
    }
    return;
  }
  alignas(32) int32_t tmp[16];
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (static_cast<size_t>(r) >= mr) break;
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc0[r]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 8), acc1[r]);
    std::memcpy(c + r * ldc, tmp, nr * sizeof(int32_t));
  }
}

}  // namespace

// Constant-initialized (no code of this ISA runs at start-up).
const Q8GemmUkernel kQ8GemmAvx2_6x16c2 = {"q8_gemm_ukernel_6x16c2__avx2", &avx2_6x16, 6, 16, 2, Q8Operand::S16,
                                          Q8Operand::S16};

}  // namespace q8
}  // namespace mobrt
