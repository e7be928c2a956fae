// q8_pool.cpp: int8/uint8 MaxPool, AveragePool (both rules), GlobalAveragePool (both
// rules) and GlobalMaxPool; 1-D and 2-D windows with any kernel, stride, dilation, pads,
// ceil_mode and count_include_pad (window.h's geometry). Bit for bit the reference
// (pool.cpp's integer MaxPool; quant_ops.cpp run_avg_pool / run_global_pool).
//
// A window pool runs one output row of one (batch, channel) plane at a time: the
// instruction set's vector row function folds the window's input rows (those inside the
// input) into one padded row (MaxPool: max, the padding columns holding the dtype's lowest
// value, which never wins and is the reference's start value; AveragePool: int32 sums of
// x - zp, the padding columns 0), then each output takes its kernel columns of that row
// (kw taps, with stride and dilation; MaxPool's stride 1 and 2 as vector maxes of shifted
// rows, stride 2 after splitting the row into its even and odd elements). AveragePool
// divides by window_count with rounded_mean as the reference does; under the float32 rule
// it sums float32 products per output column in the reference's tap order
// (avgpool_float32_run). GlobalAveragePool: the instruction set's sum of a plane, then the
// reference's per-channel rule. Not covered (supports() false): 3-D windows, MaxPool's
// Indices output.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/int8/q8_elementwise.h"
#include "cpu/reference/quant_params.h"
#include "cpu/reference/window.h"

