// q8_dwconv_avx512.cpp: the AVX-512 (F + BW) int8 depthwise 3x3 set (q8_dwconv.h): the row
// kernels of q8_dwconv_avx512.h with vpmaddwd + vpaddd; q8_dwconv_x86.h's exact scheme on 512-bit vectors
// (stride 2: madd(p[0..31], (w0, w1)) + madd(p[2..33], (w2, 0)) = outputs j .. j+15;
// stride 1: even and odd outputs interleaved, 32 per step), the row's last outputs with
// the 256/128-bit steps; the input rows widened with masked vpmovsxbw / vpmovzxbw.
#include <immintrin.h>

#include "cpu/int8/q8_dwconv.h"
#include "cpu/int8/q8_dwconv_avx512.h"
#include "cpu/int8/q8_dwconv_x86.h"
#include "cpu/int8/q8_gemm_x86.h"

namespace mobrt {
namespace q8 {
namespace {

struct Dot {  // vpmaddwd + vpaddd
  static __m512i dp(__m512i acc, __m512i x, __m512i w) { return _mm512_add_epi32(acc, _mm512_madd_epi16(x, w)); }
};

const Q8DwIsa kIsa = {"conv_q8_dw3x3_avx512", dw512::row3x3s1<Dot>, dw512::row3x3s2<Dot>, dw512::widen,
                      q8_requant_row_avx512, dw512::flat_plane<Dot>};

}  // namespace

Status q8_dw_prepare_avx512(KernelContext& ctx) { return q8_dw_prepare(ctx, kIsa); }

}  // namespace q8
}  // namespace mobrt
