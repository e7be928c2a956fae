// Registers the avx512 fp32 op kernels (f32/register_f32.h) with the kF32Avx512 table. Compiled
// without ISA flags; the core calls this only when the CPU supports Isa::AVX512.
#include "cpu/f32/register_f32.h"

namespace mobrt {

void register_kernels_f32_avx512(KernelRegistry& registry) {
  cpu::register_f32_kernels<cpu::kF32Avx512>(registry, Isa::AVX512);
}

}  // namespace mobrt