namespace mobrt {
namespace q8 {

namespace rq = ::mobrt::ref::q8;
namespace fb = ::mobconv::formats::fb;

namespace {

bool window_pool_shape_ok(const KernelContext& ctx) {
  if (ctx.num_inputs < 1 || ctx.num_outputs < 1) return false;
  const TensorView &x = ctx.inputs[0], &y = ctx.outputs[0];
  if (x.dtype != DType::I8 && x.dtype != DType::U8) return false;
  if (y.dtype != x.dtype) return false;
  return x.rank == 3 || x.rank == 4;
}

Status pool_window(const KernelContext& ctx, ref::Window* w) {
  return ref::make_window(ctx, ctx.inputs[0], ctx.attrs->get_ints("kernel_shape"),
                          ctx.attrs->get_int("ceil_mode", 0) != 0, w);
}

// Width of the padded row: every tap column of every output, from input column -pb.
int64_t padded_width(const ref::Window& w) { return (w.out[2] - 1) * w.s[2] + (w.k[2] - 1) * w.d[2] + 1; }

// Bytes per thread: AveragePool's int32 row, or MaxPool's byte row with its even and odd
// halves (wp + 2 (wp / 2 + 1) <= 4 wp bytes).

constexpr size_t kAlign = 64;
size_t row_stride(const ref::Window& w) {
  // the float32 AveragePool: byte row (wp), its even/odd halves (wp + 2), float sums (4 OW <= 4 wp)
  size_t bytes = static_cast<size_t>(padded_width(w)) * 6 + 8;
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

// Scratch per thread: the padded row, then (stride 2) its even and odd elements.
template <typename T>
void maxpool_plane(const Q8ElemIsa& isa, const ref::Window& w, const T* x, T* y, T* row, bool u8) {
  const int64_t H = w.in[1], W = w.in[2], OH = w.out[1], OW = w.out[2];
  const int64_t wp = padded_width(w), pb = w.pb[2];
  const T lowest = std::numeric_limits<T>::lowest();
  const int64_t c0 = std::min(pb, wp), c1 = std::min(pb + W, wp);  // interior columns [c0, c1)
  for (int64_t j = 0; j < wp; ++j) row[j] = lowest;
  for (int64_t oh = 0; oh < OH; ++oh) {
    bool first = true;
    for (int64_t k = 0; k < w.k[1]; ++k) {
      const int64_t ih = oh * w.s[1] + k * w.d[1] - w.pb[1];
      if (ih < 0 || ih >= H || c1 <= c0) continue;
      const T* src = x + ih * W + (c0 - pb);
      if (first) std::memcpy(row + c0, src, static_cast<size_t>(c1 - c0) * sizeof(T));
      else isa.max_row(row + c0, src, static_cast<size_t>(c1 - c0), u8);
      first = false;
    }
    if (first)
      for (int64_t j = c0; j < c1; ++j) row[j] = lowest;
    T* out = y + oh * OW;
    if (w.s[2] == 1) {
      std::memcpy(out, row, static_cast<size_t>(OW) * sizeof(T));
      for (int64_t k = 1; k < w.k[2]; ++k) isa.max_row(out, row + k * w.d[2], static_cast<size_t>(OW), u8);
    } else if (w.s[2] == 2) {
      // tap t of output j is row[2 j + t]: even[j + t / 2] or odd[j + (t - 1) / 2]
      T* even = row + wp;
      T* odd = even + wp / 2 + 1;
      isa.deinterleave2(row, static_cast<size_t>(wp / 2), even, odd);
      if (wp % 2) even[wp / 2] = row[wp - 1];
      std::memcpy(out, even, static_cast<size_t>(OW) * sizeof(T));
      for (int64_t k = 1; k < w.k[2]; ++k) {
        const int64_t t = k * w.d[2];
        isa.max_row(out, t % 2 ? odd + (t - 1) / 2 : even + t / 2, static_cast<size_t>(OW), u8);
      }
    } else {
      for (int64_t ow = 0; ow < OW; ++ow) {
        const T* r = row + ow * w.s[2];
        T m = r[0];
        for (int64_t k = 1; k < w.k[2]; ++k) m = std::max(m, r[k * w.d[2]]);
        out[ow] = m;
      }
    }
  }
}

}  // namespace

size_t q8_pool_scratch_bytes(const KernelContext& ctx) {
  ref::Window w;
  if (ctx.inputs[0].rank < 3 || !pool_window(ctx, &w).ok()) return 0;
  return row_stride(w) * static_cast<size_t>(std::max(1, ctx.num_threads()));
}

// ---- MaxPool -----------------------------------------------------------------------------------

bool q8_maxpool_supports(const KernelContext& ctx) {
  if (!window_pool_shape_ok(ctx)) return false;
  if (ctx.num_outputs > 1 && ctx.outputs[1].rank >= 0) return false;  // Indices
  return true;
}

Status q8_maxpool_run(KernelContext& ctx) {
  if (ctx.num_outputs > 1 && ctx.outputs[1].data) return q8_run_reference(ctx);
  ref::Window w;
  Status s = pool_window(ctx, &w);
  if (!s.ok()) return s;
  if (ctx.scratch_size < q8_pool_scratch_bytes(ctx)) return q8_run_reference(ctx);
  const Q8ElemIsa& isa = q8_state_isa(*ctx.state);
  const TensorView &x = ctx.inputs[0], &y = ctx.outputs[0];
  const bool u8 = x.dtype == DType::U8;
  const int64_t isz = w.in[1] * w.in[2], osz = w.out[1] * w.out[2];
  const size_t stride = row_stride(w);
  ctx.parallel_for(x.dims[0] * x.dims[1], [&](int64_t p0, int64_t p1, int t) {
    void* row = static_cast<uint8_t*>(ctx.scratch) + static_cast<size_t>(t) * stride;
    for (int64_t p = p0; p < p1; ++p) {
      if (u8)
        maxpool_plane(isa, w, x.as<uint8_t>() + p * isz, y.as<uint8_t>() + p * osz, static_cast<uint8_t*>(row), true);
      else
        maxpool_plane(isa, w, x.as<int8_t>() + p * isz, y.as<int8_t>() + p * osz, static_cast<int8_t*>(row), false);
    }
  });
  return Status::Ok();
}

// ---- AveragePool (fixed-point rule) ------------------------------------------------------------

bool q8_avgpool_supports(const KernelContext& ctx) {
  if (!window_pool_shape_ok(ctx) || !rq::node_quantized(ctx)) return false;
  KernelContext c = ctx;
  rq::PerTensor xp;
  return rq::avg_rules(c, &xp).ok();
}

Status avgpool_float32_run(KernelContext& ctx, const ref::Window& w, const rq::PerTensor& xp,
                           const rq::PerTensor& yp);

Status q8_avgpool_run(KernelContext& ctx) {
  rq::PerTensor xp, yp;
  Status s = rq::avg_rules(ctx, &xp, &yp);
  if (!s.ok()) return s;
  ref::Window w;
  s = pool_window(ctx, &w);
  if (!s.ok()) return s;
  if (ctx.scratch_size < q8_pool_scratch_bytes(ctx)) return q8_run_reference(ctx);
  if (ctx.requantize_float32) return avgpool_float32_run(ctx, w, xp, yp);
  const Q8ElemIsa& isa = q8_state_isa(*ctx.state);
  const TensorView &x = ctx.inputs[0], &y = ctx.outputs[0];
  const bool u8 = x.dtype == DType::U8;
  const bool include_pad = ctx.attrs->get_int("count_include_pad", 0) != 0;
  int64_t lo, hi;
  rq::qrange(y.dtype, &lo, &hi);
  const int32_t zp = static_cast<int32_t>(xp.zp);
  const int64_t H = w.in[1], W = w.in[2], OH = w.out[1], OW = w.out[2];
  const int64_t isz = H * W, osz = OH * OW, wp = padded_width(w), pb = w.pb[2];
  const int64_t c0 = std::min(pb, wp), c1 = std::min(pb + W, wp);
  const size_t stride = row_stride(w), esz = 1;
  // divisors per output position (the same in every plane)
  std::vector<int64_t> count(static_cast<size_t>(osz));
  for (int64_t oh = 0; oh < OH; ++oh)
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t o[3] = {0, oh, ow};
      count[static_cast<size_t>(oh * OW + ow)] = std::max<int64_t>(ref::window_count(w, o, include_pad), 1);
    }
  ctx.parallel_for(x.dims[0] * x.dims[1], [&](int64_t p0, int64_t p1, int t) {
    int32_t* row = reinterpret_cast<int32_t*>(static_cast<uint8_t*>(ctx.scratch) + static_cast<size_t>(t) * stride);
    for (int64_t p = p0; p < p1; ++p) {
      const uint8_t* xp8 = static_cast<const uint8_t*>(x.data) + p * isz * esz;
      for (int64_t oh = 0; oh < OH; ++oh) {
        std::fill(row, row + wp, 0);
        for (int64_t k = 0; k < w.k[1]; ++k) {
          const int64_t ih = oh * w.s[1] + k * w.d[1] - w.pb[1];
          if (ih < 0 || ih >= H || c1 <= c0) continue;
          isa.acc_row(row + c0, xp8 + (ih * W + (c0 - pb)) * esz, static_cast<size_t>(c1 - c0), zp, u8);
        }
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int32_t* r = row + ow * w.s[2];
          int64_t total = 0;
          for (int64_t k = 0; k < w.k[2]; ++k) total += r[k * w.d[2]];
          const int64_t oi = oh * OW + ow;
          const int64_t v = quant::clamp(rq::rounded_mean(total, count[static_cast<size_t>(oi)]) + zp, lo, hi);
          if (u8) y.as<uint8_t>()[p * osz + oi] = static_cast<uint8_t>(v);
          else y.as<int8_t>()[p * osz + oi] = static_cast<int8_t>(v);
        }
      }
    }
  });
  return Status::Ok();
}

// The float32 rule (onnxruntime's QLinearAveragePool, the reference's run_avg_pool): per output,
// ftotal = ftotal + float32(s_x (x - zp)) over the window's taps in row-major order, then
// nearbyint(ftotal / count / s_y + zp_y). The lanes of a row are the output columns, each doing
// its own chain in the same tap order; a padding column holds zp, whose +0.0 product leaves a
// sum unchanged (a sum that starts at +0.0 and adds products that are never -0.0 is never -0.0),
// so it equals the reference's skipped tap. Rows outside the input are skipped, as there.
Status avgpool_float32_run(KernelContext& ctx, const ref::Window& w, const rq::PerTensor& xp,
                           const rq::PerTensor& yp) {
  const Q8ElemIsa& isa = q8_state_isa(*ctx.state);
  const TensorView &x = ctx.inputs[0], &y = ctx.outputs[0];
  const bool u8 = x.dtype == DType::U8;
  const bool include_pad = ctx.attrs->get_int("count_include_pad", 0) != 0;
  int64_t lo, hi;
  rq::qrange(y.dtype, &lo, &hi);
  const int64_t H = w.in[1], W = w.in[2], OH = w.out[1], OW = w.out[2];
  const int64_t isz = H * W, osz = OH * OW, wp = padded_width(w), pb = w.pb[2], sw = w.s[2];
  const int64_t c0 = std::min(pb, wp), c1 = std::min(pb + W, wp);
  const size_t stride = row_stride(w);
  const uint8_t zbyte = static_cast<uint8_t>(xp.zp);
  const int32_t zp = static_cast<int32_t>(xp.zp);
  std::vector<float> count(static_cast<size_t>(osz));
  for (int64_t oh = 0; oh < OH; ++oh)
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t o[3] = {0, oh, ow};
      count[static_cast<size_t>(oh * OW + ow)] =
          static_cast<float>(std::max<int64_t>(ref::window_count(w, o, include_pad), 1));
    }
  ctx.parallel_for(x.dims[0] * x.dims[1], [&](int64_t p0, int64_t p1, int t) {
    uint8_t* row = static_cast<uint8_t*>(ctx.scratch) + static_cast<size_t>(t) * stride;
    uint8_t* even = row + wp;
    uint8_t* odd = even + wp / 2 + 1;
    float* acc = reinterpret_cast<float*>(row + (2 * wp + 2 + 3) / 4 * 4);
    std::memset(row, zbyte, static_cast<size_t>(wp));
    for (int64_t p = p0; p < p1; ++p) {
      const uint8_t* xp8 = static_cast<const uint8_t*>(x.data) + p * isz;
      for (int64_t oh = 0; oh < OH; ++oh) {
        std::fill(acc, acc + OW, 0.f);
        for (int64_t k = 0; k < w.k[1]; ++k) {
          const int64_t ih = oh * w.s[1] + k * w.d[1] - w.pb[1];
          if (ih < 0 || ih >= H) continue;
          if (c1 > c0) std::memcpy(row + c0, xp8 + ih * W + (c0 - pb), static_cast<size_t>(c1 - c0));
          if (sw == 2) {
            isa.deinterleave2(row, static_cast<size_t>(wp / 2), even, odd);
            if (wp % 2) even[wp / 2] = row[wp - 1];
          }
          for (int64_t kc = 0; kc < w.k[2]; ++kc) {
            const int64_t tap = kc * w.d[2];
            if (sw == 1) {
              isa.favg_row(acc, row + tap, static_cast<size_t>(OW), xp.scale, zp, u8);
            } else if (sw == 2) {
              isa.favg_row(acc, tap % 2 ? odd + (tap - 1) / 2 : even + tap / 2, static_cast<size_t>(OW), xp.scale,
                           zp, u8);
            } else {
              for (int64_t ow = 0; ow < OW; ++ow) {
                const uint8_t b = row[ow * sw + tap];
                const int32_t v = (u8 ? static_cast<int32_t>(b) : static_cast<int32_t>(static_cast<int8_t>(b))) - zp;
                acc[ow] = acc[ow] + quant::rounded_product(xp.scale, static_cast<float>(v));
              }
            }
          }
        }
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t oi = oh * OW + ow;
          const float avg = acc[ow] / count[static_cast<size_t>(oi)];
          const float q = avg / yp.scale;
          const int64_t v = quant::clamp(static_cast<int64_t>(std::nearbyint(q + static_cast<float>(yp.zp))), lo, hi);
          if (u8) y.as<uint8_t>()[p * osz + oi] = static_cast<uint8_t>(v);
          else y.as<int8_t>()[p * osz + oi] = static_cast<int8_t>(v);
        }
      }
    }
  });
  return Status::Ok();
}

