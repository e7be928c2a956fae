// Registers the avx2 dynamic-range int8 MatMul/Gemm (q8_dynamic.h) under
// (MatMul|Gemm|Conv, {F32, I8}). Compiled without ISA flags; the core calls this only when
// cpu_features() allows avx2.
#include "cpu/int8/q8_dynamic.h"

namespace mobrt {

void register_kernels_q8_dynamic_avx2(KernelRegistry& registry) {
  registry.add(q8::fb::OpType_MatMul, KernelKey{DType::F32, DType::I8}, Isa::AVX2, q8::kQ8DynamicMatMulAvx2);
  registry.add(q8::fb::OpType_Gemm, KernelKey{DType::F32, DType::I8}, Isa::AVX2, q8::kQ8DynamicGemmAvx2);
  registry.add(q8::fb::OpType_Conv, KernelKey{DType::F32, DType::I8}, Isa::AVX2, q8::kQ8DynamicConvAvx2);
}

}  // namespace mobrt
