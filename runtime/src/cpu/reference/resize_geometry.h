// resize_geometry.h: Resize's parameters and per-axis taps (resize.cpp), shared
// by the float kernel and the quantized one (quant_ops.cpp) so both sample the
// same source coordinates with the same weights.
#pragma once

#include <string>
#include <vector>

#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {

struct ResizeP {
  Shape out;
  std::vector<double> scale;
  std::vector<int> axes;
  std::vector<double> roi_start, roi_end;  // per dim (tf_crop_and_resize)
  std::string mode, ctm, nearest;
  bool antialias = false, exclude_outside = false;
  double cubic_a = -0.75, extrapolation = 0;
};

// Taps of every output index along one axis: `ntaps` (index, weight) pairs
// each, and whether the output is outside the input (tf_crop_and_resize).
struct AxisTaps {
  int ntaps = 1;
  std::vector<int64_t> idx;
  std::vector<double> w;
  std::vector<char> outside;
};

// Attributes, scales/sizes/roi and the output shape (input 0 must be float32:
// the quantized kernel passes a float32 view of its integer input).
Status resize_params(const KernelContext& ctx, ResizeP* p);
AxisTaps axis_taps(const ResizeP& p, int d, int64_t n_in, int64_t n_out);

}  // namespace ref
}  // namespace mobrt
