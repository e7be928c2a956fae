// Registers the avx2 fp32 op kernels (f32/register_f32.h) with the kF32Avx2 table. Compiled
// without ISA flags; the core calls this only when the CPU supports Isa::AVX2.
#include "cpu/f32/register_f32.h"

namespace mobrt {

void register_kernels_f32_avx2(KernelRegistry& registry) {
  cpu::register_f32_kernels<cpu::kF32Avx2>(registry, Isa::AVX2);
}

}  // namespace mobrt
