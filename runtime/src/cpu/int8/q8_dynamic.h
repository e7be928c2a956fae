// q8_dynamic.h: the driver of the optimized dynamic-range int8 MatMul/Gemm/1x1 Conv kernels
// (semantics and scalar pieces: cpu/reference/dynamic_quant.h). Portable template code,
// instantiated by each ISA file (q8_dynamic_<isa>.cpp) with its Ops:
//
//   struct Ops {
//     using AType = ...;  // packed activation element: int16_t (q) or uint8_t (q + 128)
//     using WType = ...;  // packed weight element: int16_t or int8_t
//     static constexpr int kMR, kNR, kKR;   // tile rows, panel columns, k group
//     static constexpr int32_t kAOffset;    // 0, or 128 when AType is q + 128
//     static uint32_t amax_bits(const float* a, size_t k);           // max |a| as bits
//     static void quantize(const float* a, size_t k, float inv, AType* q);  // k values
//     // C (mr x kNR of a kMR x kNR buffer, int32) = sum over kgroups of the packed
//     // products, from 0; mr in [1, kMR] valid rows (the others are not written)
//     static void tile(size_t kgroups, const AType* a, size_t lda, const WType* w, int32_t* c, int mr);
//     // y[j] = act(float32(float32(acc[j] + comp[j]) * float32(s_a * s_w[j])) + bias[j]), j < n
//     static void finish(const int32_t* acc, const int32_t* comp, size_t n, float s_a, const float* s_w,
//                        const float* bias, const Activation& act, float* y);
//   };
//
// Weights are packed once (prepare) into panels of kNR columns:
//   panel[(g * kNR + c) * kKR + j] = W[g * kKR + j][col c]  (zero beyond K and N),
// with comp[c] = -kAOffset * sum_k W[k][c] (the activation offset's compensation; the
// int32 sum then equals sum q * w, wrapping arithmetic being exact as |sum| < 2^31).
// A run quantizes every row into scratch (rows padded to a multiple of kMR with zeros),
// (a 1x1 Conv's row is a pixel's channels, gathered at stride `pixels`; its outputs are
// scattered back to NCHW), then computes (panel, row block) tiles with ctx.parallel_for; every output element is
// computed the same way whatever the split, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <vector>

#include "core/kernel.h"
#include "cpu/reference/dynamic_quant.h"

namespace mobrt {
namespace q8 {
namespace fb = ::mobconv::formats::fb;

template <class Ops>
struct DynKernel {
  using AType = typename Ops::AType;
  using WType = typename Ops::WType;

  struct State {
    dynq::DynGeom g;
    int64_t kgroups = 0, kp = 0, panels = 0;
    std::vector<WType> w;       // panels * kgroups * kNR * kKR
    std::vector<int32_t> comp;  // panels * kNR
    std::vector<float> s_w;     // panels * kNR
  };

  static bool bias_ok(const KernelContext& ctx, int64_t n) {
    if (ctx.op_type == fb::OpType_MatMul || ctx.num_inputs < 3 || !ctx.inputs[2].present()) return true;
    const TensorView& c = ctx.inputs[2];
    return c.dtype == DType::F32 && c.rank >= 1 && c.numel() == n && c.dim(-1) == n;
  }

  static bool supports(const KernelContext& ctx) {
    if (!dynq::is_dynamic_form(ctx)) return false;
    dynq::DynGeom g;
    if (!dynq::dynamic_rules(ctx, &g).ok() || g.trans_a) return false;
    if (g.act.kind == Activation::Kind::Clip && (g.act.a != g.act.a || g.act.b != g.act.b)) return false;
    return bias_ok(ctx, g.n);
  }

  static void release(void* p) { delete static_cast<State*>(p); }

