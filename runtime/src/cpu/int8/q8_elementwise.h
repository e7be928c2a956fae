// q8_elementwise.h: the optimized int8/uint8 element-wise, pooling and concat kernels:
// Add and Mul with requantization, Relu (rescale then max), Clip, Concat with per-input
// rescale, MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool. Bit for bit the reference
// kernels (cpu/reference/quant_ops.cpp, pool.cpp): the rules and constants are
// quant_params.h's (binary_rules, relu_rules, concat_rules, avg_rules), called at run
// (a few multipliers per node); the arithmetic per element is the q8_*1 functions below, which each
// instruction set vectorizes exactly (docs/quantization.md sections 2-5):
//
//   Add   clamp(MBQM(MBQM((a - za) 2^20, ma) + MBQM((b - zb) 2^20, mb), my) + zy, lo, hi)
//   Mul   clamp(MBQM((a - za) (b - zb), my) + zy, lo, hi)
//   Rescale (Concat, Relu)  clamp(MBQM((x - zx) 2^20, m) + zy, lo, hi), or a copy
//         clamped to [lo, hi] when the parameters are equal (Relu: lo = max(lo, zy))
//
// MBQM(x, m) = rounding_divide_by_pot(rounding_doubling_high_mul(sat32(x 2^left), q), right)
// (quant_fixed_point.h). Every intermediate fits in int32 (|x - z| <= 255, 255 2^20 < 2^28,
// the Add terms are at most half that), so the vector code works on int32 lanes.
//
// Layout: this portable glue (q8_elementwise.cpp: Add/Mul/Relu and registration,
// q8_pool.cpp, q8_concat.cpp) plans the rows (broadcast kinds, windows, threads) and
// calls an instruction set's row functions (Q8ElemIsa, q8_elementwise_<isa>.cpp).
// Nodes the plans do not cover (a general broadcast, 3-D pools, MaxPool's Indices, operands
// of different dtypes, unquantized Add/Mul/Relu/Concat/AveragePool, which keep their plain
// integer kernels) are refused in supports() when the declared shapes show them, and handed
// to the reference kernel at run time when a resize brings them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/kernel.h"
#include "cpu/reference/quant_fixed_point.h"

