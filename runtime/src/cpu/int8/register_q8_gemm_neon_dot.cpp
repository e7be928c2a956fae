// Registers the armv8.2 dot-product int8 GEMM (conv_q8_gemm_neon_dot, gemm_q8_neon_dot,
// matmul_q8_neon_dot): the sdot micro-kernels on S8 operands (weights whose w - zw fits
// int8; others fall through to the neon set), the NEON B packer and requant row. Called at
// start-up only when the CPU has the dot product. Compiled without ISA flags: it only takes the
// addresses of q8_gemm_neon.h's functions.
#include "cpu/int8/q8_gemm.h"
#include "cpu/int8/q8_gemm_neon.h"

namespace mobrt {

void register_kernels_q8_gemm_neon_dot(KernelRegistry& registry) {
  q8::Q8Isa t;
  t.suffix = "neon_dot";
  t.gemm.name = "q8_gemm_ukernel_8x12c4__neon_dot";
  t.gemm.fn = &q8::q8_gemm_ukernel_8x12c4__neon_dot;
  t.gemm.mr = 8;
  t.gemm.nr = 12;
  t.gemm.kr = 4;
  t.gemm.a_type = q8::Q8Operand::S8;
  t.gemm.b_type = q8::Q8Operand::S8;
  t.narrow = t.gemm;
  t.narrow.name = "q8_gemm_ukernel_8x4c4__neon_dot";
  t.narrow.fn = &q8::q8_gemm_ukernel_8x4c4__neon_dot;
  t.narrow.nr = 4;
  t.requant_row = &q8::q8_requant_row_neon;
  t.pack_b = &q8::q8_pack_b_s8_kr4_nr12_neon;
  q8::register_q8_gemm_kernels(registry, Isa::NEONDOT, t);
}

}  // namespace mobrt
