// Max/Average pooling and global average pooling drivers (pool_f32.h): one task per
// plane; interior columns go through the instruction set's pooling row kernel, border
// columns (and the average divisor's corrections) through scalar code.
#include <algorithm>
#include <vector>

#include "pool_f32.h"
#include "window_cols.h"

namespace mobrt {
namespace cpu {

namespace {

constexpr float kLowest = -__builtin_inff();
struct PoolCtx {
  const F32Kernels* ks;
  const Pool2dShape* s;
  const float* x;
  float* y;
  bool max;
};

void pool_plane(void* vctx, int64_t plane) {
  const PoolCtx& c = *static_cast<const PoolCtx*>(vctx);
  const Pool2dShape& s = *c.s;
  const float* x = c.x + plane * s.ih * s.iw;
  float* y = c.y + plane * s.oh * s.ow;
  int64_t lo, hi;
  interior_cols(s.iw, s.ow, s.kw, s.sw, s.pl, &lo, &hi);
  const float* rows[64];
  std::vector<const float*> big;
  const float** r = rows;
  if (s.kh > 64) {
    big.resize(size_t(s.kh));
    r = big.data();
  }
  // Average divisor: window clipped to the counted area (the input, or the input plus
  // the declared pads when count_include_pad; ceil-mode overhang never counts).
  const int64_t lo_h = s.count_include_pad ? -s.pt : 0, hi_h = s.count_include_pad ? s.ih + s.pb : s.ih;
  const int64_t lo_w = s.count_include_pad ? -s.pl : 0, hi_w = s.count_include_pad ? s.iw + s.pr : s.iw;
  const float full = float(s.kh * s.kw);
  for (int64_t oy = 0; oy < s.oh; ++oy) {
    const int64_t y0 = oy * s.sh - s.pt;
    int64_t nrows = 0;
    for (int64_t i = 0; i < s.kh; ++i)
      if (y0 + i >= 0 && y0 + i < s.ih) r[nrows++] = x + (y0 + i) * s.iw;
    float* yr = y + oy * s.ow;
    if (hi > lo) {
      const float* rr[64];
      const float** rp = nrows <= 64 ? rr : r;
      for (int64_t i = 0; i < nrows; ++i) rp[i] = r[i] + lo * s.sw - s.pl;
      if (c.max)
        c.ks->maxpool_row(rp, size_t(nrows), size_t(s.kw), size_t(s.sw), yr + lo, size_t(hi - lo));
      else
        c.ks->avgpool_row(rp, size_t(nrows), size_t(s.kw), size_t(s.sw), yr + lo, size_t(hi - lo), 1.f / full);
      if (nrows > 64)  // restore (rp aliased r)
        for (int64_t i = 0; i < nrows; ++i) r[i] -= lo * s.sw - s.pl;
    }
    for (int64_t ox = 0; ox < s.ow; ++ox) {  // border columns, bounds-checked
      if (ox == lo) ox = hi;
      if (ox >= s.ow) break;
      const int64_t x0 = ox * s.sw - s.pl;
      float acc = c.max ? kLowest : 0.f;
      for (int64_t i = 0; i < nrows; ++i)
        for (int64_t j = std::max<int64_t>(0, -x0); j < s.kw && x0 + j < s.iw; ++j) {
          const float v = r[i][x0 + j];
          if (c.max) {  // max without a data-dependent branch; NaN (rare, predictable) sticks
            acc = std::max(acc, v);
            if (v != v) acc = v;
          } else {
            acc += v;
          }
        }
      yr[ox] = c.max ? acc : acc * (1.f / full);
    }
    if (c.max) {
      if (nrows == 0)
        for (int64_t ox = 0; ox < s.ow; ++ox) yr[ox] = -__builtin_inff();
      continue;
    }
    const int64_t ch = std::min(y0 + s.kh, hi_h) - std::max(y0, lo_h);
    for (int64_t ox = 0; ox < s.ow; ++ox) {
      const int64_t x0 = ox * s.sw - s.pl;
      const int64_t cw = std::min(x0 + s.kw, hi_w) - std::max(x0, lo_w);
      const float cnt = float(ch * cw);
      if (cnt != full) yr[ox] = cnt > 0 ? yr[ox] * (full / cnt) : 0.f;
    }
  }
}

struct GapCtx {
  const F32Kernels* ks;
  const float* x;
  float* y;
  int64_t hw;
};
void gap_plane(void* vctx, int64_t plane) {
  const GapCtx& c = *static_cast<const GapCtx*>(vctx);
  c.y[plane] = c.ks->sum(c.x + plane * c.hw, c.hw) / float(c.hw);
}

}  // namespace

void maxpool2d_run(const F32Kernels& ks, const Pool2dShape& s, const float* x, float* y,
                   const TaskRunner* runner) {
  PoolCtx c{&ks, &s, x, y, true};
  run_tasks(runner, s.n * s.c, &c, pool_plane);
}

void avgpool2d_run(const F32Kernels& ks, const Pool2dShape& s, const float* x, float* y,
                   const TaskRunner* runner) {
  PoolCtx c{&ks, &s, x, y, false};
  run_tasks(runner, s.n * s.c, &c, pool_plane);
}

void global_avgpool_run(const F32Kernels& ks, int64_t planes, int64_t hw, const float* x,
                        float* y, const TaskRunner* runner) {
  GapCtx c{&ks, x, y, hw};
  run_tasks(runner, planes, &c, gap_plane);
}

}  // namespace cpu
}  // namespace mobrt
