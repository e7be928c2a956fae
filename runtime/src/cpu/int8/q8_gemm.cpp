// q8_gemm.cpp: the portable int8 GEMM driver and its op glue (Conv, Gemm, MatMul),
// parametrized by an instruction set's Q8Isa (q8_gemm.h). No intrinsics here.
//
// C[M, N] = init[M] + A[M, K] x B[K, N]:
//   Conv    A = W of one group (M = its output channels, K = C/group * kernel taps),
//           B = the group's input rows: NCHW rows directly (1x1, stride 1, no pads)
//           or im2col rows with zero-point padding, packed per column block.
//   Gemm / MatMul (constant B): A = the weights transposed (M = output columns), B = the
//           activation rows transposed (N = rows of A), so the output is C transposed.
// prepare packs A once (the ukernel's MR/KR/a_type), computes init = bias - zb *
// rowsum(A) and the per-row Q8Requant, and proves that no true sum leaves int32.
// run packs B per column block (NB columns, L2-sized) and sweeps the MR panels of A
// over it; the tasks (column block x row chunk) depend only on the sizes, so the
// result is the same for every thread count (it is exact anyway).
#include "cpu/int8/q8_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cpu/reference/quant_params.h"
#include "cpu/reference/window.h"

namespace mobrt {
namespace q8 {
namespace {

namespace rq = ::mobrt::ref::q8;
using ref::Window;
using ref::Shape;
namespace fb = ::mobconv::formats::fb;

constexpr int kMaxTables = 4;
constexpr int kSlots = static_cast<int>(Isa::Count) * kMaxTables;
constexpr size_t kBBlockBytes = 192 * 1024;  // target size of one packed B column block
constexpr int64_t kMaxBlockCols = 512;
constexpr int64_t kRowChunk = 64;             // rows per task (rounded up to MR)

struct Slot {
  Q8Isa table;
  std::string conv_name, gemm_name, matmul_name;
  bool used = false;
};
Slot g_slots[kSlots];

enum class OpKind { Conv, Gemm, MatMul };

struct Aligned {
  void* p = nullptr;
  size_t bytes = 0;
  ~Aligned() { std::free(p); }
  bool alloc(size_t n) {
    bytes = (n + 63) / 64 * 64;
    // posix_memalign, not aligned_alloc: bionic has that only from Android API 28
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) p = nullptr;
    if (p) std::memset(p, 0, bytes ? bytes : 64);
    return p != nullptr;
  }
};

// Everything prepare computes; run reads it.
struct Plan {
  const Q8Isa* isa = nullptr;
  OpKind op = OpKind::Conv;
  int64_t M = 0;       // rows of C over all groups (Conv: output channels)
  int64_t groups = 1, mg = 0;  // rows per group
  int64_t K = 0;       // reduction per group
  int64_t kgroups = 0; // ceil(K / KR)
  int64_t panels = 0;  // A panels per group
  size_t panel_bytes = 0;
  Aligned a;
  std::vector<int32_t> init;       // M (wrapping int32)
  std::vector<Q8Requant> requant;  // M
  // activations
  bool x_u8 = false, y_u8 = false;
  int32_t zx = 0;
  uint8_t xor_mask = 0;  // U8/S8 B: raw byte ^ mask is the packed value
  // Conv
  Shape kernel;
  // Gemm
  bool trans_a = false;
};

Q8Operand b_of(const Q8Isa& t) { return t.gemm.b_type; }

// ---- rules: which nodes this kernel takes ---------------------------------------------

// The weight matrix A[m][k] (already zero-point-removed) of the node as the driver sees
// it, with its bias, or a refusal. For Conv, A is all groups stacked (M x K per group).
struct Weights {
  int64_t M = 0, K = 0, groups = 1;
  std::vector<int32_t> a;     // M * K
  std::vector<int64_t> bias;  // M
  rq::OutRequant r;
  rq::PerTensor x;
  bool keep = true;      // store `a` (prepare); supports only needs the two flags below
  bool bound_ok = true;  // every row: |bias| + sum |a| * 255 <= 2^31 - 1
  bool fits_s8 = true;   // every a in [-128, 127]

