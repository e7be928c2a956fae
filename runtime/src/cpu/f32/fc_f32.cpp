// FullyConnected (Gemm/MatMul with constant B, fc_f32.h): x [batch, in] packed as the
// GEMM's A per run, the weights pre-packed as B panels once.
#include <cstdint>

#include "fc_f32.h"

namespace mobrt {
namespace cpu {

size_t fc_packed_weights_floats(const F32Kernels& ks, int64_t in, int64_t out) {
  return sgemm_packed_b_size(*ks.gemm, in, out);
}

void fc_pack_weights(const F32Kernels& ks, int64_t in, int64_t out, const float* w,
                     bool w_is_out_by_in, float* packed) {
  if (w_is_out_by_in)
    sgemm_pack_b(*ks.gemm, in, out, w, 1, in, packed);
  else
    sgemm_pack_b(*ks.gemm, in, out, w, out, 1, packed);
}

size_t fc_scratch_floats(const F32Kernels& ks, int64_t batch, int64_t in) {
  return sgemm_packed_a_size(*ks.gemm, batch, in) + 16;
}

void fc_run(const F32Kernels& ks, int64_t batch, int64_t in, int64_t out, const float* x,
            const float* packed_w, const float* bias, const Activation& act, float* y,
            float* scratch, const TaskRunner* runner) {
  float* pa = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t(63));
  sgemm_pack_a(*ks.gemm, batch, in, x, in, 1, pa);
  SgemmArgs a;
  a.m = batch;
  a.n = out;
  a.k = in;
  a.packed_a = pa;
  a.packed_b = packed_w;
  a.c = y;
  a.ldc = out;
  a.bias = bias;
  a.bias_mode = BiasMode::kPerCol;
  a.act = act;
  sgemm_packed(*ks.gemm, ks.activation, a, runner);
}

}  // namespace cpu
}  // namespace mobrt
