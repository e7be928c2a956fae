// infer.h: shape/dtype inference functions, one per op type, registered
// beside the reference kernels (src/cpu/reference/*). An infer function reads
// ctx.inputs (dtype, rank, dims; data only when the value is known at
// prepare time: constants and folded shape computations) and sets each
// present output's dtype, rank and dims. It must validate everything the
// kernels rely on (ranks, dtypes, attribute ranges), since files are hostile.
#pragma once

#include "core/kernel.h"

namespace mobrt {

using InferFn = Status (*)(KernelContext& ctx);

void register_infer(OpType op, InferFn fn);
InferFn find_infer(OpType op);
// The table entry as registered so far, without building the kernel registry:
// for a registration function that wraps the shape functions registered before it
// (the quantized forms, src/cpu/reference/quant_ops.cpp).
InferFn registered_infer(OpType op);

// Limit on any one tensor's bytes (env MOBRT_MAX_TENSOR_BYTES, default 4 GiB).
size_t max_tensor_bytes();

}  // namespace mobrt
