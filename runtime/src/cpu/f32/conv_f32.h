// fp32 Conv2D drivers over one instruction set's F32Kernels table: im2col + packed GEMM
// (1x1 as a direct GEMM, stride 1 with many channels as shift-and-accumulate,
// conv_f32.cpp) and depthwise (3x3 s1/s2 specialized, dwconv_f32.cpp). NCHW, contiguous.
// Core-free: the op kernel (conv_f32_kernel.h) and the standalone kernel tests call them.
#pragma once
#include <cstddef>
#include <cstdint>

#include "f32_kernels.h"

namespace mobrt {
namespace cpu {

// ---- Conv2D ------------------------------------------------------------------------------
struct Conv2dShape {
  int64_t n = 1, cin = 0, ih = 0, iw = 0;
  int64_t cout = 0, kh = 1, kw = 1;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
  int64_t group = 1;
  int64_t oh = 0, ow = 0;  // fill with conv2d_output_dims or from the graph
};
void conv2d_output_dims(Conv2dShape* s);
bool conv2d_is_pointwise(const Conv2dShape& s);  // 1x1, stride 1, no padding
bool conv2d_is_depthwise(const Conv2dShape& s);  // group == cin == cout

// Weights W[cout, cin/group, kh, kw] packed per group as GEMM A panels (once, at prepare).
size_t conv2d_packed_weights_floats(const F32Kernels& ks, const Conv2dShape& s);
void conv2d_pack_weights(const F32Kernels& ks, const Conv2dShape& s, const float* w,
                         float* packed);
// Scratch (floats) conv2d_run needs: the packed im2col panel of one group of one image.
size_t conv2d_scratch_floats(const F32Kernels& ks, const Conv2dShape& s);
// residual (optional, the shape of y, may equal y): y = act(conv(x) + bias + residual).
void conv2d_run(const F32Kernels& ks, const Conv2dShape& s, const float* packed_w,
                const float* bias, const Activation& act, const float* x, float* y,
                float* scratch, const TaskRunner* runner, const float* residual = nullptr);

// One image/group's (virtual) im2col matrix, the BPacker context of F32Kernels::im2col_pack.
struct Im2col {
  const Conv2dShape* s;
  const float* x;  // this image, first channel of this group
  int64_t cols;    // oh * ow
  int64_t tap_major_cin = 0;  // 0: rows are (channel, tap); else (tap, channel), cin_g given
};

// Depthwise: W[c, 1, kh, kw], any kernel/stride/dilation; 3x3 with stride 1 or 2 and
// dilation 1 takes the ISA's specialized kernel.
void dwconv2d_run(const F32Kernels& ks, const Conv2dShape& s, const float* w, const float* bias,
                  const Activation& act, const float* x, float* y, const TaskRunner* runner,
                  const float* residual = nullptr);
// y[i] = act(y[i] + r[i]) over n floats (r may equal y): a fused residual added after
// a kernel that could not take it in its epilogue.
void add_residual_act(const F32Kernels& ks, float* y, const float* r, int64_t n,
                      const Activation& act, const TaskRunner* runner);

}  // namespace cpu
}  // namespace mobrt