namespace mobrt {
namespace q8 {

// A quant::Multiplier split for the vector code: left = max(shift, 0), right = max(-shift, 0).
struct Q8Mult {
  int32_t q = 0, left = 0, right = 0;
};

struct Q8AddParams {
  int32_t za = 0, zb = 0;
  Q8Mult ma, mb, my;
  int32_t zy = 0, lo = 0, hi = 0;
};

struct Q8MulParams {
  int32_t za = 0, zb = 0;
  Q8Mult my;
  int32_t zy = 0, lo = 0, hi = 0;
};

struct Q8RescaleParams {
  bool copy = true;  // parameters equal: y = clamp(x, lo, hi)
  int32_t zx = 0;
  Q8Mult m;
  int32_t zy = 0, lo = 0, hi = 0;
  // Optional (q8_rescale_lut): lut[b] = q8_rescale1 of the input byte b, for row functions
  // that look bytes up (Q8ElemIsa::rescale_lut); the others compute.
  const uint8_t* lut = nullptr;
};

// ---- the arithmetic of one element (the specification of the row functions)

inline int64_t q8_mbqm(int64_t x, const Q8Mult& m) {
  quant::Multiplier mm;
  mm.q = m.q;
  mm.shift = m.left > 0 ? m.left : -m.right;
  return quant::multiply_by_quantized_multiplier(x, mm);
}

// MBQM((v - z) * 2^20, m): one input's term of Add, and Rescale's product.
inline int64_t q8_shifted_term(int32_t v, int32_t z, const Q8Mult& m) {
  return q8_mbqm(static_cast<int64_t>(v - z) * (int64_t(1) << quant::kAddLeftShift), m);
}

inline int32_t q8_add_terms1(int64_t ta, int64_t tb, const Q8AddParams& p) {
  return static_cast<int32_t>(quant::clamp(q8_mbqm(ta + tb, p.my) + p.zy, p.lo, p.hi));
}

inline int32_t q8_add1(int32_t a, int32_t b, const Q8AddParams& p) {
  return q8_add_terms1(q8_shifted_term(a, p.za, p.ma), q8_shifted_term(b, p.zb, p.mb), p);
}

inline int32_t q8_mul1(int32_t a, int32_t b, const Q8MulParams& p) {
  return static_cast<int32_t>(
      quant::clamp(q8_mbqm(static_cast<int64_t>(a - p.za) * (b - p.zb), p.my) + p.zy, p.lo, p.hi));
}

inline int32_t q8_rescale1(int32_t x, const Q8RescaleParams& p) {
  if (p.copy) return static_cast<int32_t>(quant::clamp(x, p.lo, p.hi));
  return static_cast<int32_t>(quant::clamp(q8_shifted_term(x, p.zx, p.m) + p.zy, p.lo, p.hi));
}

// ---- an instruction set's row functions. u8: every operand is uint8 (else int8).

struct Q8ElemIsa {
  const char* suffix;  // "avx2": kernels add_q8_avx2, gavgpool_q8_avx2, ...
  // y[i] = q8_add1(a[i], b[b_bcast ? 0 : i]), i < n
  void (*add)(const void* a, const void* b, bool b_bcast, size_t n, const Q8AddParams& p, void* y, bool u8);
  // y[i] = q8_mul1(a[i], b[b_bcast ? 0 : i])
  void (*mul)(const void* a, const void* b, bool b_bcast, size_t n, const Q8MulParams& p, void* y, bool u8);
  // y[i] = q8_rescale1(x[i])
  void (*rescale)(const void* x, size_t n, const Q8RescaleParams& p, void* y, bool u8);
  // sum of x[i] (as int8 or uint8 values), n < 2^40
  int64_t (*sum)(const void* x, size_t n, bool u8);
  // dst[i] = max(dst[i], src[i])
  void (*max_row)(void* dst, const void* src, size_t n, bool u8);
  // acc[i] += x[i] - zp
  void (*acc_row)(int32_t* acc, const void* x, size_t n, int32_t zp, bool u8);
  // even[j] = src[2 j], odd[j] = src[2 j + 1], j < n (bytes: any dtype)
  void (*deinterleave2)(const void* src, size_t n, void* even, void* odd);
  // rescale reads Q8RescaleParams::lut when set (a table lookup beats the arithmetic: NEON tbl)
  bool rescale_lut;
  // acc[i] = acc[i] + float32(scale * float(x[i] - zp)): the product rounded on its own, never
  // fused with the add (quant::rounded_product), as AveragePool's float32 rule sums
  void (*favg_row)(float* acc, const void* x, size_t n, float scale, int32_t zp, bool u8);
};

// The 256-byte table of a non-copy rescale, indexed by the input's raw byte; worth building
// for rows of at least kQ8LutMinElements elements in all.
constexpr int64_t kQ8LutMinElements = 2048;
inline void q8_rescale_lut(const Q8RescaleParams& p, bool u8, uint8_t lut[256]) {
  for (int b = 0; b < 256; ++b)
    lut[b] = static_cast<uint8_t>(q8_rescale1(u8 ? b : static_cast<int8_t>(static_cast<uint8_t>(b)), p));
}

// The portable row functions (the specification; tails of the vector ones use q8_*1).
extern const Q8ElemIsa kQ8ElemScalar;

// ---- glue (portable)

// Prepare of every kernel of this family: computes the op's constants into *ctx.state
// and records `isa` for run.
Status q8_elem_prepare(KernelContext& ctx, const Q8ElemIsa& isa);

// Per instruction set (q8_elementwise_<isa>.cpp): q8_elem_prepare with that set's table.
Status q8_elem_prepare_avx2(KernelContext& ctx);
Status q8_elem_prepare_avx512(KernelContext& ctx);
Status q8_elem_prepare_neon(KernelContext& ctx);

// Registers add_q8_<suffix>, mul_q8_, relu_q8_, clip_q8_, concat_q8_, maxpool_q8_, avgpool_q8_,
// gavgpool_q8_, gmaxpool_q8_ under their int8 and uint8 keys at `isa` (register_q8_elem_<isa>.cpp).
void q8_elem_register(KernelRegistry& registry, Isa isa, const char* suffix, Status (*prepare)(KernelContext&));

// ---- internals shared by the glue files

struct Q8ElemState;
const Q8ElemIsa& q8_state_isa(const void* state);
// The reference kernel of this node (a shape the fast path does not cover).
Status q8_run_reference(KernelContext& ctx);

// q8_pool.cpp
bool q8_maxpool_supports(const KernelContext& ctx);
size_t q8_pool_scratch_bytes(const KernelContext& ctx);
Status q8_maxpool_run(KernelContext& ctx);
bool q8_avgpool_supports(const KernelContext& ctx);
Status q8_avgpool_run(KernelContext& ctx);
bool q8_gavgpool_supports(const KernelContext& ctx);
Status q8_gavgpool_run(KernelContext& ctx);
bool q8_gmaxpool_supports(const KernelContext& ctx);
Status q8_gmaxpool_run(KernelContext& ctx);

// q8_concat.cpp
bool q8_concat_supports(const KernelContext& ctx);
Status q8_concat_run(KernelContext& ctx);

}  // namespace q8
}  // namespace mobrt