  // Row c of A: a(k) gives A[c][k]; accumulates the exactness facts and stores the row.
  template <typename F>
  void row(int64_t c, F&& a) {
    int64_t abs_sum = 0;
    int32_t mn = 0, mx = 0;
    int32_t* dst = keep ? this->a.data() + c * K : nullptr;
    for (int64_t k = 0; k < K; ++k) {
      const int32_t v = a(k);
      if (dst) dst[k] = v;
      abs_sum += v < 0 ? -v : v;
      mn = std::min(mn, v);
      mx = std::max(mx, v);
    }
    if ((bias[c] < 0 ? -bias[c] : bias[c]) + abs_sum * 255 > quant::kInt32Max) bound_ok = false;
    if (mn < -128 || mx > 127) fits_s8 = false;
  }
};

bool weights_of(KernelContext& ctx, OpKind op, Weights* w) {
  const TensorView& x = ctx.inputs[0];
  if (ctx.num_inputs < 2 || !ctx.inputs[1].present() || !ctx.inputs[1].is_constant || !ctx.inputs[1].data) return false;
  if (x.dtype != DType::I8 && x.dtype != DType::U8) return false;
  if (ctx.num_outputs < 1 || (ctx.outputs[0].dtype != DType::I8 && ctx.outputs[0].dtype != DType::U8)) return false;
  const TensorView& wt = ctx.inputs[1];
  if (wt.dtype != DType::I8 && wt.dtype != DType::U8) return false;
  const bool has_bias = ctx.num_inputs > 2 && ctx.inputs[2].present();
  if (has_bias && (!ctx.inputs[2].is_constant || !ctx.inputs[2].data || ctx.inputs[2].dtype != DType::I32)) return false;
  const int32_t* bias = has_bias ? ctx.inputs[2].as<int32_t>() : nullptr;
  const QuantParams* wq = wt.quant;
  if (!wq) return false;
  auto wval = [&](int64_t i) -> int32_t {
    return wt.dtype == DType::I8 ? static_cast<int32_t>(wt.as<int8_t>()[i]) : static_cast<int32_t>(wt.as<uint8_t>()[i]);
  };
  if (op == OpKind::Conv) {
    if (!rq::conv_rules(ctx, &w->x, &w->r).ok()) return false;
    if (wt.rank < 3 || wt.rank > 5 || x.rank != wt.rank) return false;
    const int64_t g = ctx.attrs->get_int("group", 1);
    const int64_t m = wt.dims[0], cg = wt.dims[1];
    if (g < 1 || m % g != 0 || m < 1 || cg < 1) return false;
    if (g > 1 && cg == 1 && m == g) return false;  // depthwise: the q8_dwconv kernels' nodes
    if (x.dims[1] >= 0 && x.dims[1] != cg * g) return false;
    int64_t ksz = 1;
    for (int d = 2; d < wt.rank; ++d) ksz *= wt.dims[d];
    w->M = m;
    w->K = cg * ksz;
    w->groups = g;
    if (has_bias && ctx.inputs[2].numel() != m) return false;
    if (w->keep) w->a.resize(static_cast<size_t>(m * w->K));
    w->bias.assign(static_cast<size_t>(m), 0);
    for (int64_t c = 0; c < m; ++c) {
      const int32_t zw = static_cast<int32_t>(rq::zp_at(*wq, wq->count == 1 ? 0 : static_cast<int>(c)));
      if (bias) w->bias[c] = bias[c];
      const int64_t base = c * w->K;
      w->row(c, [&](int64_t k) { return wval(base + k) - zw; });
    }
    return true;
  }
  const bool gemm = op == OpKind::Gemm;
  if (!rq::matmul_rules(ctx, gemm, &w->x, &w->r).ok()) return false;
  if (wt.rank != 2) return false;
  const bool tb = gemm && ctx.attrs->get_int("transB", 0) != 0;
  const int64_t K = tb ? wt.dims[1] : wt.dims[0], n = tb ? wt.dims[0] : wt.dims[1];
  if (gemm && x.rank != 2) return false;
  if (!gemm && x.rank < 1) return false;
  if (K < 1 || n < 1) return false;
  w->M = n;
  w->K = K;
  if (w->keep) w->a.resize(static_cast<size_t>(n * K));
  w->bias.assign(static_cast<size_t>(n), 0);
  const bool bias_per_col = bias && ctx.inputs[2].numel() != 1;
  for (int64_t c = 0; c < n; ++c) {
    const int32_t zw = static_cast<int32_t>(rq::zp_at(*wq, wq->count == 1 ? 0 : static_cast<int>(c)));
    if (bias) w->bias[c] = bias[bias_per_col ? c : 0];
    w->row(c, [&](int64_t k) { return wval(tb ? c * K + k : k * n + c) - zw; });
  }
  return true;
}

// The packed operands' domain: b = raw ^ xor_mask (bytes) or raw - zx (S16); zb is the
// zero point in that domain.
int64_t zb_of(Q8Operand b, bool x_u8, int64_t zx) {
  if (b == Q8Operand::S16) return 0;
  if (b == Q8Operand::U8) return x_u8 ? zx : zx + 128;
  return x_u8 ? zx - 128 : zx;
}

// The exactness proof (int8_design.md): the true sum |bias| + sum |a| * 255 of every
// row fits in int32, and every a fits the packed A type.
bool exact(const Weights& w, Q8Operand a_type) { return w.bound_ok && (a_type != Q8Operand::S8 || w.fits_s8); }

bool supports_impl(const KernelContext& cctx, const Q8Isa& t, OpKind op) {
  KernelContext ctx = cctx;
  Weights w;
  w.keep = false;
  if (!weights_of(ctx, op, &w)) return false;
  return exact(w, t.gemm.a_type);
}

template <typename T>
void pack_a_panel(const int32_t* a, int64_t rows, int64_t K, int mr, int kr, int64_t kgroups, T* dst) {
  for (int64_t g = 0; g < kgroups; ++g)
    for (int r = 0; r < mr; ++r)
      for (int j = 0; j < kr; ++j) {
        const int64_t k = g * kr + j;
        dst[(g * mr + r) * kr + j] = r < rows && k < K ? static_cast<T>(a[r * K + k]) : T(0);
      }
}

Status prepare_impl(KernelContext& ctx, const Q8Isa& t, OpKind op) {
  Weights w;
  if (!weights_of(ctx, op, &w) || !exact(w, t.gemm.a_type))
    return ctx.error("the int8 GEMM kernel " + std::string(t.suffix) + " does not take this node");
  Plan* p = new Plan();
  p->isa = &t;
  p->op = op;
  p->M = w.M;
  p->groups = w.groups;
  p->mg = w.M / w.groups;
  p->K = w.K;
  const Q8GemmUkernel& uk = t.gemm;
  p->kgroups = (w.K + uk.kr - 1) / uk.kr;
  p->panels = (p->mg + uk.mr - 1) / uk.mr;
  const size_t esz = q8_operand_size(uk.a_type);
  p->panel_bytes = (static_cast<size_t>(p->kgroups) * uk.mr * uk.kr * esz + 63) / 64 * 64;
  if (!p->a.alloc(p->panel_bytes * static_cast<size_t>(p->panels * p->groups))) {
    delete p;
    return Status::Error(StatusCode::kOutOfMemory, ctx.error("out of memory packing int8 weights").message);
  }
  const TensorView& x = ctx.inputs[0];
  p->x_u8 = x.dtype == DType::U8;
  p->y_u8 = ctx.outputs[0].dtype == DType::U8;
  p->zx = static_cast<int32_t>(w.x.zp);
  const Q8Operand bt = b_of(t);
  p->xor_mask = (bt == Q8Operand::U8 && !p->x_u8) || (bt == Q8Operand::S8 && p->x_u8) ? 0x80 : 0;
  const int64_t zb = zb_of(bt, p->x_u8, w.x.zp);
  p->init.resize(static_cast<size_t>(w.M));
  p->requant.resize(static_cast<size_t>(w.M));
  for (int64_t gi = 0; gi < p->groups; ++gi)
    for (int64_t pi = 0; pi < p->panels; ++pi) {
      const int64_t r0 = gi * p->mg + pi * uk.mr;
      const int64_t rows = std::min<int64_t>(uk.mr, (gi + 1) * p->mg - r0);
      char* dst = static_cast<char*>(p->a.p) + (gi * p->panels + pi) * p->panel_bytes;
      if (uk.a_type == Q8Operand::S16)
        pack_a_panel(w.a.data() + r0 * w.K, rows, w.K, uk.mr, uk.kr, p->kgroups, reinterpret_cast<int16_t*>(dst));
      else
        pack_a_panel(w.a.data() + r0 * w.K, rows, w.K, uk.mr, uk.kr, p->kgroups, reinterpret_cast<int8_t*>(dst));
    }
  for (int64_t c = 0; c < w.M; ++c) {
    int64_t sum = 0;
    for (int64_t k = 0; k < w.K; ++k) sum += w.a[c * w.K + k];
    const uint32_t v = static_cast<uint32_t>(w.bias[c]) - static_cast<uint32_t>(zb) * static_cast<uint32_t>(sum);
    p->init[c] = static_cast<int32_t>(v);
    Q8Requant& r = p->requant[c];
    const size_t i = static_cast<size_t>(c);
    r.float32 = w.r.float32;
    if (w.r.float32) {
      r.fscale = w.r.fscale[w.r.fscale.size() == 1 ? 0 : i];
    } else {
      const quant::Multiplier& m = w.r.mult[w.r.mult.size() == 1 ? 0 : i];
      r.q = static_cast<int32_t>(m.q);
      r.shift = m.shift;
    }
    r.zp = static_cast<int32_t>(w.r.zp);
    r.lo = static_cast<int32_t>(w.r.lo);
    r.hi = static_cast<int32_t>(w.r.hi);
  }
  if (op == OpKind::Conv) p->kernel.assign(ctx.inputs[1].dims + 2, ctx.inputs[1].dims + ctx.inputs[1].rank);
  p->trans_a = op == OpKind::Gemm && ctx.attrs->get_int("transA", 0) != 0;
  *ctx.state = p;
  return Status::Ok();
}

void release(void* state) { delete static_cast<Plan*>(state); }

// ---- B: the activation operand -------------------------------------------------------------

// Where the raw (input dtype) values of B[k][n] come from.
struct BSource {
  enum Kind { Rows, Im2col, Transposed } kind = Rows;
  const uint8_t* x = nullptr;  // raw bytes of the group's / matrix's activation
  int64_t row_stride = 0;      // Rows: bytes between rows k; Transposed: bytes between columns n (= K)
  // Im2col
  const Window* win = nullptr;
  int64_t isz = 0, ksz = 0;
  uint8_t pad = 0;             // raw zero point
  const struct Tap* taps = nullptr;  // ksz entries
  Q8Gather2Fn gather2 = nullptr;     // the ISA's stride-2 gather (null: the portable one)
};

// One kernel tap's constants for im2col (computed once per run, no divisions per row).
struct Tap {
  int64_t k0 = 0, k1 = 0;  // tap offsets in the two outer spatial dims
  int64_t off = 0;         // k2 * d2 - pb2: input column of output column 0
  int64_t vlo = 0, vhi = 0;  // the output columns whose input column is inside the row
};

// Output coordinates (o0, o1, o2) of flat output column n.
struct Pos {
  int64_t o0 = 0, o1 = 0, o2 = 0;
};

// d[a, b) = v (short runs inline: most are one or two padding columns).
inline void fill(uint8_t* d, int64_t a, int64_t b, uint8_t v) {
  if (b - a > 16) {
    std::memset(d + a, v, static_cast<size_t>(b - a));
    return;
  }
  for (int64_t i = a; i < b; ++i) d[i] = v;
}

// d[o] = x[2 * o] for o in [a, b): eight at a time from two 8-byte words (even bytes
// compressed by shifts and masks), reading only bytes up to x[2 * (b - 1)].
inline void gather2(const uint8_t* x, uint8_t* d, int64_t a, int64_t b) {
  int64_t o = a;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  for (; o + 9 <= b; o += 8) {
    uint64_t u, v;
    std::memcpy(&u, x + 2 * o, 8);
    std::memcpy(&v, x + 2 * o + 8, 8);
    u &= 0x00FF00FF00FF00FFull;
    v &= 0x00FF00FF00FF00FFull;
    u = (u | (u >> 8)) & 0x0000FFFF0000FFFFull;
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFFull;
    u = (u | (u >> 16)) & 0x00000000FFFFFFFFull;
    v = (v | (v >> 16)) & 0x00000000FFFFFFFFull;
    const uint64_t r = u | (v << 32);  // little endian: byte i = x[2 * (o + i)]
    std::memcpy(d + o, &r, 8);
  }
#endif
  for (; o < b; ++o) d[o] = x[2 * o];
}

// dst[0, nb) = raw B[k][n0 .. n0 + nb) of an im2col row: output row segments, each a
// run of padding, a copy (memcpy at stride 1) and padding.
void im2col_row(const BSource& s, int64_t ci, const Tap& tp, Pos start, int64_t n0, int64_t nb, uint8_t* dst) {
  const Window& w = *s.win;
  const int64_t k0 = tp.k0, k1 = tp.k1, off = tp.off, vlo = tp.vlo, vhi = tp.vhi;
  const uint8_t* xc = s.x + ci * s.isz;
  const int64_t O1 = w.out[1], O2 = w.out[2];
  const int64_t st = w.s[2];
  // Unit strides and input rows as wide as output rows (e.g. 3x3 pad 1): consecutive
  // output rows read consecutive input rows, so a run of rows is one copy plus the
  // padding columns of each row written over it.
  const bool runs = st == 1 && w.s[1] == 1 && w.in[2] == O2;
  int64_t o2s = start.o2, o1 = start.o1, o0 = start.o0;
  for (int64_t n = n0, end = n0 + nb; n < end;) {
    const int64_t len = std::min(O2 - o2s, end - n);
    uint8_t* d = dst + (n - n0) - o2s;  // d[o2]
    const int64_t i0 = o0 * w.s[0] - w.pb[0] + k0 * w.d[0], i1 = o1 * w.s[1] - w.pb[1] + k1 * w.d[1];
    const int64_t e = o2s + len;
    if (i0 < 0 || i0 >= w.in[0] || i1 < 0 || i1 >= w.in[1]) {
      fill(d, o2s, e, s.pad);
    } else if (runs) {
      const int64_t rows = std::min(O1 - o1, w.in[1] - i1);
      const int64_t span = std::min(end - n, rows * O2 - o2s);  // columns o2s .. o2s + span of d
      const int64_t c_end = o2s + span, last = (c_end - 1) / O2;
      const int64_t c_lo = std::max(o2s, vlo);
      const int64_t v_end = last * O2 + std::min(c_end - last * O2, vhi);
      const uint8_t* xr = xc + (i0 * w.in[1] + i1) * O2 + off;  // xr[c], c across the rows
      if (v_end > c_lo) std::memcpy(d + c_lo, xr + c_lo, static_cast<size_t>(v_end - c_lo));
      for (int64_t r = 0; r <= last; ++r) {
        const int64_t a = r * O2;
        for (int64_t c = std::max(a, o2s), ce = std::min(a + vlo, c_end); c < ce; ++c) d[c] = s.pad;
        for (int64_t c = std::max(a + vhi, o2s), ce = std::min(a + O2, c_end); c < ce; ++c) d[c] = s.pad;
      }
      n += span;
      o1 += c_end / O2;
      o2s = c_end % O2;
      if (o1 == O1) {
        o1 = 0;
        ++o0;
      }
      continue;
    } else {
      const uint8_t* xr = xc + (i0 * w.in[1] + i1) * w.in[2] + off;  // xr[o2 * st]
      const int64_t lo = std::min(std::max(vlo, o2s), e), hi = std::max(std::min(vhi, e), lo);
      fill(d, o2s, lo, s.pad);
      if (st == 1) {
        if (hi > lo) std::memcpy(d + lo, xr + lo, static_cast<size_t>(hi - lo));
      } else if (st == 2) {
        if (s.gather2) s.gather2(xr, d, lo, hi);
        else gather2(xr, d, lo, hi);
      } else {
        for (int64_t o = lo; o < hi; ++o) d[o] = xr[o * st];
      }
      fill(d, hi, e, s.pad);
    }
    n += len;
    o2s = 0;
    if (++o1 == O1) {
      o1 = 0;
      ++o0;
    }
  }
}

struct Packer {
  const Plan* p;
  const BSource* src;
  uint8_t* rowbuf;  // kr rows of row_cap bytes (im2col rows)
  int64_t row_cap;
  const uint8_t* zeros;  // >= block columns bytes of 0