// ---- GlobalAveragePool (both rules) ------------------------------------------------------------

bool q8_gavgpool_supports(const KernelContext& ctx) {
  if (ctx.num_inputs < 1 || ctx.num_outputs < 1 || !rq::node_quantized(ctx)) return false;
  const DType d = ctx.inputs[0].dtype;
  if ((d != DType::I8 && d != DType::U8) || ctx.outputs[0].dtype != d || ctx.inputs[0].rank < 2) return false;
  KernelContext c = ctx;
  rq::PerTensor xp;
  return rq::avg_rules(c, &xp).ok();
}

Status q8_gavgpool_run(KernelContext& ctx) {
  rq::PerTensor xp, yp;
  Status s = rq::avg_rules(ctx, &xp, &yp);
  if (!s.ok()) return s;
  const Q8ElemIsa& isa = q8_state_isa(*ctx.state);
  const TensorView &x = ctx.inputs[0], &y = ctx.outputs[0];
  const bool u8 = x.dtype == DType::U8;
  const int64_t nc = x.dims[0] * x.dims[1], inner = nc ? x.numel() / nc : 0;
  int64_t lo, hi;
  rq::qrange(y.dtype, &lo, &hi);
  const bool float32 = ctx.requantize_float32;
  const float scale = float32 ? xp.scale / (yp.scale * static_cast<float>(inner)) : 0.f;
  std::atomic<bool> overflow(false);
  const uint8_t* px = static_cast<const uint8_t*>(x.data);
  ctx.parallel_for(nc, [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t total = isa.sum(px + p * inner, static_cast<size_t>(inner), u8) - inner * xp.zp;
      int64_t v;
      if (float32) {
        if (!quant::fits_int32(total)) {
          overflow = true;
          continue;
        }
        v = quant::requantize_float32(total, scale, yp.zp, lo, hi);
      } else {
        v = quant::clamp(rq::rounded_mean(total, std::max<int64_t>(inner, 1)) + xp.zp, lo, hi);
      }
      if (u8) y.as<uint8_t>()[p] = static_cast<uint8_t>(v);
      else y.as<int8_t>()[p] = static_cast<int8_t>(v);
    }
  });
  return overflow ? rq::overflow_error(ctx) : Status::Ok();
}

