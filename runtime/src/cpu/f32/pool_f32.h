// fp32 Max/Average/GlobalAverage pooling (NCHW) over one instruction set's F32Kernels
// table (pool_f32.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "f32_kernels.h"

namespace mobrt {
namespace cpu {

// ---- Pooling -------------------------------------------------------------------------------
struct Pool2dShape {
  int64_t n = 1, c = 0, ih = 0, iw = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;  // pb/pr may include ceil_mode's extra
  int64_t oh = 0, ow = 0;
  bool count_include_pad = false;
};
void maxpool2d_run(const F32Kernels& ks, const Pool2dShape& s, const float* x, float* y,
                   const TaskRunner* runner);
void avgpool2d_run(const F32Kernels& ks, const Pool2dShape& s, const float* x, float* y,
                   const TaskRunner* runner);
void global_avgpool_run(const F32Kernels& ks, int64_t planes, int64_t hw, const float* x,
                        float* y, const TaskRunner* runner);

}  // namespace cpu
}  // namespace mobrt
