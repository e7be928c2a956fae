// Registers the avx512 int8 depthwise 3x3 convolution (q8_dwconv.h) under (Conv, {I8|U8, I8|U8}).
// Compiled without ISA flags; the core calls this only when cpu_features() allows avx512.
#include "cpu/int8/q8_dwconv.h"

namespace mobrt {

void register_kernels_q8_dw_avx512(KernelRegistry& registry) {
  q8::q8_dw_register(registry, Isa::AVX512, q8::q8_dw_kernel("conv_q8_dw3x3_avx512", q8::q8_dw_prepare_avx512));
}

}  // namespace mobrt