  // Packs the columns [n0, n0 + nb) as one panel of width nrp (layout of q8_gemm.h).
  template <typename T>
  void panel(int64_t n0, int64_t nb, int nrp, int kr, T* dst) const {
    const int64_t K = p->K;
    const uint8_t xm = p->xor_mask;
    const bool s16 = sizeof(T) == 2;
    const int32_t zx = p->zx;
    const bool xu8 = p->x_u8;
    auto conv = [&](uint8_t raw) -> T {
      if (s16) return static_cast<T>((xu8 ? static_cast<int32_t>(raw) : static_cast<int32_t>(static_cast<int8_t>(raw))) - zx);
      return static_cast<T>(raw ^ xm);
    };
    const T zpad = conv(static_cast<uint8_t>(zx));
    if (src->kind == BSource::Transposed) {
      for (int64_t c = 0; c < nb; ++c) {
        const uint8_t* col = src->x + (n0 + c) * src->row_stride;
        for (int64_t g = 0; g < p->kgroups; ++g) {
          T* d = dst + (g * nrp + c) * kr;
          const int64_t k0 = g * kr;
          if (k0 + kr <= K) {
            for (int j = 0; j < kr; ++j) d[j] = conv(col[k0 + j]);
          } else {
            for (int j = 0; j < kr; ++j) d[j] = k0 + j < K ? conv(col[k0 + j]) : T(0);
          }
        }
      }
      for (int64_t c = nb; c < nrp; ++c)
        for (int64_t g = 0; g < p->kgroups; ++g)
          for (int j = 0; j < kr; ++j) dst[(g * nrp + c) * kr + j] = zpad;
      return;
    }
  }

