// q8_dynamic.h: the optimized dynamic-range int8 MatMul/Gemm/1x1 Conv kernels
// (semantics and scalar pieces: cpu/reference/dynamic_quant.h). The driver (packing,
// scratch, row quantization loop, tile loop, the scalar tail) is q8_dynamic.cpp, compiled
// without ISA flags; each ISA file (q8_dynamic_<isa>.cpp) holds only its kernels, with
// internal linkage, described by an Ops struct (DynEntry<Ops> below, in an anonymous
// namespace, adapts them to DynOps: one call per tile computes it and writes its outputs):
//
//   struct Ops {
//     using AType = ...;  // packed activation element: int16_t (q), int8_t (q) or uint8_t (q + 128)
//     using WType = ...;  // packed weight element: int16_t or int8_t
//     static constexpr int kMR, kNR, kKR;   // tile rows, panel columns, k group
//     static constexpr int32_t kAOffset;    // 0, or 128 when AType is q + 128
//     static uint32_t amax_bits(const float* a, size_t k);           // max |a| as bits
//     static void quantize(const float* a, size_t k, float inv, AType* q);  // k values
//     // C (R x kNR rows of a kMR x kNR buffer, int32) = sum over kgroups of the packed
//     // products, from 0, for R in [1, kMR]: only a tile's valid rows are computed
//     template <int R> static void rows(size_t kgroups, const AType* a, size_t lda, const WType* w, int32_t* c);
//     // y[j] = act(float32(float32(acc[j] + comp[j]) * float32(s_a * s_w[j])) + bias[j]), j < n
//     // (columns past the last full vector: dyn_finish_scalar)
//     static void finish(const int32_t* acc, const int32_t* comp, size_t n, float s_a, const float* s_w,
//                        const float* bias, const Activation& act, float* y);
//   };
//
// ISA files must not instantiate std templates or non-static inline functions: the linker
// keeps one copy of such a symbol, which baseline code could then run with the ISA's
// instructions (scripts/check_isa_odr.py, tests/test_isa_odr.py).
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

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/kernel.h"
#include "cpu/reference/dynamic_quant.h"

