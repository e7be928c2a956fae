// Registers quantize_linear_q8_neon and dequantize_linear_q8_neon (q8_quantize.h). Compiled
// without ISA flags; the core calls this only when cpu_features() allows neon.
#include "cpu/int8/q8_quantize.h"

namespace mobrt {

void register_kernels_q8_quantize_neon(KernelRegistry& registry) {
  q8::q8_quantize_register(registry, Isa::NEON, "quantize_linear_q8_neon", "dequantize_linear_q8_neon",
                           q8::q8_quantize_prepare_neon);
}

}  // namespace mobrt
