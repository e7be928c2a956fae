// fp32 Softmax / LogSoftmax over one instruction set's F32Kernels table (softmax_f32.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "f32_kernels.h"

namespace mobrt {
namespace cpu {

// ---- Softmax over axis: x viewed as [outer, len, inner] ------------------------------------
void softmax_run(const F32Kernels& ks, int64_t outer, int64_t len, int64_t inner, bool log,
                 const float* x, float* y, const TaskRunner* runner);


}  // namespace cpu
}  // namespace mobrt
