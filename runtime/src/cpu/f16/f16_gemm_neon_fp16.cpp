// fp16 Gemm / MatMul with a constant 2-D B (ARMv8.2 FEAT_FP16), the compute only
// (compiled with -march=armv8.2-a+fp16): Y[M, N] = act(alpha * A x op(B) + beta * C),
// computed as Y^T = op(B)^T x A^T so the constant weights are the packed 8-row A panels
// (8 output features each) and the activations the 16-column B panels (16 rows of A
// each); rows left over after the 16-row blocks go one at a time through the 8-lane GEMV
// kernel (same products in the same order). supports, prepare and errors: f16_gemm.cpp
// (no ISA flags). Numerics: f16_neon_fp16.h.
#include <arm_neon.h>

#include "cpu/f16/f16_common_neon_fp16.h"
#include "cpu/f16/f16_kernels.h"

namespace mobrt {
namespace f16 {

void gemm_compute(const KernelContext& ctx, const Packed& w, int64_t m, int64_t chunks, const Io& io) {
  const int64_t k = w.k, n = w.n, panels = (n + kMR - 1) / kMR;
  const int64_t full = m / kNR, blocks = full + m % kNR;  // 16-row blocks, then single rows
  const int64_t per_chunk = (panels + chunks - 1) / chunks;
  ctx.parallel_for(blocks * chunks, [&](int64_t begin, int64_t end, int tid) {
    float16_t* b = reinterpret_cast<float16_t*>(io.scratch + io.slice * tid);
    alignas(16) float16_t tile[kMR * kNR];
    for (int64_t u = begin; u < end; ++u) {
      const int64_t blk = u / chunks, p0 = (u % chunks) * per_chunk;
      const int64_t p1 = p0 + per_chunk < panels ? p0 + per_chunk : panels;
      if (blk < full) {
        const int64_t m0 = blk * kNR;
        for (int64_t c = 0; c < kNR; ++c) {
          const float* xr = io.x + (m0 + c) * k;
          for (int64_t kk = 0; kk < k; ++kk) b[kk * kNR + c] = static_cast<float16_t>(xr[kk]);
        }
        for (int64_t p = p0; p < p1; ++p) {
          f16_gemm_ukernel_8x16(static_cast<size_t>(k), w.a + p * k * kMR, b, tile);
          const int64_t nr = n - p * kMR < kMR ? n - p * kMR : kMR;
          const float32x4_t b0 = vld1q_f32(w.bias + p * kMR), b1 = vld1q_f32(w.bias + p * kMR + 4);
          alignas(16) float16_t col[kMR];
          for (int64_t c = 0; c < kNR; ++c) {  // tile column c = Y row m0 + c, features p*8..
            for (int r = 0; r < kMR; ++r) col[r] = tile[r * kNR + c];
            store8(io.y + (m0 + c) * n + p * kMR, vld1q_f16(col), b0, b1, nullptr, nr, *w.act);
          }
        }
      } else {
        const int64_t row = full * kNR + (blk - full);
        const float* xr = io.x + row * k;
        int64_t kk = 0;
        for (; kk + 8 <= k; kk += 8)
          vst1q_f16(b + kk, vcombine_f16(vcvt_f16_f32(vld1q_f32(xr + kk)), vcvt_f16_f32(vld1q_f32(xr + kk + 4))));
        for (; kk < k; ++kk) b[kk] = static_cast<float16_t>(xr[kk]);
        for (int64_t p = p0; p < p1; ++p) {
          f16_gemv_ukernel_8(static_cast<size_t>(k), w.a + p * k * kMR, b, tile);
          const int64_t nr = n - p * kMR < kMR ? n - p * kMR : kMR;
          store8(io.y + row * n + p * kMR, vld1q_f16(tile), vld1q_f32(w.bias + p * kMR),
                 vld1q_f32(w.bias + p * kMR + 4), nullptr, nr, *w.act);
        }
      }
    }
  });
}

}  // namespace f16
}  // namespace mobrt
