// q8_elementwise.cpp: the portable glue of the int8 element-wise kernels (Add, Mul,
// Relu), the portable row functions, the state shared with q8_pool.cpp and
// q8_concat.cpp, and the registration helper (q8_elementwise.h).
//
// Add / Mul broadcast plans (the output's element order, NCHW or any layout):
//   same     both operands have the output's shape
//   scalar   one operand has one element
//   rows     one operand equals the output's trailing dims (a row repeated)
//   channel  one operand's non-1 dims are a contiguous block of the output's dims
//            followed by dims it broadcasts over ([1, C, 1, 1] against [N, C, H, W]):
//            every row of `inner` output elements takes one value of it
// The full operand is A of the row functions (Add's and Mul's rules are symmetric once
// the parameters are swapped with it). Anything else ([4, 1] + [1, 6]) is refused in
// supports() or, when a resize brings it, runs the reference kernel.
#include "cpu/int8/q8_elementwise.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "cpu/reference/quant_float_requant.h"
#include "cpu/reference/quant_params.h"

namespace mobrt {
namespace q8 {

namespace rq = ::mobrt::ref::q8;
namespace fb = ::mobconv::formats::fb;

// ---- portable row functions ------------------------------------------------------------------

namespace {

inline int32_t ld(const void* p, size_t i, bool u8) {
  return u8 ? static_cast<const uint8_t*>(p)[i] : static_cast<const int8_t*>(p)[i];
}
inline void st(void* p, size_t i, int32_t v, bool u8) {
  if (u8) static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v);
  else static_cast<int8_t*>(p)[i] = static_cast<int8_t>(v);
}

void add_scalar(const void* a, const void* b, bool b_bcast, size_t n, const Q8AddParams& p, void* y, bool u8) {
  for (size_t i = 0; i < n; ++i) st(y, i, q8_add1(ld(a, i, u8), ld(b, b_bcast ? 0 : i, u8), p), u8);
}
void mul_scalar(const void* a, const void* b, bool b_bcast, size_t n, const Q8MulParams& p, void* y, bool u8) {
  for (size_t i = 0; i < n; ++i) st(y, i, q8_mul1(ld(a, i, u8), ld(b, b_bcast ? 0 : i, u8), p), u8);
}
void rescale_scalar(const void* x, size_t n, const Q8RescaleParams& p, void* y, bool u8) {
  for (size_t i = 0; i < n; ++i) st(y, i, q8_rescale1(ld(x, i, u8), p), u8);
}
int64_t sum_scalar(const void* x, size_t n, bool u8) {
  int64_t s = 0;
  for (size_t i = 0; i < n; ++i) s += ld(x, i, u8);
  return s;
}
void max_row_scalar(void* dst, const void* src, size_t n, bool u8) {
  for (size_t i = 0; i < n; ++i) st(dst, i, std::max(ld(dst, i, u8), ld(src, i, u8)), u8);
}
void acc_row_scalar(int32_t* acc, const void* x, size_t n, int32_t zp, bool u8) {
  for (size_t i = 0; i < n; ++i) acc[i] += ld(x, i, u8) - zp;
}
void favg_row_scalar(float* acc, const void* x, size_t n, float scale, int32_t zp, bool u8) {
  for (size_t i = 0; i < n; ++i) acc[i] = acc[i] + quant::rounded_product(scale, static_cast<float>(ld(x, i, u8) - zp));
}
void deinterleave2_scalar(const void* src, size_t n, void* even, void* odd) {
  const uint8_t* s = static_cast<const uint8_t*>(src);
  for (size_t j = 0; j < n; ++j) {
    static_cast<uint8_t*>(even)[j] = s[2 * j];
    static_cast<uint8_t*>(odd)[j] = s[2 * j + 1];
  }
}

}  // namespace

const Q8ElemIsa kQ8ElemScalar = {"scalar",       add_scalar,     mul_scalar,           rescale_scalar, sum_scalar,
                                 max_row_scalar, acc_row_scalar, deinterleave2_scalar, false,
                                 favg_row_scalar};

// ---- state -------------------------------------------------------------------------------------

struct Q8ElemState {
  const Q8ElemIsa* isa = nullptr;
};

const Q8ElemIsa& q8_state_isa(const void* state) { return *static_cast<const Q8ElemState*>(state)->isa; }

Status q8_run_reference(KernelContext& ctx) {
  const Kernel* ref = kernel_registry().find(ctx.op_type, key_of(ctx.inputs, ctx.num_inputs), Isa::Scalar);
  if (!ref || !ref->run) return ctx.error("no reference kernel");
  return ref->run(ctx);
}

namespace {

Q8Mult split(const quant::Multiplier& m) {
  Q8Mult r;
  r.q = static_cast<int32_t>(m.q);
  r.left = m.shift > 0 ? m.shift : 0;
  r.right = m.shift < 0 ? -m.shift : 0;
  return r;
}

bool same_q8_dtype(const KernelContext& ctx) {
  const DType d = ctx.inputs[0].dtype;
  if (d != DType::I8 && d != DType::U8) return false;
  for (int i = 0; i < ctx.num_inputs; ++i)
    if (ctx.inputs[i].dtype != d) return false;
  return ctx.num_outputs >= 1 && ctx.outputs[0].dtype == d;
}

// ---- Add / Mul ---------------------------------------------------------------------------------

enum class Plan { kUnknown, kNone, kSame, kScalar, kRows, kChannel };

struct BinPlan {
  Plan kind = Plan::kNone;
  bool swap = false;  // input 1 is the full operand
  int64_t n = 0, outer = 1, mid = 1, inner = 1;
};

BinPlan plan_binary(const TensorView& a, const TensorView& b) {
  BinPlan p;
  if (a.rank < 0 || b.rank < 0 || a.rank > kMaxRank || b.rank > kMaxRank) return p;
  const int r = std::max(a.rank, b.rank);
  int64_t da[kMaxRank], db[kMaxRank], dy[kMaxRank];
  for (int d = 0; d < r; ++d) {
    int ia = d - (r - a.rank), ib = d - (r - b.rank);
    da[d] = ia >= 0 ? a.dims[ia] : 1;
    db[d] = ib >= 0 ? b.dims[ib] : 1;
    if (da[d] < 0 || db[d] < 0) {
      p.kind = Plan::kUnknown;
      return p;
    }
    dy[d] = da[d] == 1 ? db[d] : da[d];
  }
  int64_t n = 1, na = 1, nb = 1;
  for (int d = 0; d < r; ++d) {
    n *= dy[d];
    na *= da[d];
    nb *= db[d];
  }
  p.n = n;
  if (n == 0) {  // nothing to compute (the core calls no kernel for an empty output)
    p.kind = Plan::kSame;
    return p;
  }
  const int64_t* other;
  if (na == n && nb == n) {
    p.kind = Plan::kSame;
    return p;
  } else if (na == n) {
    other = db;
  } else if (nb == n) {
    other = da;
    p.swap = true;
  } else {
    return p;
  }
  if ((p.swap ? na : nb) == 1) {
    p.kind = Plan::kScalar;
    return p;
  }
  int d0 = 0, d1 = r - 1;
  while (other[d0] == 1) ++d0;
  while (other[d1] == 1) --d1;
  for (int d = d0; d <= d1; ++d)
    if (other[d] != dy[d]) return p;
  p.outer = p.mid = p.inner = 1;
  for (int d = 0; d < d0; ++d) p.outer *= dy[d];
  for (int d = d0; d <= d1; ++d) p.mid *= dy[d];
  for (int d = d1 + 1; d < r; ++d) p.inner *= dy[d];
  p.kind = p.inner == 1 ? Plan::kRows : Plan::kChannel;
  return p;
}

constexpr int64_t kBlock = 8192;  // elements per parallel chunk of a same/scalar plan

// fn(a, b, b_bcast, n, y) over the plan's rows, in parallel.
template <typename F>
void run_plan(const KernelContext& ctx, const BinPlan& p, const uint8_t* a, const uint8_t* b, uint8_t* y, F&& fn) {
  switch (p.kind) {
    case Plan::kSame:
    case Plan::kScalar: {
      const bool bc = p.kind == Plan::kScalar;
      ctx.parallel_for((p.n + kBlock - 1) / kBlock, [&](int64_t b0, int64_t b1, int) {
        const int64_t i0 = b0 * kBlock, i1 = std::min(p.n, b1 * kBlock);
        fn(a + i0, bc ? b : b + i0, bc, static_cast<size_t>(i1 - i0), y + i0);
      });
      break;
    }
    case Plan::kRows:
      ctx.parallel_for(p.outer, [&](int64_t r0, int64_t r1, int) {
        for (int64_t r = r0; r < r1; ++r) fn(a + r * p.mid, b, false, static_cast<size_t>(p.mid), y + r * p.mid);
      });
      break;
    case Plan::kChannel:
      ctx.parallel_for(p.outer * p.mid, [&](int64_t r0, int64_t r1, int) {
        for (int64_t r = r0; r < r1; ++r)
          fn(a + r * p.inner, b + r % p.mid, true, static_cast<size_t>(p.inner), y + r * p.inner);
      });
      break;
    default:
      break;
  }
}

bool binary_supports(const KernelContext& ctx) {
  if (ctx.num_inputs != 2 || !rq::node_quantized(ctx) || !same_q8_dtype(ctx)) return false;
  KernelContext c = ctx;
  rq::BinaryQ q;
  if (!rq::binary_rules(c, &q).ok()) return false;
  return plan_binary(ctx.inputs[0], ctx.inputs[1]).kind != Plan::kNone;
}

Status binary_run(KernelContext& ctx) {
  const BinPlan p = plan_binary(ctx.inputs[0], ctx.inputs[1]);
  if (p.kind == Plan::kNone || p.kind == Plan::kUnknown) return q8_run_reference(ctx);
  rq::BinaryQ q;
  Status s = rq::binary_rules(ctx, &q);
  if (!s.ok()) return s;
  const Q8ElemIsa& isa = q8_state_isa(*ctx.state);
  const bool u8 = ctx.inputs[0].dtype == DType::U8;
  const uint8_t* a = static_cast<const uint8_t*>(ctx.inputs[0].data);
  const uint8_t* b = static_cast<const uint8_t*>(ctx.inputs[1].data);
  uint8_t* y = static_cast<uint8_t*>(ctx.outputs[0].data);
  int32_t za = static_cast<int32_t>(q.a.zp), zb = static_cast<int32_t>(q.b.zp);
  if (p.swap) {
    std::swap(a, b);
    std::swap(za, zb);
  }
  if (ctx.op_type == fb::OpType_Add) {
    Q8AddParams ap;
    ap.za = za;
    ap.zb = zb;
    ap.ma = split(p.swap ? q.mb : q.ma);
    ap.mb = split(p.swap ? q.ma : q.mb);
    ap.my = split(q.my);
    ap.zy = static_cast<int32_t>(q.y.zp);
    ap.lo = static_cast<int32_t>(q.lo);
    ap.hi = static_cast<int32_t>(q.hi);
    run_plan(ctx, p, a, b, y, [&](const void* pa, const void* pb, bool bc, size_t n, void* py) {
      isa.add(pa, pb, bc, n, ap, py, u8);
    });
  } else {
    Q8MulParams mp;
    mp.za = za;
    mp.zb = zb;
    mp.my = split(q.my);
    mp.zy = static_cast<int32_t>(q.y.zp);
    mp.lo = static_cast<int32_t>(q.lo);
    mp.hi = static_cast<int32_t>(q.hi);
    run_plan(ctx, p, a, b, y, [&](const void* pa, const void* pb, bool bc, size_t n, void* py) {
      isa.mul(pa, pb, bc, n, mp, py, u8);
    });
  }
  return Status::Ok();
}

// ---- Relu: Rescale, then max(., zp_y) = the Rescale clamped to [max(lo, zp_y), hi] ----------

bool relu_supports(const KernelContext& ctx) {
  if (ctx.num_inputs != 1 || !rq::node_quantized(ctx) || !same_q8_dtype(ctx)) return false;
  KernelContext c = ctx;
  rq::Rescale r;
  return rq::relu_rules(c, &r).ok();
}

Status relu_run(KernelContext& ctx) {
  rq::Rescale r;
  Status s = rq::relu_rules(ctx, &r);
  if (!s.ok()) return s;
  Q8RescaleParams p;
  p.copy = r.copy;
  p.zx = static_cast<int32_t>(r.zp);
  p.m = split(r.m);
  p.zy = static_cast<int32_t>(r.zp_y);
  p.lo = static_cast<int32_t>(std::max(r.lo, r.zp_y));
  p.hi = static_cast<int32_t>(r.hi);
  const Q8ElemIsa& isa = q8_state_isa(*ctx.state);
  const bool u8 = ctx.inputs[0].dtype == DType::U8;
  const uint8_t* x = static_cast<const uint8_t*>(ctx.inputs[0].data);
  uint8_t* y = static_cast<uint8_t*>(ctx.outputs[0].data);
  const int64_t n = ctx.inputs[0].numel();
  uint8_t lut[256];
  if (isa.rescale_lut && !p.copy && n >= kQ8LutMinElements) {
    q8_rescale_lut(p, u8, lut);
    p.lut = lut;
  }
  ctx.parallel_for((n + kBlock - 1) / kBlock, [&](int64_t b0, int64_t b1, int) {
    const int64_t i0 = b0 * kBlock, i1 = std::min(n, b1 * kBlock);
    isa.rescale(x + i0, static_cast<size_t>(i1 - i0), p, y + i0, u8);
  });
  return Status::Ok();
}

// ---- Clip: min(max(x, lo), hi) on the integers (the element-moving rule: exact with or
// without quantization parameters, which the shape function checks are unchanged)

bool clip_supports(const KernelContext& ctx) {
  if (ctx.num_inputs < 1 || ctx.num_outputs != 1) return false;
  const DType d = ctx.inputs[0].dtype;
  if ((d != DType::I8 && d != DType::U8) || ctx.outputs[0].dtype != d) return false;
  for (int i = 1; i < ctx.num_inputs; ++i)
    if (ctx.inputs[i].present() && ctx.inputs[i].dtype != d) return false;
  return true;
}

Status clip_run(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  const bool u8 = x.dtype == DType::U8;
  Q8RescaleParams p;  // copy: clamp to [lo, hi]
  p.lo = u8 ? 0 : -128;
  p.hi = u8 ? 255 : 127;
  for (int i = 1; i < 3 && i < ctx.num_inputs; ++i) {
    const TensorView& v = ctx.inputs[i];
    if (!v.present()) continue;
    if (v.numel() != 1) return q8_run_reference(ctx);
    (i == 1 ? p.lo : p.hi) = u8 ? v.as<uint8_t>()[0] : v.as<int8_t>()[0];
  }
  // np.minimum(np.maximum(x, lo), hi): with lo > hi every element is hi
  if (p.lo > p.hi) p.lo = p.hi;
  const Q8ElemIsa& isa = q8_state_isa(*ctx.state);
  const uint8_t* px = static_cast<const uint8_t*>(x.data);
  uint8_t* py = static_cast<uint8_t*>(ctx.outputs[0].data);
  const int64_t n = x.numel();
  ctx.parallel_for((n + kBlock - 1) / kBlock, [&](int64_t b0, int64_t b1, int) {
    const int64_t i0 = b0 * kBlock, i1 = std::min(n, b1 * kBlock);
    isa.rescale(px + i0, static_cast<size_t>(i1 - i0), p, py + i0, u8);
  });
  return Status::Ok();
}

void release(void* state) { delete static_cast<Q8ElemState*>(state); }

void add_kernel(KernelRegistry& r, OpType op, std::initializer_list<KernelKey> keys, Isa isa, const std::string& name,
                bool (*supports)(const KernelContext&), Status (*prepare)(KernelContext&),
                size_t (*scratch)(const KernelContext&), Status (*run)(KernelContext&)) {
  static std::deque<std::string> names;  // kernel names live as long as the registry
  names.push_back(name);
  Kernel k;
  k.name = names.back().c_str();
  k.supports = supports;
  k.prepare = prepare;
  k.release = release;
  k.scratch_bytes = scratch;
  k.run = run;
  for (const KernelKey& key : keys) r.add(op, key, isa, k);
}

}  // namespace

Status q8_elem_prepare(KernelContext& ctx, const Q8ElemIsa& isa) {
  Q8ElemState* st = new Q8ElemState();
  st->isa = &isa;
  *ctx.state = st;
  return Status::Ok();
}

void q8_elem_register(KernelRegistry& registry, Isa isa, const char* suffix, Status (*prepare)(KernelContext&)) {
  const std::string sx = suffix;
  const KernelKey i8{DType::I8, DType::Any}, u8{DType::U8, DType::Any};
  const KernelKey i8i8{DType::I8, DType::I8}, u8u8{DType::U8, DType::U8};
  add_kernel(registry, fb::OpType_Add, {i8i8, u8u8}, isa, "add_q8_" + sx, binary_supports, prepare, nullptr,
             binary_run);
  add_kernel(registry, fb::OpType_Mul, {i8i8, u8u8}, isa, "mul_q8_" + sx, binary_supports, prepare, nullptr,
             binary_run);
  add_kernel(registry, fb::OpType_Relu, {i8, u8}, isa, "relu_q8_" + sx, relu_supports, prepare, nullptr, relu_run);
  add_kernel(registry, fb::OpType_Clip, {i8, u8}, isa, "clip_q8_" + sx, clip_supports, prepare, nullptr, clip_run);
  add_kernel(registry, fb::OpType_Concat, {i8, u8}, isa, "concat_q8_" + sx, q8_concat_supports, prepare, nullptr,
             q8_concat_run);
  add_kernel(registry, fb::OpType_MaxPool, {i8, u8}, isa, "maxpool_q8_" + sx, q8_maxpool_supports, prepare,
             q8_pool_scratch_bytes, q8_maxpool_run);
  add_kernel(registry, fb::OpType_AveragePool, {i8, u8}, isa, "avgpool_q8_" + sx, q8_avgpool_supports, prepare,
             q8_pool_scratch_bytes, q8_avgpool_run);
  add_kernel(registry, fb::OpType_GlobalAveragePool, {i8, u8}, isa, "gavgpool_q8_" + sx, q8_gavgpool_supports,
             prepare, nullptr, q8_gavgpool_run);
  add_kernel(registry, fb::OpType_GlobalMaxPool, {i8, u8}, isa, "gmaxpool_q8_" + sx, q8_gmaxpool_supports,
             prepare, nullptr, q8_gmaxpool_run);
}

}  // namespace q8
}  // namespace mobrt
