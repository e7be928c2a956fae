// The SpMM microkernel of sparse_f32.h, written once against a small vector-traits
// interface and instantiated per instruction set (sparse_f32_avx2.cpp,
// sparse_f32_avx512.cpp, sparse_f32_neon.cpp; each TU compiled with its own ISA flags).
//
// Traits `V` provide: type T, lane count N, set1/load/store/add, fma(a, b, c) = a*b + c
// (fused), and load_part/store_part for the n < N floats of a column tail.
//
// One column block (n <= MaxV * N floats): the widest register tile that fits (MaxV,
// then MaxV/2, ... 1 vectors), then a partial vector. Per tile and output row: the
// accumulators start at the bias, every non-zero broadcasts its value and FMAs one
// load of X's row per vector, then the residual is added and the tile stored. The
// tile a column falls in depends only on its offset in the block, and blocks start at
// multiples of the block width, so the split across threads never changes a result.
// Everything has internal linkage.
#pragma once
#include <type_traits>

#include "sparse_f32.h"

namespace mobrt {
namespace cpu {
namespace {

template <class V, int NV, bool Part>
inline void spmm_tile(const SparseRows& w, int64_t r0, int64_t r1, const float* x, size_t ldx,
                      size_t part, const float* bias, const float* res, float* y, size_t ldy) {
  using T = typename V::T;
  const uint32_t* start = w.start.data();
  const int32_t* col = w.col.data();
  const float* val = w.val.data();
  for (int64_t r = r0; r < r1; ++r) {
    T acc[NV];
    const T b = V::set1(bias != nullptr ? bias[r] : 0.f);
    for (int v = 0; v < NV; ++v) acc[v] = b;
    for (uint32_t k = start[r], e = start[r + 1]; k < e; ++k) {
      const T wv = V::set1(val[k]);
      const float* xp = x + static_cast<size_t>(col[k]) * ldx;
      if (Part) {
        acc[0] = V::fma(wv, V::load_part(xp, part), acc[0]);
      } else {
        for (int v = 0; v < NV; ++v) acc[v] = V::fma(wv, V::load(xp + v * V::N), acc[v]);
      }
    }
    float* yr = y + static_cast<size_t>(r) * ldy;
    if (Part) {
      if (res != nullptr) acc[0] = V::add(acc[0], V::load_part(res + static_cast<size_t>(r) * ldy, part));
      V::store_part(yr, acc[0], part);
    } else {
      if (res != nullptr)
        for (int v = 0; v < NV; ++v) acc[v] = V::add(acc[v], V::load(res + static_cast<size_t>(r) * ldy + v * V::N));
      for (int v = 0; v < NV; ++v) V::store(yr + v * V::N, acc[v]);
    }
  }
}

// SpmmFn (sparse_f32.h) with blocks of MaxV vectors (MaxV a power of two <= 8).
template <class V, int MaxV>
void spmm_simd(const SparseRows& w, int64_t r0, int64_t r1, const float* x, size_t ldx, size_t n,
               const float* bias, const float* res, float* y, size_t ldy) {
  size_t j = 0;
  auto tile = [&](auto nv) {
    constexpr int NV = decltype(nv)::value;
    if (NV > MaxV) return;
    for (; j + NV * V::N <= n; j += NV * V::N)
      spmm_tile<V, NV, false>(w, r0, r1, x + j, ldx, 0, bias, res ? res + j : nullptr, y + j, ldy);
  };
  tile(std::integral_constant<int, 8>());
  tile(std::integral_constant<int, 4>());
  tile(std::integral_constant<int, 2>());
  tile(std::integral_constant<int, 1>());
  if (j < n) spmm_tile<V, 1, true>(w, r0, r1, x + j, ldx, n - j, bias, res ? res + j : nullptr, y + j, ldy);
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
