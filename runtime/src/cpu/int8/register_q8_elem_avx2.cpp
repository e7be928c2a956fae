// Registers the avx2 int8 element-wise, pooling and concat kernels (q8_elementwise.h):
// add_q8_avx2, mul_q8_avx2, relu_q8_avx2, concat_q8_avx2, maxpool_q8_avx2, avgpool_q8_avx2,
// gavgpool_q8_avx2. Compiled without ISA flags; the core calls this only when
// cpu_features() allows avx2.
#include "cpu/int8/q8_elementwise.h"

namespace mobrt {

void register_kernels_q8_elem_avx2(KernelRegistry& registry) {
  q8::q8_elem_register(registry, Isa::AVX2, "avx2", q8::q8_elem_prepare_avx2);
}

}  // namespace mobrt
