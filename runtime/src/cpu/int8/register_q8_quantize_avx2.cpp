// Registers quantize_linear_q8_avx2 and dequantize_linear_q8_avx2 (q8_quantize.h). Compiled
// without ISA flags; the core calls this only when cpu_features() allows avx2.
#include "cpu/int8/q8_quantize.h"

namespace mobrt {

void register_kernels_q8_quantize_avx2(KernelRegistry& registry) {
  q8::q8_quantize_register(registry, Isa::AVX2, "quantize_linear_q8_avx2", "dequantize_linear_q8_avx2",
                           q8::q8_quantize_prepare_avx2);
}

}  // namespace mobrt
