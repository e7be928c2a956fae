// fp32 element-wise drivers over one instruction set's F32Kernels table
// (elementwise_f32.cpp): broadcast binary ops and unary activations.
#pragma once
#include <cstddef>
#include <cstdint>

#include "f32_kernels.h"

namespace mobrt {
namespace cpu {

// ---- Element-wise ----------------------------------------------------------------------------
// Numpy broadcasting of a (rank ra) and b (rank rb) into y (rank ry = max); act after op.
void binary_run(const F32Kernels& ks, BinOp op, const int64_t* a_dims, int ra, const float* a,
                const int64_t* b_dims, int rb, const float* b, float* y, const Activation& act,
                const TaskRunner* runner);
void activation_run(const F32Kernels& ks, const Activation& act, const float* x, float* y,
                    int64_t n, const TaskRunner* runner);


}  // namespace cpu
}  // namespace mobrt
