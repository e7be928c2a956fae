// Portable sparse fp32 kernels (sparse_f32.h): the specification the SIMD sets are tested
// against (through the numpy reference), in the same order of operations: bias, then the
// non-zeros in input order, then the residual. Baseline flags, every target.
#include <cmath>

#include "sparse_f32.h"

namespace mobrt {
namespace cpu {
namespace {

void spmm_scalar(const SparseRows& w, int64_t r0, int64_t r1, const float* x, size_t ldx, size_t n,
                 const float* bias, const float* res, float* y, size_t ldy) {
  const uint32_t* start = w.start.data();
  const int32_t* col = w.col.data();
  const float* val = w.val.data();
  float acc[64];
  for (int64_t r = r0; r < r1; ++r) {
    for (size_t j0 = 0; j0 < n; j0 += 64) {
      const size_t nj = n - j0 < 64 ? n - j0 : 64;
      const float b = bias != nullptr ? bias[r] : 0.f;
      for (size_t j = 0; j < nj; ++j) acc[j] = b;
      for (uint32_t k = start[r], e = start[r + 1]; k < e; ++k) {
        const float v = val[k];
        const float* xp = x + static_cast<size_t>(col[k]) * ldx + j0;
        for (size_t j = 0; j < nj; ++j) acc[j] += v * xp[j];
      }
      float* yr = y + static_cast<size_t>(r) * ldy + j0;
      const float* rr = res != nullptr ? res + static_cast<size_t>(r) * ldy + j0 : nullptr;
      for (size_t j = 0; j < nj; ++j) yr[j] = rr != nullptr ? acc[j] + rr[j] : acc[j];
    }
  }
}

void spmv_scalar(const SparseRows& w, int64_t r0, int64_t r1, const float* a, size_t lda, size_t m,
                 const float* bias, float* y, size_t ldy) {
  for (int64_t r = r0; r < r1; ++r)
    for (size_t i = 0; i < m; ++i) {
      const float* ai = a + i * lda;
      float acc = 0.f;
      for (uint32_t k = w.start[r], e = w.start[r + 1]; k < e; ++k) acc += w.val[k] * ai[w.col[k]];
      y[i * ldy + static_cast<size_t>(r)] = (bias != nullptr ? bias[r] : 0.f) + acc;
    }
}

bool any_nonfinite_scalar(const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return true;
  return false;
}

}  // namespace

const SparseF32Kernels kSparseF32Scalar = {
    "scalar", &spmm_scalar, &spmv_scalar, &kF32Scalar, &any_nonfinite_scalar, 64, 2, kSparseNever, kSparseNever, kSparseNever,
};

}  // namespace cpu
}  // namespace mobrt
