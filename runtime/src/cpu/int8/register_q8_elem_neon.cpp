// Registers the armv8.0 NEON int8 element-wise, pooling and concat kernels
// (q8_elementwise.h): add_q8_neon, mul_q8_neon, relu_q8_neon, concat_q8_neon,
// maxpool_q8_neon, avgpool_q8_neon, gavgpool_q8_neon. Compiled without ISA flags; the
// core calls this only when cpu_features() allows neon.
#include "cpu/int8/q8_elementwise.h"

namespace mobrt {

void register_kernels_q8_elem_neon(KernelRegistry& registry) {
  q8::q8_elem_register(registry, Isa::NEON, "neon", q8::q8_elem_prepare_neon);
}

}  // namespace mobrt
