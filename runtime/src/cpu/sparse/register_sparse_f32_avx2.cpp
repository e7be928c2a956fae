// Registers the avx2 sparse fp32 kernels (sparse_f32_kernel.h) with the kSparseF32Avx2 table,
// ahead of the dense ones of the same set. Compiled without ISA flags; the core calls this
// only when the CPU supports Isa::AVX2.
#include "cpu/sparse/sparse_f32_kernel.h"

namespace mobrt {

void register_kernels_sparse_f32_avx2(KernelRegistry& registry) {
  cpu::register_sparse_f32_kernels<cpu::kSparseF32Avx2>(registry, Isa::AVX2);
}

}  // namespace mobrt