  // Rows / Im2col: the whole block [n0, n0 + nb) at once, one k-group at a time: `full`
  // panels of width NR (the ISA's pack_b when it has one), then the last partial panel
  // of width tail_nr. Panel stride: kgroups * NR * KR elements.
  template <typename T>
  void block(int64_t n0, int64_t nb, int nr, int tail_nr, int kr, Q8PackBFn fast, T* dst) const {
    const int64_t K = p->K;
    const int64_t full = nb / nr, done = full * nr;
    const size_t stride = static_cast<size_t>(p->kgroups) * nr * kr;  // elements
    Q8BConvert cv;
    cv.xor_mask = p->xor_mask;
    cv.x_u8 = p->x_u8;
    cv.zx = p->zx;
    const uint8_t* rows[8];
    Pos start;
    if (src->kind == BSource::Im2col) {
      const int64_t O1 = src->win->out[1], O2 = src->win->out[2];
      start.o2 = n0 % O2;
      start.o1 = n0 / O2 % O1;
      start.o0 = n0 / (O2 * O1);
    }
    int64_t ci = 0, t = 0;  // k = ci * ksz + t, advanced with k
    for (int64_t g = 0; g < p->kgroups; ++g) {
      for (int j = 0; j < kr; ++j) {
        const int64_t k = g * kr + j;
        if (k >= K) {
          rows[j] = zeros;
        } else if (src->kind == BSource::Rows) {
          rows[j] = src->x + k * src->row_stride + n0;
        } else {
          uint8_t* r = rowbuf + j * row_cap;
          im2col_row(*src, ci, src->taps[t], start, n0, nb, r);
          rows[j] = r;
          if (++t == src->ksz) {
            t = 0;
            ++ci;
          }
        }
      }
      T* d = dst + g * nr * kr;
      if (fast && done > 0) {  // done: a multiple of NR (the packers step NR or 16 | NR)
        fast(rows, static_cast<size_t>(done), cv, d, stride * sizeof(T));
      } else {
        for (int64_t q = 0; q < full; ++q) interleave(rows, q * nr, nr, nr, kr, d + q * stride);
      }
      if (done < nb) interleave(rows, done, nb - done, tail_nr, kr, dst + full * stride + g * tail_nr * kr);
    }
  }

