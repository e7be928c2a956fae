// Registers the neon fp32 kernels (gemm/kernel_glue.h) in the kernel table. Compiled
// without ISA flags; the core calls this only when cpu_features() allows neon.
#include "cpu/gemm/kernel_glue.h"

namespace mobrt {

void register_kernels_neon(KernelRegistry& registry) {
  cpu::register_optimized_kernels<cpu::SimdIsa::kNeon>(registry, Isa::NEON);
}

}  // namespace mobrt
