// The SpMM and SpMV microkernels of sparse_f32.h, written once against a small
// vector-traits interface and instantiated per instruction set (sparse_f32_avx2.cpp,
// sparse_f32_avx512.cpp, sparse_f32_neon.cpp; each TU compiled with its own ISA flags).
//
// Traits `V` provide: type T, lane count N, set1/load/store/add, fma(a, b, c) = a*b + c
// (fused), and load_part/store_part for the n < N floats of a column tail (SpMM); and
// for the SpMV: gather_fma(col, val, a, acc) = acc + val[0..N) * a[col[0..N)] (fused),
// kOneVectorStep (after the steps of 2 N non-zeros, one more loop of steps of N), and
// finish(acc0, acc1, col, val, n, a): the horizontal sum with the last n non-zeros.
//
// One column block (n <= MaxV * N floats) is one register tile: n / N full vectors and
// a partial one for the n % N tail, so the non-zeros are walked once per block. Per
// output row: the accumulators start at the bias, every non-zero broadcasts its value
// and FMAs one load of X's row per vector, then the residual is added and the tile
// stored. Blocks start at multiples of the block width, so the split across threads
// never changes a result.
// The loops over a tile's vectors are unrolled (pragma) so the accumulators stay in
// registers: GCC's -O2 keeps them on the stack otherwise (5x slower).
// Everything has internal linkage.
#pragma once
#include <type_traits>

#include "sparse_f32.h"

namespace mobrt {
namespace cpu {
namespace {

// Rows [r0, r1) of NV full vectors plus, when Part, one partial vector of `part` floats.
template <class V, int NV, bool Part>
inline void spmm_tile(const SparseRows& w, int64_t r0, int64_t r1, const float* x, size_t ldx,
                      size_t part, const float* bias, const float* res, float* y, size_t ldy) {
  using T = typename V::T;
  constexpr int NA = NV + (Part ? 1 : 0);
  const uint32_t* start = w.start.data();
  const int32_t* col = w.col.data();
  const float* val = w.val.data();
  for (int64_t r = r0; r < r1; ++r) {
    T acc[NA];
    const T b = V::set1(bias != nullptr ? bias[r] : 0.f);
#pragma GCC unroll 8
    for (int v = 0; v < NA; ++v) acc[v] = b;
    for (uint32_t k = start[r], e = start[r + 1]; k < e; ++k) {
      const T wv = V::set1(val[k]);
      const float* xp = x + static_cast<size_t>(col[k]) * ldx;
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[v] = V::fma(wv, V::load(xp + v * V::N), acc[v]);
      if (Part) acc[NA - 1] = V::fma(wv, V::load_part(xp + NV * V::N, part), acc[NA - 1]);
    }
    float* yr = y + static_cast<size_t>(r) * ldy;
    const float* rr = res != nullptr ? res + static_cast<size_t>(r) * ldy : nullptr;
    if (rr != nullptr) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[v] = V::add(acc[v], V::load(rr + v * V::N));
      if (Part) acc[NA - 1] = V::add(acc[NA - 1], V::load_part(rr + NV * V::N, part));
    }
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) V::store(yr + v * V::N, acc[v]);
    if (Part) V::store_part(yr + NV * V::N, acc[NA - 1], part);
  }
}

template <class V, int MaxV, int NV>
inline void spmm_tile_of(size_t full, size_t part, const SparseRows& w, int64_t r0, int64_t r1, const float* x,
                         size_t ldx, const float* bias, const float* res, float* y, size_t ldy) {
  if constexpr (NV <= MaxV) {
    if (full != NV) return spmm_tile_of<V, MaxV, NV + 1>(full, part, w, r0, r1, x, ldx, bias, res, y, ldy);
    if (part != 0) spmm_tile<V, NV, true>(w, r0, r1, x, ldx, part, bias, res, y, ldy);
    else if (NV > 0) spmm_tile<V, (NV > 0 ? NV : 1), false>(w, r0, r1, x, ldx, 0, bias, res, y, ldy);
  }
}

// SpmmFn (sparse_f32.h) over one block of n <= MaxV * N columns, in one pass over the
// non-zeros: n / N full vectors and the n % N tail in a partial one.
template <class V, int MaxV>
void spmm_simd(const SparseRows& w, int64_t r0, int64_t r1, const float* x, size_t ldx, size_t n,
               const float* bias, const float* res, float* y, size_t ldy) {
  for (size_t j = 0; j < n; j += MaxV * V::N) {  // one iteration for the drivers' blocks
    const size_t nj = n - j < MaxV * V::N ? n - j : MaxV * V::N;
    spmm_tile_of<V, MaxV, 0>(nj / V::N, nj % V::N, w, r0, r1, x + j, ldx, bias, res ? res + j : nullptr, y + j, ldy);
  }
}

// SpmvFn (sparse_f32.h): per output row r and row i of A, y = bias + the non-zeros of
// row r dotted with A's row, gathered N at a time into two accumulators (2 N per step),
// then (kOneVectorStep) N at a time into the first, the rest in V::finish.
template <class V>
void spmv_simd(const SparseRows& w, int64_t r0, int64_t r1, const float* a, size_t lda, size_t m,
               const float* bias, float* y, size_t ldy) {
  using T = typename V::T;
  constexpr uint32_t N = static_cast<uint32_t>(V::N);
  const uint32_t* start = w.start.data();
  const int32_t* col = w.col.data();
  const float* val = w.val.data();
  for (int64_t r = r0; r < r1; ++r) {
    const uint32_t s = start[r], e = start[r + 1];
    for (size_t i = 0; i < m; ++i) {
      const float* ai = a + i * lda;
      T acc0 = V::set1(0.f), acc1 = V::set1(0.f);
      uint32_t k = s;
      for (; k + 2 * N <= e; k += 2 * N) {
        acc0 = V::gather_fma(col + k, val + k, ai, acc0);
        acc1 = V::gather_fma(col + k + N, val + k + N, ai, acc1);
      }
      if constexpr (V::kOneVectorStep)
        for (; k + N <= e; k += N) acc0 = V::gather_fma(col + k, val + k, ai, acc0);
      y[i * ldy + static_cast<size_t>(r)] =
          (bias != nullptr ? bias[r] : 0.f) + V::finish(acc0, acc1, col + k, val + k, e - k, ai);
    }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