  // dst[c * kr + j] = conv(rows[j][c0 + c]) for c < cols; zero-point padding up to nrp.
  template <typename T>
  void interleave(const uint8_t* const* rows, int64_t c0, int64_t cols, int nrp, int kr, T* d) const {
    const uint8_t xm = p->xor_mask;
    const int32_t zx = p->zx;
    const bool xu8 = p->x_u8;
    auto conv = [&](uint8_t raw) -> T {
      if (sizeof(T) == 2)
        return static_cast<T>((xu8 ? static_cast<int32_t>(raw) : static_cast<int32_t>(static_cast<int8_t>(raw))) - zx);
      return static_cast<T>(raw ^ xm);
    };
    const T zpad = conv(static_cast<uint8_t>(zx));
    if (kr == 4) {
      const uint8_t *r0 = rows[0] + c0, *r1 = rows[1] + c0, *r2 = rows[2] + c0, *r3 = rows[3] + c0;
      for (int64_t c = 0; c < cols; ++c) {
        d[c * 4 + 0] = conv(r0[c]);
        d[c * 4 + 1] = conv(r1[c]);
        d[c * 4 + 2] = conv(r2[c]);
        d[c * 4 + 3] = conv(r3[c]);
      }
    } else if (kr == 2) {
      const uint8_t *r0 = rows[0] + c0, *r1 = rows[1] + c0;
      for (int64_t c = 0; c < cols; ++c) {
        d[c * 2 + 0] = conv(r0[c]);
        d[c * 2 + 1] = conv(r1[c]);
      }
    } else {
      for (int64_t c = 0; c < cols; ++c)
        for (int j = 0; j < kr; ++j) d[c * kr + j] = conv(rows[j][c0 + c]);
    }
    for (int64_t c = cols; c < nrp; ++c)
      for (int j = 0; j < kr; ++j) d[c * kr + j] = zpad;
  }
};

// Block geometry of a run (depends only on the sizes and the ukernels).
struct Blocking {
  int64_t nb = 0;         // columns per block (multiple of NR)
  int64_t blocks = 0;     // column blocks
  int64_t mc = 0;         // rows per task (multiple of MR)
  int64_t chunks = 0;     // row chunks per group
  size_t b_bytes = 0, c_bytes = 0, row_bytes = 0, per_thread = 0;
};

Blocking blocking(const Plan& p, int64_t N) {
  const Q8GemmUkernel& uk = p.isa->gemm;
  const size_t esz = q8_operand_size(uk.b_type);
  Blocking b;
  const size_t kbytes = static_cast<size_t>(p.kgroups) * uk.kr * esz;
  int64_t nb = static_cast<int64_t>(kBBlockBytes / std::max<size_t>(kbytes, 1));
  nb = std::min<int64_t>(std::max<int64_t>(nb, uk.nr), kMaxBlockCols);
  nb = std::max<int64_t>(nb / uk.nr * uk.nr, uk.nr);
  const int64_t npad = (N + uk.nr - 1) / uk.nr * uk.nr;
  b.nb = std::min(nb, npad);
  b.blocks = (N + b.nb - 1) / b.nb;
  b.mc = (kRowChunk + uk.mr - 1) / uk.mr * uk.mr;
  b.chunks = (p.mg + b.mc - 1) / b.mc;
  b.b_bytes = (kbytes * static_cast<size_t>(b.nb) + 63) / 64 * 64;
  b.c_bytes = (static_cast<size_t>(uk.mr) * static_cast<size_t>(b.nb) * 4 + 63) / 64 * 64;
  b.row_bytes = (static_cast<size_t>(uk.kr) * static_cast<size_t>(b.nb) * 2 + 63) / 64 * 64;  // rows + zeros
  b.per_thread = b.b_bytes + b.c_bytes + b.row_bytes;
  return b;
}

// One GEMM of one group: rows [0, mg) of group gi, N columns, B from `src`; writes the
// requantized outputs through `store`: Conv y[row * N + n] (row-major) or transposed
// y[n * M + row] (Gemm/MatMul).
void gemm_group(const KernelContext& ctx, const Plan& p, const Blocking& bk, int64_t gi, int64_t N,
                const BSource& src, uint8_t* y, bool transposed_out) {
  const Q8Isa& t = *p.isa;
  const Q8GemmUkernel& uk = t.gemm;
  const bool narrow_ok = t.narrow.fn != nullptr;
  const size_t esz = q8_operand_size(uk.b_type);
  const int64_t tasks = bk.blocks * bk.chunks;
  ctx.parallel_for(tasks, [&](int64_t t0, int64_t t1, int thread) {
    uint8_t* base = static_cast<uint8_t*>(ctx.scratch) + static_cast<size_t>(thread) * bk.per_thread;
    uint8_t* bbuf = base;
    int32_t* cbuf = reinterpret_cast<int32_t*>(base + bk.b_bytes);
    uint8_t* rowbuf = base + bk.b_bytes + bk.c_bytes;
    uint8_t* zeros = rowbuf + static_cast<size_t>(uk.kr) * bk.nb;
    std::memset(zeros, 0, static_cast<size_t>(bk.nb));
    Packer pk{&p, &src, rowbuf, bk.nb, zeros};
    int64_t packed_block = -1;
    // panel layout of the block: full NR panels, the last one narrow when it fits
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t blk = task / bk.chunks, chunk = task % bk.chunks;
      const int64_t n0 = blk * bk.nb, nb = std::min(bk.nb, N - n0);
      const int64_t full = nb / uk.nr, rem = nb % uk.nr;
      const bool fused = !transposed_out && t.gemm_requant != nullptr && full > 0;
      // the last partial panel's kernel: one column, narrow, or the main one
      const Q8GemmUkernel& tail_k = rem == 1 && t.gemv.fn ? t.gemv
                                    : narrow_ok && rem > 0 && rem <= t.narrow.nr ? t.narrow : uk;
      if (packed_block != blk) {
        const int tail_nr = tail_k.nr;
        if (src.kind == BSource::Transposed) {
          size_t off = 0;
          for (int64_t q = 0; q < full + (rem ? 1 : 0); ++q) {
            const int64_t c0 = q * uk.nr, cw = std::min<int64_t>(uk.nr, nb - c0);
            const int nrp = q == full ? tail_nr : uk.nr;
            if (esz == 2)
              pk.panel(n0 + c0, cw, nrp, uk.kr, reinterpret_cast<int16_t*>(bbuf + off));
            else
              pk.panel(n0 + c0, cw, nrp, uk.kr, reinterpret_cast<uint8_t*>(bbuf + off));
            off += static_cast<size_t>(p.kgroups) * nrp * uk.kr * esz;
          }
        } else if (esz == 2) {
          pk.block(n0, nb, uk.nr, tail_nr, uk.kr, t.pack_b, reinterpret_cast<int16_t*>(bbuf));
        } else {
          pk.block(n0, nb, uk.nr, tail_nr, uk.kr, t.pack_b, reinterpret_cast<uint8_t*>(bbuf));
        }
        packed_block = blk;
      }
      const int64_t r_end = std::min(p.mg, (chunk + 1) * bk.mc);
      for (int64_t r0 = chunk * bk.mc; r0 < r_end; r0 += uk.mr) {
        const int64_t mr = std::min<int64_t>(uk.mr, p.mg - r0);
        const int64_t row = gi * p.mg + r0;  // row of C over all groups
        const void* apanel = static_cast<const char*>(p.a.p) + (gi * p.panels + r0 / uk.mr) * p.panel_bytes;
        const int32_t* init = p.init.data() + row;
        size_t off = 0;
        int64_t q0 = 0;  // the first panel that goes through cbuf
        if (fused) {     // the full panels: tile and requant in one step, straight to y
          const size_t stride = static_cast<size_t>(p.kgroups) * uk.nr * uk.kr * esz;
          t.gemm_requant(static_cast<size_t>(p.kgroups), apanel, bbuf, stride, static_cast<size_t>(full),
                         y + row * N + n0, static_cast<size_t>(N), static_cast<size_t>(mr), init,
                         p.requant.data() + row, p.y_u8);
          off = stride * static_cast<size_t>(full);
          q0 = full;
        }
        for (int64_t q = q0; q < full + (rem ? 1 : 0); ++q) {
          const int64_t c0 = q * uk.nr, cw = std::min<int64_t>(uk.nr, nb - c0);
          const Q8GemmUkernel& k = q == full ? tail_k : uk;
          k.fn(static_cast<size_t>(p.kgroups), apanel, bbuf + off, cbuf + c0, static_cast<size_t>(bk.nb),
               static_cast<size_t>(mr), static_cast<size_t>(cw), init);
          off += static_cast<size_t>(p.kgroups) * k.nr * uk.kr * esz;
        }
        if (!transposed_out) {
          const int64_t c0 = q0 * uk.nr;  // columns not requantized by the fused kernel
          if (c0 < nb)
            for (int64_t r = 0; r < mr; ++r)
              t.requant_row(cbuf + r * bk.nb + c0, static_cast<size_t>(nb - c0), p.requant[row + r],
                            y + (row + r) * N + n0 + c0, p.y_u8);
        } else {
          for (int64_t r = 0; r < mr; ++r) {
            const Q8Requant& rqr = p.requant[row + r];
            const int32_t* cr = cbuf + r * bk.nb;
            for (int64_t c = 0; c < nb; ++c) {
              const int64_t v = rqr.apply(cr[c]);
              uint8_t* o = y + (n0 + c) * p.M + row + r;
              *o = static_cast<uint8_t>(p.y_u8 ? static_cast<uint8_t>(v) : static_cast<uint8_t>(static_cast<int8_t>(v)));
            }
          }
        }
      }
    }
  });
}

// ---- the ops ----------------------------------------------------------------------------

Status conv_window(const KernelContext& ctx, const Plan& p, Window* win) {
  return ref::make_window(ctx, ctx.inputs[0], p.kernel, false, win);
}

size_t threads_of(const KernelContext& ctx) { return static_cast<size_t>(std::max(1, ctx.num_threads())); }

int64_t columns_of(const KernelContext& ctx, const Plan& p, const Window* win) {
  if (p.op == OpKind::Conv) return win->out[0] * win->out[1] * win->out[2];
  const TensorView& a = ctx.inputs[0];
  if (p.op == OpKind::Gemm) return p.trans_a ? a.dims[1] : a.dims[0];
  return p.K > 0 ? a.numel() / p.K : 0;
}

size_t scratch_bytes(const KernelContext& ctx) {
  const Plan* p = static_cast<const Plan*>(*ctx.state);
  if (!p) return 0;
  Window win;
  if (p->op == OpKind::Conv && !conv_window(ctx, *p, &win).ok()) return 0;
  const int64_t N = columns_of(ctx, *p, &win);
  if (N <= 0) return 0;
  return blocking(*p, N).per_thread * threads_of(ctx);
}

Status run(KernelContext& ctx) {
  const Plan& p = *static_cast<const Plan*>(*ctx.state);
  const TensorView& x = ctx.inputs[0];
  uint8_t* y = static_cast<uint8_t*>(ctx.outputs[0].data);
  Window win;
  if (p.op == OpKind::Conv) {
    Status s = conv_window(ctx, p, &win);
    if (!s.ok()) return s;
    if (x.dims[1] != p.K / (win.k[0] * win.k[1] * win.k[2]) * p.groups)
      return ctx.error("input channels do not match the weights");
  } else {
    const int64_t kdim = p.op == OpKind::Gemm ? (p.trans_a ? x.dims[0] : x.dims[1]) : x.dim(-1);
    if (kdim != p.K) return ctx.error("the reduction dims of A and B differ");
  }
  const int64_t N = columns_of(ctx, p, &win);
  if (N <= 0 || ctx.outputs[0].numel() == 0) return Status::Ok();
  const Blocking bk = blocking(p, N);
  if (ctx.scratch_size < bk.per_thread * threads_of(ctx)) return ctx.error("int8 GEMM scratch too small");
  const uint8_t* xd = static_cast<const uint8_t*>(x.data);
  if (p.op != OpKind::Conv) {
    BSource src;
    if (p.trans_a) {
      src.kind = BSource::Rows;
      src.x = xd;
      src.row_stride = N;
    } else {
      src.kind = BSource::Transposed;
      src.x = xd;
      src.row_stride = p.K;
    }
    gemm_group(ctx, p, bk, 0, N, src, y, true);
    return Status::Ok();
  }
  const int64_t isz = win.in[0] * win.in[1] * win.in[2], ksz = win.k[0] * win.k[1] * win.k[2];
  const int64_t cg = p.K / ksz, batch = x.dims[0];
  bool direct = ksz == 1;
  for (int d = 0; d < 3; ++d) direct = direct && win.s[d] == 1 && win.pb[d] == 0 && win.pe[d] == 0;
  std::vector<Tap> taps;
  if (!direct) {
    taps.resize(static_cast<size_t>(ksz));
    const int64_t st = win.s[2];
    for (int64_t t = 0; t < ksz; ++t) {
      Tap& tp = taps[static_cast<size_t>(t)];
      const int64_t k2 = t % win.k[2];
      tp.k1 = t / win.k[2] % win.k[1];
      tp.k0 = t / (win.k[2] * win.k[1]);
      tp.off = k2 * win.d[2] - win.pb[2];
      // 0 <= o2 * st + off < in2  <=>  o2 in [vlo, vhi)
      tp.vlo = tp.off >= 0 ? 0 : (-tp.off + st - 1) / st;
      tp.vhi = std::max(tp.vlo, win.in[2] - tp.off <= 0 ? int64_t(0) : (win.in[2] - tp.off + st - 1) / st);
    }
  }
  for (int64_t ni = 0; ni < batch; ++ni)
    for (int64_t gi = 0; gi < p.groups; ++gi) {
      BSource src;
      src.x = xd + (ni * p.groups * cg + gi * cg) * isz;
      if (direct) {
        src.kind = BSource::Rows;
        src.row_stride = isz;
      } else {
        src.kind = BSource::Im2col;
        src.win = &win;
        src.isz = isz;
        src.ksz = ksz;
        src.pad = static_cast<uint8_t>(p.zx);
        src.taps = taps.data();
        src.gather2 = p.isa->gather2;
      }
      gemm_group(ctx, p, bk, gi, N, src, y + ni * p.M * N, false);
    }
  return Status::Ok();
}

// ---- registration ----------------------------------------------------------------------------

template <int Id>
struct Hooks {
  static bool conv_supports(const KernelContext& c) { return supports_impl(c, g_slots[Id].table, OpKind::Conv); }
  static bool gemm_supports(const KernelContext& c) { return supports_impl(c, g_slots[Id].table, OpKind::Gemm); }
  static bool matmul_supports(const KernelContext& c) { return supports_impl(c, g_slots[Id].table, OpKind::MatMul); }
  static Status conv_prepare(KernelContext& c) { return prepare_impl(c, g_slots[Id].table, OpKind::Conv); }
  static Status gemm_prepare(KernelContext& c) { return prepare_impl(c, g_slots[Id].table, OpKind::Gemm); }
  static Status matmul_prepare(KernelContext& c) { return prepare_impl(c, g_slots[Id].table, OpKind::MatMul); }
};

struct HookSet {
  bool (*supports[3])(const KernelContext&);
  Status (*prepare[3])(KernelContext&);
};

template <int... Ids>
const HookSet* hook_table(std::integer_sequence<int, Ids...>) {
  static const HookSet t[] = {{{&Hooks<Ids>::conv_supports, &Hooks<Ids>::gemm_supports, &Hooks<Ids>::matmul_supports},
                               {&Hooks<Ids>::conv_prepare, &Hooks<Ids>::gemm_prepare, &Hooks<Ids>::matmul_prepare}}...};
  return t;
}

}  // namespace

