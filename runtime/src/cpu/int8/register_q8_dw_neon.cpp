// Registers the neon int8 depthwise 3x3 convolution (q8_dwconv.h) under (Conv, {I8|U8, I8|U8}).
// Compiled without ISA flags; the core calls this only when cpu_features() allows neon.
#include "cpu/int8/q8_dwconv.h"

namespace mobrt {

void register_kernels_q8_dw_neon(KernelRegistry& registry) {
  q8::q8_dw_register(registry, Isa::NEON, q8::q8_dw_kernel("conv_q8_dw3x3_neon", q8::q8_dw_prepare_neon));
}

}  // namespace mobrt
