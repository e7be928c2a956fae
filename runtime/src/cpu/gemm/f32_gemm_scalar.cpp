// f32_gemm_ukernel_4x8__scalar: the portable microkernel (any CPU, any compiler).
// Same contract as the SIMD ones; plain loops over a 4 x 8 register tile.
#include "ukernel_common.h"

namespace mobrt {
namespace cpu {
namespace {

constexpr int kMr = 4;
constexpr int kNr = 8;

void gemm_full_4x8(size_t kc, const float* a, const float* b, size_t ldb, float* c, size_t ldc,
                   int accumulate, const GemmEpilogue* ep) {
  float acc[kMr][kNr] = {};
  for (size_t k = 0; k < kc; ++k) {
    for (int r = 0; r < kMr; ++r)
      for (int j = 0; j < kNr; ++j) acc[r][j] += a[r] * b[j];
    a += kMr;
    b += ldb;
  }
  for (int r = 0; r < kMr; ++r) {
    for (int j = 0; j < kNr; ++j) {
      float v = acc[r][j];
      if (accumulate) v += c[r * ldc + j];
      if (ep != nullptr) {
        if (ep->bias_mode == BiasMode::kPerRow) v += ep->bias[r];
        if (ep->bias_mode == BiasMode::kPerCol) v += ep->bias[j];
        v = v < ep->min ? ep->min : v;
        v = v > ep->max ? ep->max : v;
      }
      c[r * ldc + j] = v;
    }
  }
}

}  // namespace

extern const GemmUkernel kF32GemmScalar = {"f32_gemm_ukernel_4x8__scalar",
                                           &ukernel_any<kMr, kNr, gemm_full_4x8>, kMr, kNr};

}  // namespace cpu
}  // namespace mobrt