void register_q8_gemm_kernels(KernelRegistry& registry, Isa isa, const Q8Isa& table) {
  const HookSet* hooks = hook_table(std::make_integer_sequence<int, kSlots>());
  int slot = -1;
  for (int s = 0; s < kMaxTables; ++s) {
    Slot& sl = g_slots[static_cast<int>(isa) * kMaxTables + s];
    if (!sl.used || std::string(sl.table.suffix) == table.suffix) {
      slot = static_cast<int>(isa) * kMaxTables + s;
      break;
    }
  }
  if (slot < 0 || !table.gemm.fn || !table.requant_row) return;
  Slot& sl = g_slots[slot];
  sl.used = true;
  sl.table = table;
  sl.conv_name = std::string("conv_q8_gemm_") + table.suffix;
  sl.gemm_name = std::string("gemm_q8_") + table.suffix;
  sl.matmul_name = std::string("matmul_q8_") + table.suffix;
  const OpType ops[3] = {fb::OpType_Conv, fb::OpType_Gemm, fb::OpType_MatMul};
  const std::string* names[3] = {&sl.conv_name, &sl.gemm_name, &sl.matmul_name};
  // S8 A needs w - zw in int8: any weights dtype is allowed, the node decides (supports).
  const DType acts[2] = {DType::I8, DType::U8}, wts[2] = {DType::I8, DType::U8};
  for (int o = 0; o < 3; ++o) {
    Kernel k;
    k.name = names[o]->c_str();
    k.supports = hooks[slot].supports[o];
    k.prepare = hooks[slot].prepare[o];
    k.release = &release;
    k.scratch_bytes = &scratch_bytes;
    k.run = &run;
    for (DType a : acts)
      for (DType w : wts) registry.add(ops[o], KernelKey{a, w}, isa, k);
  }
}

}  // namespace q8
}  // namespace mobrt
