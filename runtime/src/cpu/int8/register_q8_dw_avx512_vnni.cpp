// Registers the avx512_vnni int8 depthwise 3x3 convolution (q8_dwconv.h, vpdpwssd rows) under
// (Conv, {I8|U8, I8|U8}). Compiled without ISA flags; the core calls this only when
// cpu_features() allows avx512_vnni.
#include "cpu/int8/q8_dwconv.h"

namespace mobrt {

void register_kernels_q8_dw_avx512_vnni(KernelRegistry& registry) {
  q8::q8_dw_register(registry, Isa::AVX512VNNI,
                     q8::q8_dw_kernel("conv_q8_dw3x3_avx512_vnni", q8::q8_dw_prepare_avx512_vnni));
}

}  // namespace mobrt
