// Registers the avx2 fp32 kernels (gemm/kernel_glue.h) in the kernel table. Compiled
// without ISA flags; the core calls this only when cpu_features() allows avx2.
#include "cpu/gemm/kernel_glue.h"

namespace mobrt {

void register_kernels_avx2(KernelRegistry& registry) {
  cpu::register_optimized_kernels<cpu::SimdIsa::kAvx2>(registry, Isa::AVX2);
}

}  // namespace mobrt
