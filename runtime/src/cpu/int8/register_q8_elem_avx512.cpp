// Registers the AVX-512 int8 element-wise, pooling and concat kernels (q8_elementwise.h):
// add_q8_avx512, mul_q8_avx512, ... Compiled without ISA flags; the core calls this only
// when cpu_features() allows avx512 (F + BW + VL).
#include "cpu/int8/q8_elementwise.h"

namespace mobrt {

void register_kernels_q8_elem_avx512(KernelRegistry& registry) {
  q8::q8_elem_register(registry, Isa::AVX512, "avx512", q8::q8_elem_prepare_avx512);
}

}  // namespace mobrt