namespace mobrt {
namespace q8 {
namespace fb = ::mobconv::formats::fb;

// What a run's tiles write to (the driver fills it once per run).
struct DynRun {
  const uint8_t* bad;    // per row: a non-finite input, outputs NaN
  const float* s_a;      // per row
  const int32_t* comp;   // per column (padded to panels)
  const float* s_w;      // per column
  const float* bias;     // per column, or null
  const Activation* act;
  float* y;
  int64_t n;             // columns
  int64_t px;            // Conv: pixels per image (row i is pixel i % px of image i / px)
  bool conv;             // outputs at stride px (NCHW), else row-major [rows, n]
};

// One ISA's kernels, type-erased for the baseline driver (element sizes in bytes).
struct DynOps {
  int mr, nr, kr;
  int32_t a_offset;
  int a_size, w_size;  // 1 or 2 (int8/uint8 or int16)
  uint32_t (*amax_bits)(const float* a, size_t k);
  void (*quantize)(const float* a, size_t k, float inv, void* q);
  // The outputs of rows [i0, i0 + mr) x columns [col0, col0 + nr) from one tile (a: the
  // rows' packed activations, w: the columns' panel).
  void (*tile_finish)(size_t kgroups, const void* a, size_t lda, const void* w, int mr, int64_t i0, int64_t col0,
                      int64_t nr, const DynRun& run);
};

// q8_dynamic.cpp (no ISA flags).
bool dyn_supports(const KernelContext& ctx);
void dyn_release(void* state);
Status dyn_prepare(KernelContext& ctx, const DynOps& ops);
size_t dyn_scratch_bytes(const KernelContext& ctx, const DynOps& ops);
Status dyn_run(KernelContext& ctx, const DynOps& ops);
// dynq::quantize_value out of line, for the ISA files' scalar tails (its std::nearbyint
// is an inline function that -O0 builds would emit as a shared weak symbol).
int32_t dyn_quantize_value(float a, float inv);
// The scalar tail of finish (columns j0..n): the reference's steps.
void dyn_finish_scalar(const int32_t* acc, const int32_t* comp, size_t j0, size_t n, float s_a,
                       const float* s_w, const float* bias, const Activation& act, float* y);

namespace {  // internal linkage in every file that instantiates it (an ISA file)

// Ops::rows<R> for the tile's mr valid rows (1 <= mr <= kMR).
template <class Ops, int R = Ops::kMR>
inline void dyn_rows(int mr, size_t kgroups, const typename Ops::AType* a, size_t lda, const typename Ops::WType* w,
                     int32_t* c) {
  if constexpr (R > 1) {
    if (mr < R) return dyn_rows<Ops, R - 1>(mr, kgroups, a, lda, w, c);
  }
  Ops::template rows<R>(kgroups, a, lda, w, c);
}

template <class Ops>
struct DynEntry {
  using AType = typename Ops::AType;
  using WType = typename Ops::WType;
  static_assert(sizeof(AType) <= 2 && sizeof(WType) <= 2, "packed elements are 8 or 16 bits");
  static void quantize(const float* a, size_t k, float inv, void* q) {
    Ops::quantize(a, k, inv, static_cast<AType*>(q));
  }
  static void tile_finish(size_t kgroups, const void* a, size_t lda, const void* w, int mr, int64_t i0, int64_t col0,
                          int64_t nr, const DynRun& run) {
    alignas(64) int32_t c[Ops::kMR * Ops::kNR];
    alignas(64) float out[Ops::kNR];  // Conv: one row's columns before they go to stride px
    dyn_rows<Ops>(mr, kgroups, static_cast<const AType*>(a), lda, static_cast<const WType*>(w), c);
    for (int rr = 0; rr < mr; ++rr) {
      const int64_t i = i0 + rr;
      float* y = run.conv ? out : run.y + i * run.n + col0;
      if (run.bad[i]) {
        for (int64_t j = 0; j < nr; ++j) y[j] = NAN;
      } else {
        Ops::finish(c + rr * Ops::kNR, run.comp + col0, static_cast<size_t>(nr), run.s_a[i], run.s_w + col0,
                    run.bias ? run.bias + col0 : nullptr, *run.act, y);
      }
      if (run.conv) {
        float* dst = run.y + ((i / run.px) * run.n + col0) * run.px + i % run.px;
        for (int64_t j = 0; j < nr; ++j) dst[j * run.px] = out[j];
      }
    }
  }
  static constexpr DynOps kOps = {Ops::kMR, Ops::kNR, Ops::kKR, Ops::kAOffset,
                                  static_cast<int>(sizeof(AType)), static_cast<int>(sizeof(WType)),
                                  &Ops::amax_bits, &DynEntry::quantize, &DynEntry::tile_finish};
  static Status prepare(KernelContext& ctx) { return dyn_prepare(ctx, kOps); }
  static size_t scratch_bytes(const KernelContext& ctx) { return dyn_scratch_bytes(ctx, kOps); }
  static Status run(KernelContext& ctx) { return dyn_run(ctx, kOps); }
};

}  // namespace

// A Kernel table entry of Ops, constant-initialized (the registration files, compiled
// without ISA flags, only copy it). Use in the ISA file, Ops in an anonymous namespace.
#define MOBRT_Q8_DYNAMIC_KERNEL(Ops, name) \
  {name, &::mobrt::q8::dyn_supports, &DynEntry<Ops>::prepare, &::mobrt::q8::dyn_release, \
   &DynEntry<Ops>::scratch_bytes, &DynEntry<Ops>::run}

// The kernels each ISA file defines (register_q8_dynamic_<isa>.cpp registers them).
extern const Kernel kQ8DynamicMatMulAvx2, kQ8DynamicGemmAvx2, kQ8DynamicConvAvx2;
extern const Kernel kQ8DynamicMatMulAvx512Vnni, kQ8DynamicGemmAvx512Vnni, kQ8DynamicConvAvx512Vnni;
extern const Kernel kQ8DynamicMatMulNeon, kQ8DynamicGemmNeon, kQ8DynamicConvNeon;
extern const Kernel kQ8DynamicMatMulNeonDot, kQ8DynamicGemmNeonDot, kQ8DynamicConvNeonDot;

}  // namespace q8
}  // namespace mobrt
