// Registers the fp16 compute kernels (f16_neon_fp16.h) under Isa::NEONFP16. Compiled
// without ISA flags (only takes the kernels' addresses); the core calls this only when
// the CPU has fp16 arithmetic, dot product and NEON. Each kernel's `supports` also
// requires KernelContext::allow_fp16, so without it the float32 NEON kernels run.
#include "cpu/f16/f16_neon_fp16.h"

namespace mobrt {

namespace fb = ::mobconv::formats::fb;

void register_kernels_f16_neon_fp16(KernelRegistry& registry) {
  const KernelKey f32{DType::F32, DType::F32};
  Kernel conv;
  conv.name = "conv_f16_gemm_neon_fp16";
  conv.supports = &f16::conv_gemm_supports;
  conv.prepare = &f16::conv_gemm_prepare;
  conv.release = &f16::release_state;
  conv.scratch_bytes = &f16::conv_gemm_scratch;
  conv.run = &f16::conv_gemm_run;
  registry.add(fb::OpType_Conv, f32, Isa::NEONFP16, conv);

  Kernel dw;
  dw.name = "conv_f16_dw_neon_fp16";
  dw.supports = &f16::dwconv_supports;
  dw.prepare = &f16::dwconv_prepare;
  dw.release = &f16::release_state;
  dw.scratch_bytes = &f16::dwconv_scratch;
  dw.run = &f16::dwconv_run;
  registry.add(fb::OpType_Conv, f32, Isa::NEONFP16, dw);

  Kernel gemm;
  gemm.name = "gemm_f16_packed_neon_fp16";
  gemm.supports = &f16::gemm_supports;
  gemm.prepare = &f16::gemm_prepare;
  gemm.release = &f16::release_state;
  gemm.scratch_bytes = &f16::gemm_scratch;
  gemm.run = &f16::gemm_run;
  registry.add(fb::OpType_Gemm, f32, Isa::NEONFP16, gemm);
  gemm.name = "matmul_f16_packed_neon_fp16";
  registry.add(fb::OpType_MatMul, f32, Isa::NEONFP16, gemm);
}

}  // namespace mobrt