// ---- GlobalMaxPool -----------------------------------------------------------------------------

bool q8_gmaxpool_supports(const KernelContext& ctx) {
  if (ctx.num_inputs < 1 || ctx.num_outputs < 1) return false;
  const DType d = ctx.inputs[0].dtype;
  return (d == DType::I8 || d == DType::U8) && ctx.outputs[0].dtype == d && ctx.inputs[0].rank >= 2;
}

namespace {

// max over n elements (the dtype's lowest for n = 0, the reference's start value): the
// instruction set's max_row folds 64-element blocks into one, then a scalar pass.
template <typename T>
T plane_max(const Q8ElemIsa& isa, const T* x, int64_t n, bool u8) {
  constexpr int64_t kW = 64;
  T m = std::numeric_limits<T>::lowest();
  int64_t i = 0;
  if (n >= 2 * kW) {
    T acc[kW];
    std::memcpy(acc, x, sizeof(acc));
    for (i = kW; i + kW <= n; i += kW) isa.max_row(acc, x + i, kW, u8);
    for (int64_t j = 0; j < kW; ++j) m = std::max(m, acc[j]);
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

}  // namespace

Status q8_gmaxpool_run(KernelContext& ctx) {
  const Q8ElemIsa& isa = q8_state_isa(*ctx.state);
  const TensorView &x = ctx.inputs[0], &y = ctx.outputs[0];
  const bool u8 = x.dtype == DType::U8;
  const int64_t nc = x.dims[0] * x.dims[1], inner = nc ? x.numel() / nc : 0;
  ctx.parallel_for(nc, [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      if (u8) y.as<uint8_t>()[p] = plane_max(isa, x.as<uint8_t>() + p * inner, inner, true);
      else y.as<int8_t>()[p] = plane_max(isa, x.as<int8_t>() + p * inner, inner, false);
    }
  });
  return Status::Ok();
}

}  // namespace q8
}  // namespace mobrt
