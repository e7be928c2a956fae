// Registers the neon sparse fp32 kernels (sparse_f32_kernel.h) with the kSparseF32Neon table,
// ahead of the dense ones of the same set. Compiled without ISA flags; the core calls this
// only when the CPU supports Isa::NEON.
#include "cpu/sparse/sparse_f32_kernel.h"

namespace mobrt {

void register_kernels_sparse_f32_neon(KernelRegistry& registry) {
  cpu::register_sparse_f32_kernels<cpu::kSparseF32Neon>(registry, Isa::NEON);
}

}  // namespace mobrt
