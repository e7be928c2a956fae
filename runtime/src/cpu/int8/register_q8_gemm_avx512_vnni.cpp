// register_q8_gemm_avx512_vnni.cpp: the AVX512-VNNI int8 GEMM kernels: zmm 8x32, and for
// a last column panel of at most 16 columns the EVEX twin of the AVX-VNNI ymm kernel
// (so that source runs here too). Compiled without ISA flags: takes addresses only.
#include "cpu/int8/q8_gemm_x86.h"

namespace mobrt {

void register_kernels_q8_gemm_avx512_vnni(KernelRegistry& registry) {
  q8::Q8Isa t;
  t.suffix = "avx512_vnni";
  t.gemm = q8::kQ8GemmAvx512Vnni_8x32c4;
  t.narrow = q8::kQ8GemmAvx512VnniYmm_8x16c4;
  t.gemv = q8::kQ8GemmAvx512VnniYmm_8x1c4;
  t.requant_row = &q8::q8_requant_row_avx512;
  t.pack_b = &q8::q8_pack_b_u8_kr4_nr32_avx2;
  t.gather2 = &q8::q8_gather2_avx2;
  t.gemm_requant = &q8::q8_gemm_requant_8x32c4_avx512_vnni;
  q8::register_q8_gemm_kernels(registry, Isa::AVX512VNNI, t);
}

}  // namespace mobrt
