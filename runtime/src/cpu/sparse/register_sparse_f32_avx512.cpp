// Registers the avx512 sparse fp32 kernels (sparse_f32_kernel.h) with the kSparseF32Avx512 table,
// ahead of the dense ones of the same set. Compiled without ISA flags; the core calls this
// only when the CPU supports Isa::AVX512.
#include "cpu/sparse/sparse_f32_kernel.h"

namespace mobrt {

void register_kernels_sparse_f32_avx512(KernelRegistry& registry) {
  cpu::register_sparse_f32_kernels<cpu::kSparseF32Avx512>(registry, Isa::AVX512);
}

}  // namespace mobrt
