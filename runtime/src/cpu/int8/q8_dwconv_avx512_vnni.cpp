// q8_dwconv_avx512_vnni.cpp: the AVX-512 VNNI row kernels of the int8 depthwise 3x3
// convolution (q8_dwconv.h): the pairing of q8_dwconv_avx512.cpp (int16 x - zx times
// int16 pairs (w0, w1), (w2, 0)), but each multiply-add and its accumulation are one
// vpdpwssd (the NON-saturating int16 dot: exact, products <= 255 * 255 and every sum in
// int32 by supports()'s bound), which halves the instructions of a step. The row kernels,
// the widening and the fused flat planes are q8_dwconv_avx512.h's, instantiated with it.
#include <immintrin.h>

#include "cpu/int8/q8_dwconv.h"
#include "cpu/int8/q8_dwconv_avx512.h"
#include "cpu/int8/q8_dwconv_x86.h"
#include "cpu/int8/q8_gemm_x86.h"

namespace mobrt {
namespace q8 {
namespace {

struct Dot {  // vpdpwssd: the multiply-add and its accumulation in one instruction
  static __m512i dp(__m512i acc, __m512i x, __m512i w) { return _mm512_dpwssd_epi32(acc, x, w); }
};

const Q8DwIsa kIsa = {"conv_q8_dw3x3_avx512_vnni", dw512::row3x3s1<Dot>, dw512::row3x3s2<Dot>, dw512::widen,
                      q8_requant_row_avx512, dw512::flat_plane<Dot>};

}  // namespace

Status q8_dw_prepare_avx512_vnni(KernelContext& ctx) { return q8_dw_prepare(ctx, kIsa); }

}  // namespace q8
}  // namespace mobrt
