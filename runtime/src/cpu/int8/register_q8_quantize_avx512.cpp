// Registers quantize_linear_q8_avx512 and dequantize_linear_q8_avx512 (q8_quantize.h). Compiled
// without ISA flags; the core calls this only when cpu_features() allows avx512.
#include "cpu/int8/q8_quantize.h"

namespace mobrt {

void register_kernels_q8_quantize_avx512(KernelRegistry& registry) {
  q8::q8_quantize_register(registry, Isa::AVX512, "quantize_linear_q8_avx512", "dequantize_linear_q8_avx512",
                           q8::q8_quantize_prepare_avx512);
}

}  // namespace mobrt
