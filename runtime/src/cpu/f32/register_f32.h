// Registers the optimized fp32 op kernels of one instruction set: each
// register_f32_<isa>.cpp (x86/register_f32_avx2.cpp, x86/register_f32_avx512.cpp,
// neon/register_f32_neon.cpp) calls register_f32_kernels<its table>(registry, its Isa).
// The table (f32_kernels.h) is only the set's functions; the registry, keyed by
// (op, input dtypes, Isa), is the one dispatch.
//
// Each kernel's `supports` accepts only the configurations the fast path handles
// (fp32, constant weights, ...); anything else falls back to the reference kernel.
#pragma once
#include "cpu/f32/conv_f32_kernel.h"
#include "cpu/f32/elementwise_f32_kernel.h"
#include "cpu/f32/gemm_f32_kernel.h"
#include "cpu/f32/pool_f32_kernel.h"
#include "cpu/f32/softmax_f32_kernel.h"

namespace mobrt {
namespace cpu {
namespace {

template <const F32Kernels& K>
void register_f32_kernels(KernelRegistry& reg, Isa isa) {
  register_f32_conv<K>(reg, isa);
  register_f32_gemm<K>(reg, isa);
  register_f32_pool<K>(reg, isa);
  register_f32_elementwise<K>(reg, isa);
  register_f32_softmax<K>(reg, isa);
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
