// q8_gemm_avx512_vnni.cpp: the AVX512-VNNI int8 GEMM micro-kernels: zmm 8x32 (vpdpbusd,
// U8 activations x S8 weights, kr 4) and the EVEX-encoded twin of the AVX-VNNI ymm
// kernel (q8_gemm_ymm_vnni.h with _mm256_dpbusd_epi32, 8x16) used for narrow column tails.
#include <immintrin.h>

#include <cstring>

#include "cpu/int8/q8_gemm_x86.h"
#include "cpu/int8/q8_gemm_ymm_vnni.h"
#include "cpu/int8/q8_requant_avx512.h"

namespace mobrt {
namespace q8 {
namespace {

struct DotEvex256 {
  static __m256i dot(__m256i acc, __m256i b_u8, __m256i a_s8) { return _mm256_dpbusd_epi32(acc, b_u8, a_s8); }
};

// acc{0,1}[r] = init[r] (0 for r >= mr) + the 8x32 tile's sums.
inline void zmm_8x32_acc(size_t kgroups, const uint8_t* pa, const uint8_t* pb, size_t mr, const int32_t* init,
                         __m512i* acc0, __m512i* acc1) {
  constexpr int MR = 8;
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm512_set1_epi32(static_cast<size_t>(r) < mr ? init[r] : 0);
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
}

void zmm_8x32(size_t kgroups, const void* a, const void* b, int32_t* c, size_t ldc, size_t mr, size_t nr,
              const int32_t* init) {
  constexpr int MR = 8;
  __m512i acc0[MR], acc1[MR];
  zmm_8x32_acc(kgroups, static_cast<const uint8_t*>(a), static_cast<const uint8_t*>(b), mr, init, acc0, acc1);
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

// The fused epilogue: every row's requant constants built once per call (f[r]), the
// tile requantized in registers; the results are in [lo, hi] (a byte range), so the
// truncating vpmovdb is exact for int8 and uint8 outputs.
template <typename F>
void zmm_8x32_requant(size_t kgroups, const uint8_t* a, const uint8_t* b, size_t b_panel_stride, size_t panels,
                      uint8_t* y, size_t ldy, size_t mr, const int32_t* init, const F* f) {
  constexpr int MR = 8;
  for (size_t p = 0; p < panels; ++p) {
    __m512i acc0[MR], acc1[MR];
    zmm_8x32_acc(kgroups, a, b + p * b_panel_stride, mr, init, acc0, acc1);
    uint8_t* yp = y + 32 * p;
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      if (static_cast<size_t>(r) >= mr) break;
      const __m128i lo = _mm512_cvtepi32_epi8(f[r](acc0[r])), hi = _mm512_cvtepi32_epi8(f[r](acc1[r]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(yp + r * ldy),
                          _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
    }
  }
}

}  // namespace

void q8_gemm_requant_8x32c4_avx512_vnni(size_t kgroups, const void* a, const void* b, size_t b_panel_stride,
                                        size_t panels, void* y, size_t ldy, size_t mr, const int32_t* init,
                                        const Q8Requant* rq, bool y_u8) {
  (void)y_u8;  // the byte pattern of a value in [lo, hi] does not depend on the signedness
  const auto R = [&](size_t r) -> const Q8Requant& { return rq[r < mr ? r : 0]; };
  const uint8_t* pa = static_cast<const uint8_t*>(a);
  const uint8_t* pb = static_cast<const uint8_t*>(b);
  uint8_t* py = static_cast<uint8_t*>(y);
  if (rq[0].float32) {
    const rq512::Float32 f[8] = {rq512::Float32(R(0)), rq512::Float32(R(1)), rq512::Float32(R(2)),
                                 rq512::Float32(R(3)), rq512::Float32(R(4)), rq512::Float32(R(5)),
                                 rq512::Float32(R(6)), rq512::Float32(R(7))};
    zmm_8x32_requant(kgroups, pa, pb, b_panel_stride, panels, py, ldy, mr, init, f);
  } else {
    const rq512::Fixed f[8] = {rq512::Fixed(R(0)), rq512::Fixed(R(1)), rq512::Fixed(R(2)), rq512::Fixed(R(3)),
                               rq512::Fixed(R(4)), rq512::Fixed(R(5)), rq512::Fixed(R(6)), rq512::Fixed(R(7))};
    zmm_8x32_requant(kgroups, pa, pb, b_panel_stride, panels, py, ldy, mr, init, f);
  }
}

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
