// Registers the armv8.0 NEON int8 GEMM (conv_q8_gemm_neon, gemm_q8_neon, matmul_q8_neon):
// the S16 micro-kernels (any int8/uint8 weights and activations), the NEON B packer and
// the NEON requant row. Compiled without ISA flags: it only takes the addresses of q8_gemm_neon.h's functions.
#include "cpu/int8/q8_gemm.h"
#include "cpu/int8/q8_gemm_neon.h"

namespace mobrt {

void register_kernels_q8_gemm_neon(KernelRegistry& registry) {
  q8::Q8Isa t;
  t.suffix = "neon";
  t.gemm.name = "q8_gemm_ukernel_8x12__neon";
  t.gemm.fn = &q8::q8_gemm_ukernel_8x12__neon;
  t.gemm.mr = 8;
  t.gemm.nr = 12;
  t.gemm.kr = 1;
  t.gemm.a_type = q8::Q8Operand::S16;
  t.gemm.b_type = q8::Q8Operand::S16;
  t.narrow = t.gemm;
  t.narrow.name = "q8_gemm_ukernel_8x4__neon";
  t.narrow.fn = &q8::q8_gemm_ukernel_8x4__neon;
  t.narrow.nr = 4;
  t.requant_row = &q8::q8_requant_row_neon;
  t.pack_b = &q8::q8_pack_b_s16_kr1_nr12_neon;
  q8::register_q8_gemm_kernels(registry, Isa::NEON, t);
}

}  // namespace mobrt
