// fp16 compute kernels for ARMv8.2 (FEAT_FP16, Isa::NEONFP16): Conv (GEMM and
// depthwise), Gemm and MatMul with constant weights, float32 tensors in and out.
//
// When: only if the interpreter allows fp16 compute (KernelContext::allow_fp16: the
// option mobrt_options_set_allow_fp16, or a model whose metadata
// quantization.fp16_compute is "allow", docs/quantization.md "fp16 compute") and the
// CPU has fp16 arithmetic (the register file is only called then). Otherwise every
// `supports` below returns false and the float32 kernels run, as without this set.
//
// Numerics: weights are rounded to fp16 once at prepare (round to nearest even);
// activations are rounded to fp16 at the kernel boundary (packing / the padded
// depthwise plane); products are accumulated in fp16 with fused multiply-add
// (vfmaq_laneq_f16 / vfmaq_n_f16, 8 lanes), over the reduction in increasing order
// (Conv: input channel, kernel row, kernel column = the ONNX weight layout; Gemm: k),
// starting from 0. The fp16 sum is widened to float32 (exact), then the bias, the
// fused residual and the fused activation are applied in float32. Graph tensors stay
// float32: nothing outside these kernels sees fp16. Each output element is computed
// by the same sequence of operations whatever the thread count (results are equal
// across thread counts).
//
// These functions are defined in files compiled with -march=armv8.2-a+fp16; the
// registration file (compiled without ISA flags) only takes their addresses.
#pragma once

#include "core/kernel.h"

namespace mobrt {
namespace f16 {

bool conv_gemm_supports(const KernelContext& ctx);
Status conv_gemm_prepare(KernelContext& ctx);
size_t conv_gemm_scratch(const KernelContext& ctx);
Status conv_gemm_run(KernelContext& ctx);

bool dwconv_supports(const KernelContext& ctx);
Status dwconv_prepare(KernelContext& ctx);
size_t dwconv_scratch(const KernelContext& ctx);
Status dwconv_run(KernelContext& ctx);

bool gemm_supports(const KernelContext& ctx);  // Gemm and MatMul with a constant 2-D B
Status gemm_prepare(KernelContext& ctx);
size_t gemm_scratch(const KernelContext& ctx);
Status gemm_run(KernelContext& ctx);

void release_state(void* state);

}  // namespace f16
}  // namespace mobrt
