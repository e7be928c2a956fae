// Shared by every GEMM microkernel TU (scalar, AVX2, AVX-512, NEON).
//
// A microkernel implementation only writes full MR x NR tiles; `ukernel_any` turns it
// into a GemmUkernelFn that also handles edge tiles, by running the full kernel on a
// small aligned stack tile and copying the valid part back. Edge tiles are few (at
// most one row and one column of tiles per block), so this costs little and keeps the
// hand-written kernels free of tail code. Tiles with at most MR/2 rows (batch-1 FC,
// short M remainders) go row by row through an optional 1 x NR kernel instead, so they
// do not pay for MR rows.
//
// Everything here has internal linkage: it is compiled with per-file ISA flags and
// must not produce COMDAT symbols the linker could share with baseline code.
#pragma once
#include "gemm.h"

namespace mobrt {
namespace cpu {
namespace {

typedef void (*FullTileFn)(size_t kc, const float* a, const float* b, size_t ldb, float* c,
                           size_t ldc, int accumulate, const GemmEpilogue* ep);

// Optional 1 x NR kernel for tiles with few rows (e.g. FullyConnected at batch 1): row r
// of the tile reads a[k * a_stride] and applies the epilogue with per-row bias index r.
typedef void (*RowTileFn)(size_t kc, const float* a, size_t a_stride, const float* b, size_t ldb,
                          float* c, int accumulate, const GemmEpilogue* ep, size_t r);

template <int MR, int NR, FullTileFn Full, RowTileFn Row = nullptr>
void ukernel_any(size_t kc, const float* a, const float* b, size_t ldb, float* c, size_t ldc,
                 size_t mr, size_t nr, int accumulate, const GemmEpilogue* ep) {
  if (mr == (size_t)MR && nr == (size_t)NR) {
    Full(kc, a, b, ldb, c, ldc, accumulate, ep);
    return;
  }
  if (Row != nullptr && nr == (size_t)NR && mr * 2 <= (size_t)MR) {
    for (size_t r = 0; r < mr; ++r) Row(kc, a + r, MR, b, ldb, c + r * ldc, accumulate, ep, r);
    return;
  }
  if (nr < (size_t)NR && ldb != (size_t)NR) {
    // B read in place: its rows end after nr columns, so copy them into a zero-padded
    // panel (in chunks of 64 k steps) rather than reading past the matrix.
    alignas(64) float panel[64 * NR];
    for (size_t k0 = 0; k0 < kc; k0 += 64) {
      const size_t kn = kc - k0 < 64 ? kc - k0 : 64;
      for (size_t k = 0; k < kn; ++k)
        for (size_t j = 0; j < (size_t)NR; ++j) panel[k * NR + j] = j < nr ? b[(k0 + k) * ldb + j] : 0.f;
      const bool last = k0 + kn == kc;
      ukernel_any<MR, NR, Full, Row>(kn, a + k0 * MR, panel, NR, c, ldc, mr, nr,
                                     accumulate || k0 > 0, last ? ep : nullptr);
    }
    if (kc == 0) ukernel_any<MR, NR, Full, Row>(0, a, panel, NR, c, ldc, mr, nr, accumulate, ep);
    return;
  }
  alignas(64) float tile[MR * NR];
  alignas(64) float bias[MR > NR ? MR : NR];
  for (int i = 0; i < MR * NR; ++i) tile[i] = 0.f;
  if (accumulate) {
    for (size_t r = 0; r < mr; ++r)
      for (size_t j = 0; j < nr; ++j) tile[r * NR + j] = c[r * ldc + j];
  }
  GemmEpilogue edge;
  const GemmEpilogue* pe = nullptr;
  if (ep != nullptr) {
    edge = *ep;
    if (ep->bias_mode != BiasMode::kNone && ep->bias != nullptr) {
      size_t nb = ep->bias_mode == BiasMode::kPerRow ? mr : nr;
      for (int i = 0; i < (MR > NR ? MR : NR); ++i) bias[i] = 0.f;
      for (size_t i = 0; i < nb; ++i) bias[i] = ep->bias[i];
      edge.bias = bias;
    }
    pe = &edge;
  }
  Full(kc, a, b, ldb, tile, NR, accumulate, pe);
  for (size_t r = 0; r < mr; ++r)
    for (size_t j = 0; j < nr; ++j) c[r * ldc + j] = tile[r * NR + j];
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
