// Shared pieces of the fp32 op kernels (the *_f32_kernel.h glue between the kernel
// registry and the f32/ drivers): the core's thread pool as a TaskRunner, dtype checks,
// the fused activation, and the prepare-time state of the GEMM-based kernels.
//
// Everything in the glue headers is internal linkage; the kernels are templates over
// the instruction set's F32Kernels table (template <const F32Kernels& K>), instantiated
// by each register_f32_<isa>.cpp (compiled without ISA flags: it only takes the
// addresses of the table's functions, which are defined in that set's ISA files).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "core/kernel.h"
#include "cpu/f32/f32_kernels.h"

namespace mobrt {
namespace cpu {
namespace {

namespace fb = ::mobconv::formats::fb;

void core_parallel_for(void* pool, int64_t n, void* c, void (*fn)(void*, int64_t)) {
  static_cast<const KernelContext*>(pool)->parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) fn(c, i);
  });
}

TaskRunner runner_for(const KernelContext& ctx) {
  TaskRunner r;
  r.parallel_for = &core_parallel_for;
  r.pool = const_cast<KernelContext*>(&ctx);
  r.threads = ctx.num_threads();
  return r;
}

bool fused_act(const KernelContext& ctx, Activation* out) {
  return Activation::parse(*ctx.attrs, out).ok();
}

bool is_f32(const TensorView& t) { return t.present() && t.dtype == DType::F32; }
bool is_const_f32(const TensorView& t) { return is_f32(t) && t.is_constant && t.data != nullptr; }
const float* opt_input(const KernelContext& ctx, int i) {
  return i < ctx.num_inputs && ctx.inputs[i].present() ? ctx.inputs[i].as<float>() : nullptr;
}

// Packed weights and everything else prepare derives from attributes and constants.
struct PackedState {
  const F32Kernels* ks = nullptr;
  std::vector<float> packed;  // GEMM panels (over-allocated to realign to 64 bytes)
  std::vector<float> bias;    // Gemm: beta * C, resolved once
  Activation act;
  bool dynamic = false;       // MatMul whose B was not a constant at prepare: nothing packed
  const float* aligned() const {
    return reinterpret_cast<const float*>((reinterpret_cast<uintptr_t>(packed.data()) + 63) & ~uintptr_t(63));
  }
  float* aligned_mut() { return const_cast<float*>(aligned()); }
};
void release_state(void* s) { delete static_cast<PackedState*>(s); }
PackedState* state_of(const KernelContext& ctx) { return static_cast<PackedState*>(*ctx.state); }
}  // namespace
}  // namespace cpu
}  // namespace mobrt