  static Status prepare(KernelContext& ctx) {
    auto* st = new (std::nothrow) State;
    if (!st) return Status::Error(StatusCode::kOutOfMemory, "dynamic int8: packed weights");
    Status s = dynq::dynamic_rules(ctx, &st->g);
    if (!s.ok()) {
      delete st;
      return s;
    }
    const dynq::DynGeom& g = st->g;
    const int64_t k = g.k, n = g.n;
    st->kgroups = (k + Ops::kKR - 1) / Ops::kKR;
    st->kp = st->kgroups * Ops::kKR;
    st->panels = (n + Ops::kNR - 1) / Ops::kNR;
    const int8_t* w = ctx.inputs[1].as<int8_t>();
    st->w.assign(static_cast<size_t>(st->panels * st->kgroups * Ops::kNR * Ops::kKR), WType(0));
    st->comp.assign(static_cast<size_t>(st->panels * Ops::kNR), 0);
    st->s_w.assign(static_cast<size_t>(st->panels * Ops::kNR), 0.f);
    for (int64_t col = 0; col < n; ++col) {
      const int64_t p = col / Ops::kNR, c = col % Ops::kNR;
      WType* panel = st->w.data() + p * st->kgroups * Ops::kNR * Ops::kKR;
      int64_t sum = 0;
      for (int64_t kk = 0; kk < k; ++kk) {
        const int8_t v = g.trans_b ? w[col * k + kk] : w[kk * n + col];
        panel[((kk / Ops::kKR) * Ops::kNR + c) * Ops::kKR + kk % Ops::kKR] = static_cast<WType>(v);
        sum += v;
      }
      st->comp[col] = static_cast<int32_t>(-Ops::kAOffset * sum);
      st->s_w[col] = g.s_w[g.s_w_count == 1 ? 0 : col];
    }
    st->g.s_w = nullptr;  // the model's array: s_w above is the kernel's copy
    *ctx.state = st;
    return Status::Ok();
  }

  // Rows of A: MatMul/Gemm every leading dim; Conv N * pixels (pixels: spatial dims).
  static int64_t rows_of(const KernelContext& ctx, int64_t* pixels) {
    const TensorView& a = ctx.inputs[0];
    int64_t r = 1;
    *pixels = 1;
    if (ctx.op_type == fb::OpType_Conv) {
      for (int i = 2; i < a.rank; ++i) *pixels *= a.dims[i];
      return a.dims[0] * *pixels;
    }
    for (int i = 0; i + 1 < a.rank; ++i) r *= a.dims[i];
    return r;
  }

  static size_t align64(size_t b) { return (b + 63) & ~size_t(63); }

  static size_t scratch_bytes(const KernelContext& ctx) {
    const State* st = static_cast<const State*>(*ctx.state);
    int64_t px;
    const int64_t r = rows_of(ctx, &px);
    const int64_t rp = (r + Ops::kMR - 1) / Ops::kMR * Ops::kMR;
    return align64(static_cast<size_t>(rp * st->kp) * sizeof(AType)) + align64(static_cast<size_t>(rp) * 4) +
           align64(static_cast<size_t>(rp));
  }

