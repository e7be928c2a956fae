// q8_gemm_x86.h: the x86 int8 GEMM micro-kernels and requant rows, defined in the
// ISA-flagged files (q8_gemm_*_avx2 / _avx_vnni / _avx512_vnni, q8_requant_*) and
// referenced (addresses only) by the register_q8_gemm_<set>.cpp files.
#pragma once

#include "cpu/int8/q8_gemm.h"

namespace mobrt {
namespace q8 {

// AVX2 without VNNI: S16 x S16 with vpmaddwd (exact; never vpmaddubsw). 6x16, kr 2.
extern const Q8GemmUkernel kQ8GemmAvx2_6x16c2;
// AVX-VNNI (VEX vpdpbusd, ymm): S8 A x U8 B, 8x16 and 8x8, kr 4 (q8_gemm_ymm_vnni.h).
extern const Q8GemmUkernel kQ8GemmAvxVnni_8x16c4;
extern const Q8GemmUkernel kQ8GemmAvxVnni_8x8c4;
extern const Q8GemmUkernel kQ8GemmAvxVnni_8x1c4;  // one column (Q8Isa::gemv)
// AVX512-VNNI: zmm 8x32 and the EVEX ymm twin of the AVX-VNNI source (8x16), kr 4.
extern const Q8GemmUkernel kQ8GemmAvx512Vnni_8x32c4;
extern const Q8GemmUkernel kQ8GemmAvx512VnniYmm_8x16c4;
extern const Q8GemmUkernel kQ8GemmAvx512VnniYmm_8x1c4;  // one column (Q8Isa::gemv)
// zmm 8x32 with the requantization fused into its epilogue (Q8Isa::gemm_requant).
void q8_gemm_requant_8x32c4_avx512_vnni(size_t kgroups, const void* a, const void* b, size_t b_panel_stride,
                                        size_t panels, void* y, size_t ldy, size_t mr, const int32_t* init,
                                        const Q8Requant* rq, bool y_u8);

// B packers (Q8PackBFn) for the kernels above (q8_gemm_pack_avx2.cpp; AVX2 also runs
// under the VNNI sets, which include it).
void q8_pack_b_u8_kr4_nr16_avx2(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst,
                                size_t panel_stride);
void q8_pack_b_u8_kr4_nr32_avx2(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst,
                                size_t panel_stride);
void q8_pack_b_s16_kr2_nr16_avx2(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst,
                                 size_t panel_stride);

// im2col's stride-2 gather (Q8Gather2Fn), 32 outputs a step.
void q8_gather2_avx2(const uint8_t* x, uint8_t* d, int64_t a, int64_t b);

// Row requantization, bit for bit q8_requant_row_scalar.
void q8_requant_row_avx2(const int32_t* acc, size_t n, const Q8Requant& r, void* out, bool out_u8);
void q8_requant_row_avx512(const int32_t* acc, size_t n, const Q8Requant& r, void* out, bool out_u8);

}  // namespace q8
}  // namespace mobrt
