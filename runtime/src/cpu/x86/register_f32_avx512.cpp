// Registers the avx512 fp32 kernels (gemm/kernel_glue.h) in the kernel table. Compiled
// without ISA flags; the core calls this only when cpu_features() allows avx512.
#include "cpu/gemm/kernel_glue.h"

namespace mobrt {

void register_kernels_avx512(KernelRegistry& registry) {
  cpu::register_optimized_kernels<cpu::SimdIsa::kAvx512>(registry, Isa::AVX512);
}

}  // namespace mobrt
