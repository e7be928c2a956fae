// Registers the neon fp32 op kernels (f32/register_f32.h) with the kF32Neon table. Compiled
// without ISA flags; the core calls this only when the CPU supports Isa::NEON.
#include "cpu/f32/register_f32.h"

namespace mobrt {

void register_kernels_f32_neon(KernelRegistry& registry) {
  cpu::register_f32_kernels<cpu::kF32Neon>(registry, Isa::NEON);
}

}  // namespace mobrt
