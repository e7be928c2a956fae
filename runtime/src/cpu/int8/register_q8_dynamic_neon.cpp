// Registers the neon dynamic-range int8 MatMul/Gemm (q8_dynamic.h) under
// (MatMul|Gemm|Conv, {F32, I8}). Compiled without ISA flags; the core calls this only when
// cpu_features() allows neon.
#include "cpu/int8/q8_dynamic.h"

namespace mobrt {

void register_kernels_q8_dynamic_neon(KernelRegistry& registry) {
  registry.add(q8::fb::OpType_MatMul, KernelKey{DType::F32, DType::I8}, Isa::NEON, q8::kQ8DynamicMatMulNeon);
  registry.add(q8::fb::OpType_Gemm, KernelKey{DType::F32, DType::I8}, Isa::NEON, q8::kQ8DynamicGemmNeon);
  registry.add(q8::fb::OpType_Conv, KernelKey{DType::F32, DType::I8}, Isa::NEON, q8::kQ8DynamicConvNeon);
}

}  // namespace mobrt
