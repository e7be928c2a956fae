// register_q8_gemm_avx_vnni.cpp: the AVX-VNNI int8 GEMM kernels (ymm vpdpbusd 8x16, 8x8
// for narrow column tails). Compiled without ISA flags: takes addresses only.
#include "cpu/int8/q8_gemm_x86.h"

namespace mobrt {

void register_kernels_q8_gemm_avx_vnni(KernelRegistry& registry) {
  q8::Q8Isa t;
  t.suffix = "avx_vnni";
  t.gemm = q8::kQ8GemmAvxVnni_8x16c4;
  t.narrow = q8::kQ8GemmAvxVnni_8x8c4;
  t.gemv = q8::kQ8GemmAvxVnni_8x1c4;
  t.requant_row = &q8::q8_requant_row_avx2;
  t.pack_b = &q8::q8_pack_b_u8_kr4_nr16_avx2;
  t.gather2 = &q8::q8_gather2_avx2;
  q8::register_q8_gemm_kernels(registry, Isa::AVXVNNI, t);
}

}  // namespace mobrt
