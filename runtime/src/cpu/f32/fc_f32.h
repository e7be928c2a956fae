// fp32 FullyConnected over one instruction set's F32Kernels table (fc_f32.cpp):
// the Gemm/MatMul op kernel with constant B (gemm_f32_kernel.h) and the kernel tests.
#pragma once
#include <cstddef>
#include <cstdint>

#include "f32_kernels.h"

namespace mobrt {
namespace cpu {

// ---- FullyConnected: y[b, o] = act(x[b, :] . W[o, :] + bias[o]) ------------------------
size_t fc_packed_weights_floats(const F32Kernels& ks, int64_t in, int64_t out);
void fc_pack_weights(const F32Kernels& ks, int64_t in, int64_t out, const float* w,
                     bool w_is_out_by_in, float* packed);
size_t fc_scratch_floats(const F32Kernels& ks, int64_t batch, int64_t in);
void fc_run(const F32Kernels& ks, int64_t batch, int64_t in, int64_t out, const float* x,
            const float* packed_w, const float* bias, const Activation& act, float* y,
            float* scratch, const TaskRunner* runner);

}  // namespace cpu
}  // namespace mobrt
