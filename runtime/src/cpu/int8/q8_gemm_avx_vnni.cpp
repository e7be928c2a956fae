// q8_gemm_avx_vnni.cpp: the AVX-VNNI (VEX vpdpbusd) int8 GEMM micro-kernels, 8x16 and
// 8x8 (q8_gemm_ymm_vnni.h with _mm256_dpbusd_avx_epi32).
#include "cpu/int8/q8_gemm_x86.h"
#include "cpu/int8/q8_gemm_ymm_vnni.h"

namespace mobrt {
namespace q8 {
namespace {

struct DotAvxVnni {
  static __m256i dot(__m256i acc, __m256i b_u8, __m256i a_s8) { return _mm256_dpbusd_avx_epi32(acc, b_u8, a_s8); }
};

}  // namespace

// Constant-initialized (no code of this ISA runs at start-up).
const Q8GemmUkernel kQ8GemmAvxVnni_8x16c4 = {"q8_gemm_ukernel_8x16c4__avx_vnni", &q8_gemm_ymm_vnni_8xn<DotAvxVnni, 2>,
                                             8, 16, 4, Q8Operand::S8, Q8Operand::U8};
const Q8GemmUkernel kQ8GemmAvxVnni_8x8c4 = {"q8_gemm_ukernel_8x8c4__avx_vnni", &q8_gemm_ymm_vnni_8xn<DotAvxVnni, 1>,
                                            8, 8, 4, Q8Operand::S8, Q8Operand::U8};
const Q8GemmUkernel kQ8GemmAvxVnni_8x1c4 = {"q8_gemv_ukernel_8x1c4__avx_vnni", &q8_gemv_ymm_vnni_8x1<DotAvxVnni>, 8, 1,
                                            4, Q8Operand::S8, Q8Operand::U8};

}  // namespace q8
}  // namespace mobrt
