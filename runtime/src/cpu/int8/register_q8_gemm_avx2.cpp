// register_q8_gemm_avx2.cpp: the AVX2 int8 GEMM kernels (Conv/Gemm/MatMul, S16 operands
// with vpmaddwd). Compiled without ISA flags: takes addresses only.
#include "cpu/int8/q8_gemm_x86.h"

namespace mobrt {

void register_kernels_q8_gemm_avx2(KernelRegistry& registry) {
  q8::Q8Isa t;
  t.suffix = "avx2";
  t.gemm = q8::kQ8GemmAvx2_6x16c2;
  t.requant_row = &q8::q8_requant_row_avx2;
  t.pack_b = &q8::q8_pack_b_s16_kr2_nr16_avx2;
  t.gather2 = &q8::q8_gather2_avx2;
  q8::register_q8_gemm_kernels(registry, Isa::AVX2, t);
}

}  // namespace mobrt