  static Status run(KernelContext& ctx) {
    const State* st = static_cast<const State*>(*ctx.state);
    const int64_t k = st->g.k, n = st->g.n, kp = st->kp;
    int64_t px;
    const int64_t r = rows_of(ctx, &px);
    const bool conv = ctx.op_type == fb::OpType_Conv;
    const int64_t rp = (r + Ops::kMR - 1) / Ops::kMR * Ops::kMR;
    char* base = static_cast<char*>(ctx.scratch);
    AType* qa = reinterpret_cast<AType*>(base);
    float* s_a = reinterpret_cast<float*>(base + align64(static_cast<size_t>(rp * kp) * sizeof(AType)));
    uint8_t* bad = reinterpret_cast<uint8_t*>(reinterpret_cast<char*>(s_a) + align64(static_cast<size_t>(rp) * 4));
    const float* pa = ctx.inputs[0].as<float>();
    float* py = ctx.outputs[0].as<float>();
    const float* bias = ctx.op_type != fb::OpType_MatMul && ctx.num_inputs > 2 && ctx.inputs[2].present()
                            ? ctx.inputs[2].as<float>() : nullptr;
    const AType zero = static_cast<AType>(Ops::kAOffset);
    ctx.parallel_for(r, [&](int64_t r0, int64_t r1, int) {  // padding rows are never read
      std::vector<float> gathered(conv ? static_cast<size_t>(k) : 0);
      for (int64_t i = r0; i < r1; ++i) {
        AType* q = qa + i * kp;
        const float* row = pa + i * k;
        if (conv) {  // pixel i % px of image i / px: its channels at stride px
          const float* src = pa + (i / px) * k * px + i % px;
          for (int64_t c = 0; c < k; ++c) gathered[static_cast<size_t>(c)] = src[c * px];
          row = gathered.data();
        }
        dynq::RowScale rs;
        if (i < r) rs = dynq::row_scale(Ops::amax_bits(row, static_cast<size_t>(k)));
        s_a[i] = rs.s_a;
        bad[i] = rs.nonfinite ? 1 : 0;
        if (i < r && !rs.nonfinite) {
          Ops::quantize(row, static_cast<size_t>(k), rs.inv, q);
          std::fill(q + k, q + kp, zero);
        } else {
          std::fill(q, q + kp, zero);
        }
      }
    });
    const int64_t blocks = rp / Ops::kMR, tasks = st->panels * blocks;
    ctx.parallel_for(tasks, [&](int64_t t0, int64_t t1, int) {
      alignas(64) int32_t c[Ops::kMR * Ops::kNR];
      alignas(64) float out[Ops::kNR];  // Conv: one row's columns before they go to stride px
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t p = t / blocks, b = t % blocks;  // consecutive tasks share a panel
        const WType* w = st->w.data() + p * st->kgroups * Ops::kNR * Ops::kKR;
        const int mr = static_cast<int>(std::min<int64_t>(Ops::kMR, r - b * Ops::kMR));
        Ops::tile(static_cast<size_t>(st->kgroups), qa + b * Ops::kMR * kp, static_cast<size_t>(kp), w, c, mr);
        const int64_t col0 = p * Ops::kNR, nr = std::min<int64_t>(Ops::kNR, n - col0);
        for (int rr = 0; rr < Ops::kMR; ++rr) {
          const int64_t i = b * Ops::kMR + rr;
          if (i >= r) break;
          float* y = conv ? out : py + i * n + col0;
          if (bad[i]) {
            for (int64_t j = 0; j < nr; ++j) y[j] = NAN;
          } else {
            Ops::finish(c + rr * Ops::kNR, st->comp.data() + col0, static_cast<size_t>(nr), s_a[i],
                        st->s_w.data() + col0, bias ? bias + col0 : nullptr, st->g.act, y);
          }
          if (conv) {
            float* dst = py + ((i / px) * n + col0) * px + i % px;
            for (int64_t j = 0; j < nr; ++j) dst[j * px] = out[j];
          }
        }
      }
    });
    return Status::Ok();
  }

  // The scalar tail of finish (columns past the last full vector): the reference's steps.
  static void finish_scalar(const int32_t* acc, const int32_t* comp, size_t j0, size_t n, float s_a,
                            const float* s_w, const float* bias, const Activation& act, float* y) {
    for (size_t j = j0; j < n; ++j) {
      const int32_t a = static_cast<int32_t>(static_cast<uint32_t>(acc[j]) + static_cast<uint32_t>(comp[j]));
      float v = dynq::scaled(a, s_a, s_w[j]);
      if (bias) v = v + bias[j];
      y[j] = act.apply(v);
    }
  }

};

// A Kernel table entry of DynKernel<Ops>, constant-initialized (the registration files,
// compiled without ISA flags, only copy it).
#define MOBRT_Q8_DYNAMIC_KERNEL(Ops, name) \
  {name, &::mobrt::q8::DynKernel<Ops>::supports, &::mobrt::q8::DynKernel<Ops>::prepare, \
   &::mobrt::q8::DynKernel<Ops>::release, &::mobrt::q8::DynKernel<Ops>::scratch_bytes, \
   &::mobrt::q8::DynKernel<Ops>::run}

// The kernels each ISA file defines (register_q8_dynamic_<isa>.cpp registers them).
extern const Kernel kQ8DynamicMatMulAvx2, kQ8DynamicGemmAvx2, kQ8DynamicConvAvx2;
extern const Kernel kQ8DynamicMatMulAvx512Vnni, kQ8DynamicGemmAvx512Vnni, kQ8DynamicConvAvx512Vnni;
extern const Kernel kQ8DynamicMatMulNeon, kQ8DynamicGemmNeon, kQ8DynamicConvNeon;
extern const Kernel kQ8DynamicMatMulNeonDot, kQ8DynamicGemmNeonDot, kQ8DynamicConvNeonDot;

}  // namespace q8
}  // namespace mobrt
