// q8_gemm_ymm_vnni.h: the 256-bit VNNI int8 GEMM micro-kernel, written once over the
// dot-product instruction and compiled twice: with the VEX _mm256_dpbusd_avx_epi32 in
// q8_gemm_avx_vnni.cpp (AVX-VNNI CPUs) and with the EVEX _mm256_dpbusd_epi32 in
// q8_gemm_avx512_vnni.cpp (AVX512-VNNI+VL CPUs), so the source of the first is
// executed by the tests on machines that have only the second.
// Everything here has internal linkage: each including file gets its own copy built
// with its own instruction set flags (no ODR sharing across ISA files).
// Contract: q8_gemm.h (A S8 panel 8 x kr 4, B U8 panel NR x kr 4, init of mr rows).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mobrt {
namespace q8 {
namespace {

// Dot::dot(acc, b_u8, a_s8) = acc + sum of the 4 u8*s8 products of every 32-bit lane (wrapping).
template <typename Dot, int NV>
void q8_gemm_ymm_vnni_8xn(size_t kgroups, const void* a, const void* b, int32_t* c, size_t ldc, size_t mr, size_t nr,
                          const int32_t* init) {
  constexpr int MR = 8, NR = 8 * NV;
  __m256i acc[MR][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    const __m256i v = _mm256_set1_epi32(static_cast<size_t>(r) < mr ? init[r] : 0);
    #pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[r][j] = v;
  }
  const uint8_t* pa = static_cast<const uint8_t*>(a);
  const uint8_t* pb = static_cast<const uint8_t*>(b);
  for (size_t g = 0; g < kgroups; ++g) {
    __m256i bv[NV];
    #pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + 32 * j));
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      int32_t w;
      std::memcpy(&w, pa + 4 * r, 4);
      const __m256i av = _mm256_set1_epi32(w);
      #pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[r][j] = Dot::dot(acc[r][j], bv[j], av);
    }
    pa += MR * 4;
    pb += NR * 4;
  }
  if (nr == static_cast<size_t>(NR)) {
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      if (static_cast<size_t>(r) >= mr) break;
      #pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + 8 * j), acc[r][j]);
    }
    return;
  }
  alignas(32) int32_t tmp[NR];
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (static_cast<size_t>(r) >= mr) break;
    #pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 8 * j), acc[r][j]);
    std::memcpy(c + r * ldc, tmp, nr * sizeof(int32_t));
  }
}

// One column (nr 1): the A panel's k-group (8 rows x 4 bytes) is one vector, the
// column's 4 bytes are broadcast; four accumulators over consecutive k-groups.
template <typename Dot>
void q8_gemv_ymm_vnni_8x1(size_t kgroups, const void* a, const void* b, int32_t* c, size_t ldc, size_t mr, size_t,
                          const int32_t* init) {
  const uint8_t* pa = static_cast<const uint8_t*>(a);
  const uint8_t* pb = static_cast<const uint8_t*>(b);
  __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  auto bc = [&](size_t g) {
    int32_t v;
    std::memcpy(&v, pb + 4 * g, 4);
    return _mm256_set1_epi32(v);
  };
  auto ld = [&](size_t g) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pa + 32 * g)); };
  size_t g = 0;
  for (; g + 4 <= kgroups; g += 4) {
    acc0 = Dot::dot(acc0, bc(g), ld(g));
    acc1 = Dot::dot(acc1, bc(g + 1), ld(g + 1));
    acc2 = Dot::dot(acc2, bc(g + 2), ld(g + 2));
    acc3 = Dot::dot(acc3, bc(g + 3), ld(g + 3));
  }
  for (; g < kgroups; ++g) acc0 = Dot::dot(acc0, bc(g), ld(g));
  const __m256i acc = _mm256_add_epi32(_mm256_add_epi32(acc0, acc1), _mm256_add_epi32(acc2, acc3));
  alignas(32) int32_t tmp[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc);
  for (size_t r = 0; r < mr; ++r) c[r * ldc] = static_cast<int32_t>(static_cast<uint32_t>(tmp[r]) + static_cast<uint32_t>(init[r]));
}

}  // namespace
}  // namespace q8
}  // namespace mobrt
