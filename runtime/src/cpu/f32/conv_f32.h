// Layer-level fp32 kernels built on the per-ISA tables (gemm.h): Conv2D (im2col +
// packed GEMM, 1x1 as a direct GEMM), depthwise Conv2D (3x3 s1/s2 specialized),
// FullyConnected, Max/Average pooling, broadcast element-wise binary ops, unary
// activations and Softmax. All tensors are NCHW, contiguous. These are the functions the
// kernel-table entries (register_*.cpp) and the standalone kernel tests call.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gemm.h"

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
size_t conv2d_packed_weights_floats(const IsaKernels& ks, const Conv2dShape& s);
void conv2d_pack_weights(const IsaKernels& ks, const Conv2dShape& s, const float* w,
                         float* packed);
// Scratch (floats) conv2d_run needs: the packed im2col panel of one group of one image.
size_t conv2d_scratch_floats(const IsaKernels& ks, const Conv2dShape& s);
// residual (optional, the shape of y, may equal y): y = act(conv(x) + bias + residual).
void conv2d_run(const IsaKernels& ks, const Conv2dShape& s, const float* packed_w,
                const float* bias, const Activation& act, const float* x, float* y,
                float* scratch, const TaskRunner* runner, const float* residual = nullptr);

// One image/group's (virtual) im2col matrix, the BPacker context of IsaKernels::im2col_pack.
struct Im2col {
  const Conv2dShape* s;
  const float* x;  // this image, first channel of this group
  int64_t cols;    // oh * ow
  int64_t tap_major_cin = 0;  // 0: rows are (channel, tap); else (tap, channel), cin_g given
};

// Depthwise: W[c, 1, kh, kw], any kernel/stride/dilation; 3x3 with stride 1 or 2 and
// dilation 1 takes the ISA's specialized kernel.
void dwconv2d_run(const IsaKernels& ks, const Conv2dShape& s, const float* w, const float* bias,
                  const Activation& act, const float* x, float* y, const TaskRunner* runner,
                  const float* residual = nullptr);
// y[i] = act(y[i] + r[i]) over n floats (r may equal y): a fused residual added after
// a kernel that could not take it in its epilogue.
void add_residual_act(const IsaKernels& ks, float* y, const float* r, int64_t n,
                      const Activation& act, const TaskRunner* runner);

// ---- FullyConnected: y[b, o] = act(x[b, :] . W[o, :] + bias[o]) ------------------------
size_t fc_packed_weights_floats(const IsaKernels& ks, int64_t in, int64_t out);
void fc_pack_weights(const IsaKernels& ks, int64_t in, int64_t out, const float* w,
                     bool w_is_out_by_in, float* packed);
size_t fc_scratch_floats(const IsaKernels& ks, int64_t batch, int64_t in);
void fc_run(const IsaKernels& ks, int64_t batch, int64_t in, int64_t out, const float* x,
            const float* packed_w, const float* bias, const Activation& act, float* y,
            float* scratch, const TaskRunner* runner);

// ---- Pooling -------------------------------------------------------------------------------
struct Pool2dShape {
  int64_t n = 1, c = 0, ih = 0, iw = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;  // pb/pr may include ceil_mode's extra
  int64_t oh = 0, ow = 0;
  bool count_include_pad = false;
};
void maxpool2d_run(const IsaKernels& ks, const Pool2dShape& s, const float* x, float* y,
                   const TaskRunner* runner);
void avgpool2d_run(const IsaKernels& ks, const Pool2dShape& s, const float* x, float* y,
                   const TaskRunner* runner);
void global_avgpool_run(const IsaKernels& ks, int64_t planes, int64_t hw, const float* x,
                        float* y, const TaskRunner* runner);

// ---- Element-wise ----------------------------------------------------------------------------
// Numpy broadcasting of a (rank ra) and b (rank rb) into y (rank ry = max); act after op.
void binary_run(const IsaKernels& ks, BinOp op, const int64_t* a_dims, int ra, const float* a,
                const int64_t* b_dims, int rb, const float* b, float* y, const Activation& act,
                const TaskRunner* runner);
void activation_run(const IsaKernels& ks, const Activation& act, const float* x, float* y,
                    int64_t n, const TaskRunner* runner);

// ---- Softmax over axis: x viewed as [outer, len, inner] ------------------------------------
void softmax_run(const IsaKernels& ks, int64_t outer, int64_t len, int64_t inner, bool log,
                 const float* x, float* y, const TaskRunner* runner);

}  // namespace cpu
}  // namespace mobrt
