// Interior output columns of a windowed row kernel (depthwise 3x3, pooling): shared by
// f32/dwconv_f32.cpp and f32/pool_f32.cpp.
#pragma once
#include <algorithm>
#include <cstdint>

namespace mobrt {
namespace cpu {
namespace {

// Output columns [lo, hi) whose window lies inside the input row, with one float of
// slack after the last tap (stride-2 vector loads read pairs): those run vectorized,
// straight from the input; the border columns outside run through scalar code.
void interior_cols(int64_t iw, int64_t ow, int64_t k_extent, int64_t s, int64_t pl, int64_t* lo,
                   int64_t* hi) {
  *lo = std::min(ow, (pl + s - 1) / s);
  const int64_t last = iw - 1 - (k_extent - 1) - (s == 2 ? 1 : 0) + pl;  // max of ox*s
  *hi = last < 0 ? *lo : std::max(*lo, std::min(ow, last / s + 1));
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
