// im2col fused with GEMM B packing, for Conv2D (NCHW). Header-only so each instruction
// set's TU (f32/ops_scalar.cpp, x86/ops_avx2.cpp, x86/ops_avx512.cpp, neon/ops_neon.cpp)
// compiles the copy loops with its own vector width; reached through F32Kernels::im2col_pack.
// Internal linkage and no standard-library templates: this code is compiled with ISA
// flags and must not leave COMDAT symbols the linker could share with baseline code.
//
// The GEMM driver asks for rows [k0, k0 + kc) x columns [j0, j0 + nc) of the (virtual)
// im2col matrix of one image and group: row kk is (input channel, ky, kx), column j an
// output position; out-of-image taps are zero. Three layouts: 1x1 (rows are the input),
// stride 1 with output width == input width (rows are shifted copies of the plane), and
// the general case (runs of columns sharing an output row, strided reads).
#pragma once
#include "conv_f32.h"

namespace mobrt {
namespace cpu {
namespace {

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }


// Gathers rows [k0, k0 + kc) x output columns [j0, j0 + nc) of the (virtual) im2col
// matrix into packed panels. Row kk is (input channel, ky, kx); column j is an output
// position. Out-of-image taps are zero.
// Rows [k0, k0 + kc) (kc <= 256) into panels `pstride` floats apart.
inline void im2col_rows(const Im2col& c, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr,
                        float* dst, size_t pstride) {
  const Conv2dShape& s = *c.s;
  const int64_t khw = s.kh * s.kw, hw = s.ih * s.iw;
  // Row kk of the im2col matrix is (input channel, ky, kx): decompose once per call.
  int64_t kci[256], kdy[256], kdx[256];
  for (size_t kk = 0; kk < kc; ++kk) {
    const int64_t row = int64_t(k0 + kk);
    const int64_t ci = c.tap_major_cin ? row % c.tap_major_cin : row / khw;
    const int64_t tap = c.tap_major_cin ? row / c.tap_major_cin : row % khw;
    kci[kk] = ci;
    kdy[kk] = (tap / s.kw) * s.dh - s.pt;
    kdx[kk] = (tap % s.kw) * s.dw - s.pl;
  }
  const bool pointwise = conv2d_is_pointwise(s);
  const bool same_width = s.sh == 1 && s.sw == 1 && s.ow == s.iw;
  for (size_t q = 0; q * nr < nc; ++q, dst += pstride) {
    const int64_t jq = int64_t(j0 + q * nr);
    const int64_t ncols = imin(int64_t(nr), c.cols - jq);
    if (pointwise) {
      for (size_t kk = 0; kk < kc; ++kk) {
        {
          const float* src = c.x + int64_t(k0 + kk) * hw + jq;
          for (int64_t j = 0; j < ncols; ++j) dst[kk * nr + j] = src[j];
        }
        for (int64_t j = ncols; j < int64_t(nr); ++j) dst[kk * nr + j] = 0.f;
      }
      continue;
    }
    if (same_width) {
      // Stride 1, output as wide as the input: row (ci, dy, dx) is the flattened input
      // plane shifted by dy*iw + dx. Copy the panel's slice in one piece (zero outside
      // the plane), then zero the columns whose tap wrapped around a row edge: the
      // first -dx (dx < 0) or last dx (dx > 0) columns of each output row.
      const int64_t first_row_start = (s.ow - jq % s.ow) % s.ow;  // panel column with ox == 0
      for (size_t kk = 0; kk < kc; ++kk) {
        const float* plane = c.x + kci[kk] * hw;
        const int64_t dx = kdx[kk];
        const int64_t f0 = jq + kdy[kk] * s.iw + dx;
        float* d = dst + kk * nr;
        const int64_t a = imin(ncols, imax(0, -f0));
        const int64_t b = imax(a, imin(ncols, hw - f0));
        for (int64_t j = 0; j < a; ++j) d[j] = 0.f;
        for (int64_t j = a; j < b; ++j) d[j] = plane[f0 + j];
        for (int64_t j = b; j < int64_t(nr); ++j) d[j] = 0.f;
        if (dx == 0) continue;
        const int64_t lo = dx < 0 ? 0 : -dx, hi = dx < 0 ? -dx : 0;  // bad span around a row start
        for (int64_t r = first_row_start - s.ow; r + lo < ncols; r += s.ow)
          for (int64_t j = imax(0, r + lo); j < imin(ncols, r + hi); ++j) d[j] = 0.f;
      }
      continue;
    }
    // General geometry: split the panel's columns into runs that share an output row;
    // within a run the taps of one row kk are evenly spaced (stride sw) in one input row.
    struct Run { int64_t j, len, oy, ox; } runs[66];  // nr <= 64
    int nruns = 0;
    for (int64_t j = 0; j < ncols;) {
      const int64_t oy = (jq + j) / s.ow, ox = (jq + j) % s.ow;
      const int64_t len = imin(ncols - j, s.ow - ox);
      runs[nruns++] = {j, len, oy, ox};
      j += len;
    }
    for (size_t kk = 0; kk < kc; ++kk) {
      const float* plane = c.x + kci[kk] * hw;
      float* d = dst + kk * nr;
      for (int r = 0; r < nruns; ++r) {
        const Run& run = runs[r];
        float* dr = d + run.j;
        const int64_t iy = run.oy * s.sh + kdy[kk];
        if (iy < 0 || iy >= s.ih) {
          for (int64_t t = 0; t < run.len; ++t) dr[t] = 0.f;
          continue;
        }
        const float* src = plane + iy * s.iw;
        const int64_t ix0 = run.ox * s.sw + kdx[kk];
        // Columns t in [lo, hi) read inside the row: 0 <= ix0 + t*sw < iw.
        const int64_t lo = ix0 >= 0 ? 0 : imin(run.len, (-ix0 + s.sw - 1) / s.sw);
        const int64_t hi = ix0 >= s.iw ? lo : imax(lo, imin(run.len, (s.iw - 1 - ix0) / s.sw + 1));
        for (int64_t t = 0; t < lo; ++t) dr[t] = 0.f;
        if (s.sw == 1) {
          for (int64_t t = lo; t < hi; ++t) dr[t] = src[ix0 + t];
        } else {
          for (int64_t t = lo; t < hi; ++t) dr[t] = src[ix0 + t * s.sw];
        }
        for (int64_t t = hi; t < run.len; ++t) dr[t] = 0.f;
      }
      for (int64_t j = ncols; j < int64_t(nr); ++j) d[j] = 0.f;
    }
  }
}

// BPacker entry point: splits kc into chunks of at most 256 rows.
inline void im2col_pack(const void* vctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr,
                 float* dst) {
  const Im2col& c = *static_cast<const Im2col*>(vctx);
  for (size_t k = 0; k < kc; k += 256) {
    const size_t kn = kc - k < 256 ? kc - k : 256;
    im2col_rows(c, k0 + k, kn, j0, nc, nr, dst + k * nr, kc * nr);
  }
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
