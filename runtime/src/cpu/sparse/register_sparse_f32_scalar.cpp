// Registers the scalar sparse fp32 kernels (sparse_f32_kernel.h) with the kSparseF32Scalar table,
// ahead of the reference kernels (which they are tested against through the numpy
// reference). Every target; MOBRT_SPARSE=auto never selects them (sparse_f32.h).
#include "cpu/sparse/sparse_f32_kernel.h"

namespace mobrt {

void register_kernels_sparse_f32_scalar(KernelRegistry& registry) {
  cpu::register_sparse_f32_kernels<cpu::kSparseF32Scalar>(registry, Isa::Scalar);
}

}  // namespace mobrt
