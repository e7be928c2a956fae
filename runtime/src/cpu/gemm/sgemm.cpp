// Packing and the blocked, multi-threaded SGEMM driver (see gemm.h for the algorithm).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "gemm.h"

namespace mobrt {
namespace cpu {

namespace {

// Cache blocking. KC keeps an MR x KC A micro-panel plus a KC x NR B micro-panel in L1;
// an MC x KC A block stays in L2 while NC columns of B stream past it. Fixed numbers
// (never derived from the thread count) so results do not depend on threading.
constexpr size_t kKc = 256;
constexpr size_t kMcTarget = 168;
constexpr size_t kNcTarget = 512;

size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

// Rows in the K slice starting at pc: at most KC, never crossing a multiple of kseg
// (when kseg != 0), so a slice of B can be one strided block (see SgemmArgs::b_slice).
inline size_t kslice(size_t pc, size_t k, size_t kseg) {
  size_t kc = std::min(kKc, k - pc);
  if (kseg != 0) kc = std::min(kc, kseg - pc % kseg);
  return kc;
}
size_t div_up(size_t x, size_t m) { return (x + m - 1) / m; }

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<float, FreeDeleter>;

AlignedBuffer alloc_floats(size_t n) {
  size_t bytes = round_up(std::max<size_t>(n, 1) * sizeof(float), 64);
  void* p = nullptr;  // posix_memalign, not aligned_alloc: bionic has that only from Android API 28
  if (posix_memalign(&p, 64, bytes) != 0) p = nullptr;
  return AlignedBuffer(static_cast<float*>(p));
}

}  // namespace

void run_tasks(const TaskRunner* runner, int64_t n, void* ctx, void (*fn)(void* ctx, int64_t i)) {
  if (n <= 0) return;
  if (runner == nullptr || runner->parallel_for == nullptr || runner->threads <= 1 || n == 1) {
    for (int64_t i = 0; i < n; ++i) fn(ctx, i);
    return;
  }
  runner->parallel_for(runner->pool, n, ctx, fn);
}

bool act_as_clamp(const Activation& act, float* lo, float* hi) {
  *lo = -__builtin_inff();
  *hi = __builtin_inff();
  switch (act.kind) {
    case ActKind::None:
      return true;
    case ActKind::Relu:
      *lo = 0.f;
      return true;
    case ActKind::Clip:
      // a NaN bound makes every output NaN (np.clip), which a clamp cannot do (it
      // keeps x): then the activation pass runs instead (simd_ops.h activation_impl)
      if (act.a != act.a || act.b != act.b) return false;
      *lo = act.a;
      *hi = act.b;
      return true;
    default:
      return false;
  }
}

size_t sgemm_packed_a_size(const GemmUkernel& uk, size_t m, size_t k) {
  return round_up(m, uk.mr) * k;
}

namespace {
// Packed A layout, K-blocked to match the driver: for each KC-row block kb of K, all MR-row
// panels one after another, each kcb x MR (kcb = rows in that block). So the A data one
// (k block, M block) step of the driver reads is contiguous, which keeps the hardware
// prefetcher streaming when weights come from DRAM.
inline const float* packed_a_panel(const float* packed, size_t mpad, size_t k, size_t kseg,
                                   size_t mr, size_t pc, size_t panel) {
  return packed + pc * mpad + panel * kslice(pc, k, kseg) * mr;
}

void pack_a_panel(size_t mr, size_t m, size_t k, size_t kseg, const float* a, size_t rs, size_t cs,
                  size_t p, float* packed) {
  const size_t mpad = round_up(m, mr);
  const size_t rows = std::min(mr, m - p * mr);
  for (size_t pc = 0; pc < k; pc += kslice(pc, k, kseg)) {
    float* dst = const_cast<float*>(packed_a_panel(packed, mpad, k, kseg, mr, pc, p));
    const size_t kcb = kslice(pc, k, kseg);
    if (cs == 1) {  // row-major source: read rows sequentially, scatter into the panel
      for (size_t r = 0; r < mr; ++r) {
        const float* src = a + (p * mr + r) * rs + pc;
        if (r < rows)
          for (size_t kk = 0; kk < kcb; ++kk) dst[kk * mr + r] = src[kk];
        else
          for (size_t kk = 0; kk < kcb; ++kk) dst[kk * mr + r] = 0.f;
      }
      continue;
    }
    for (size_t kk = 0; kk < kcb; ++kk) {
      const float* src = a + p * mr * rs + (pc + kk) * cs;
      size_t r = 0;
      for (; r < rows; ++r) dst[kk * mr + r] = src[r * rs];
      for (; r < mr; ++r) dst[kk * mr + r] = 0.f;
    }
  }
}
}  // namespace

void sgemm_pack_a(const GemmUkernel& uk, size_t m, size_t k, const float* a, size_t rs,
                  size_t cs, float* packed, size_t kseg) {
  for (size_t p = 0; p < div_up(m, uk.mr); ++p) pack_a_panel(uk.mr, m, k, kseg, a, rs, cs, p, packed);
}

size_t sgemm_packed_b_size(const GemmUkernel& uk, size_t k, size_t n) {
  return round_up(n, uk.nr) * k;
}

namespace {
void pack_b_panel(size_t nr, size_t k, size_t n, const float* b, size_t rs, size_t cs,
                  size_t q, float* packed) {
  float* dst = packed + q * k * nr;
  const size_t cols = std::min(nr, n - q * nr);
  const float* base = b + q * nr * cs;
  if (cs == 1 && cols == nr) {
    for (size_t kk = 0; kk < k; ++kk) std::memcpy(dst + kk * nr, base + kk * rs, nr * sizeof(float));
    return;
  }
  for (size_t kk = 0; kk < k; ++kk) {
    size_t j = 0;
    for (; j < cols; ++j) dst[kk * nr + j] = base[kk * rs + j * cs];
    for (; j < nr; ++j) dst[kk * nr + j] = 0.f;
  }
}
}  // namespace

void sgemm_pack_b(const GemmUkernel& uk, size_t k, size_t n, const float* b, size_t rs,
                  size_t cs, float* packed) {
  for (size_t q = 0; q < div_up(n, uk.nr); ++q) pack_b_panel(uk.nr, k, n, b, rs, cs, q, packed);
}

namespace {

// Per-thread buffer for one packed KC x NC block of B (tasks on a thread run in turn).
float* b_block_buffer(size_t floats) {
  thread_local std::vector<float> buf;
  if (buf.size() < floats + 16) buf.resize(floats + 16);
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
}

struct DriverCtx {
  const GemmUkernel* uk;
  ActivationFn act_fn;
  const SgemmArgs* args;
  size_t mc, nc, m_blocks, n_blocks;
  size_t m_groups;  // M blocks are split into this many contiguous groups (tasks)
  float lo, hi;
  bool clamp_only;
};

// One task: output columns [j0, j1) x rows of m blocks [mb0, mb1).
void gemm_task(void* vctx, int64_t task) {
  const DriverCtx& ctx = *static_cast<const DriverCtx*>(vctx);
  const SgemmArgs& g = *ctx.args;
  const GemmUkernel& uk = *ctx.uk;
  const size_t mr = uk.mr, nr = uk.nr;
  const size_t jb = size_t(task) / ctx.m_groups, grp = size_t(task) % ctx.m_groups;
  const size_t mb0 = grp * ctx.m_blocks / ctx.m_groups, mb1 = (grp + 1) * ctx.m_blocks / ctx.m_groups;
  const size_t j0 = jb * ctx.nc, j1 = std::min(g.n, j0 + ctx.nc);
  const size_t i_begin = mb0 * ctx.mc, i_end = std::min(g.m, mb1 * ctx.mc);
  const size_t mpad = round_up(g.m, mr);
  GemmEpilogue ep;
  ep.bias_mode = g.bias != nullptr ? g.bias_mode : BiasMode::kNone;
  ep.min = ctx.lo;
  ep.max = ctx.hi;
  float* bbuf = g.b_packer != nullptr ? b_block_buffer(std::min(kKc, g.k) * round_up(j1 - j0, nr)) : nullptr;
  size_t pc = 0;
  do {
    const size_t kc = kslice(pc, g.k, g.kseg);
    const bool last = pc + kc == g.k;
    if (bbuf != nullptr && kc > 0) g.b_packer->pack(g.b_packer->ctx, pc, kc, j0, j1 - j0, nr, bbuf);
    for (size_t i0 = i_begin; i0 < i_end; i0 += ctx.mc) {
      const size_t i1 = std::min(i_end, i0 + ctx.mc);
      for (size_t j = j0; j < j1; j += nr) {
        const float* bp = bbuf != nullptr      ? bbuf + (j - j0) * kc
                          : g.b_rows != nullptr  ? g.b_rows + pc * g.ldb + j
                          : g.b_slice != nullptr ? g.b_slice(g.b_slice_ctx, pc) + j
                                                 : g.packed_b + (j / nr) * g.k * nr + pc * nr;
        const size_t ldb = g.b_rows != nullptr || g.b_slice != nullptr ? g.ldb : nr;
        const size_t ncols = std::min(nr, j1 - j);
        for (size_t i = i0; i < i1; i += mr) {
          const float* ap = packed_a_panel(g.packed_a, mpad, g.k, g.kseg, mr, pc, i / mr);
          const size_t nrows = std::min(mr, i1 - i);
          float* c = g.c + i * g.ldc + j;
          if (last && ep.bias_mode != BiasMode::kNone)
            ep.bias = g.bias + (ep.bias_mode == BiasMode::kPerRow ? i : j);
          uk.fn(kc, ap, bp, ldb, c, g.ldc, nrows, ncols, pc > 0 || g.accumulate_c, last ? &ep : nullptr);
          if (last && !ctx.clamp_only)
            for (size_t r = 0; r < nrows; ++r) ctx.act_fn(c + r * g.ldc, ncols, &g.act);
        }
      }
    }
    pc += kc;
  } while (pc < g.k);
}

}  // namespace

void sgemm_packed(const GemmUkernel& uk, ActivationFn act_fn, const SgemmArgs& args,
                  const TaskRunner* runner) {
  if (args.m == 0 || args.n == 0) return;
  DriverCtx ctx;
  ctx.uk = &uk;
  ctx.act_fn = act_fn;
  ctx.args = &args;
  const size_t mr = uk.mr, nr = uk.nr;
  const size_t threads = runner != nullptr && runner->threads > 1 ? size_t(runner->threads) : 1;
  ctx.mc = std::max(mr, kMcTarget / mr * mr);
  ctx.nc = std::max(nr, kNcTarget / nr * nr);
  // With several threads, narrower column blocks (about 4 per thread) balance the static
  // split. Column blocking never changes an element's arithmetic (only the K slicing
  // does), so results stay identical across thread counts.
  if (threads > 1) ctx.nc = std::max(2 * nr, std::min(ctx.nc, round_up(div_up(args.n, 4 * threads), nr)));
  ctx.m_blocks = div_up(args.m, ctx.mc);
  ctx.n_blocks = div_up(args.n, ctx.nc);
  // Parallelism: over column blocks when there are enough of them (each task packs its
  // B block once and sweeps all of M); else also over groups of M blocks, each group
  // packing its own copy of the B block. Either way each output element sees the same
  // arithmetic (blocking never depends on threads), so threads never change results.
  ctx.m_groups = ctx.n_blocks >= 2 * threads ? 1 : std::min(ctx.m_blocks, 2 * threads / ctx.n_blocks + 1);
  if (threads == 1) ctx.m_groups = 1;
  ctx.clamp_only = act_as_clamp(args.act, &ctx.lo, &ctx.hi);
  const size_t tasks = ctx.n_blocks * ctx.m_groups;
  run_tasks(runner, int64_t(tasks), &ctx, gemm_task);
}

namespace {

struct MatrixB {
  const float* b;
  size_t rs, cs, n;
};

void pack_matrix_block(const void* vctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr,
                       float* dst) {
  const MatrixB& m = *static_cast<const MatrixB*>(vctx);
  for (size_t q = 0; q * nr < nc; ++q) {
    const size_t jq = j0 + q * nr;
    pack_b_panel(nr, kc, m.n - jq < nr ? m.n - jq : nr, m.b + k0 * m.rs + jq * m.cs, m.rs, m.cs, 0,
                 dst + q * kc * nr);
  }
}

struct PackACtx {
  const GemmUkernel* uk;
  size_t m, k;
  const float* a;
  size_t rs, cs;
  float* pa;
};
void pack_a_task(void* vctx, int64_t t) {
  const PackACtx& p = *static_cast<const PackACtx*>(vctx);
  pack_a_panel(p.uk->mr, p.m, p.k, 0, p.a, p.rs, p.cs, size_t(t), p.pa);
}

}  // namespace

void sgemm(const GemmUkernel& uk, ActivationFn act_fn, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
           const float* a, size_t lda, const float* b, size_t ldb, float* c, size_t ldc,
           const float* bias, BiasMode bias_mode, const Activation& act,
           const TaskRunner* runner) {
  if (m == 0 || n == 0) return;
  AlignedBuffer pa = alloc_floats(sgemm_packed_a_size(uk, m, k));
  PackACtx p{&uk, m, k, a, trans_a ? 1 : lda, trans_a ? lda : 1, pa.get()};
  run_tasks(runner, int64_t(div_up(m, uk.mr)), &p, pack_a_task);
  MatrixB mb{b, trans_b ? 1 : ldb, trans_b ? ldb : 1, n};
  BPacker packer;
  packer.pack = &pack_matrix_block;
  packer.ctx = &mb;
  SgemmArgs g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.packed_a = pa.get();
  g.b_packer = &packer;
  g.c = c;
  g.ldc = ldc;
  g.bias = bias;
  g.bias_mode = bias_mode;
  g.act = act;
  sgemm_packed(uk, act_fn, g, runner);
}

}  // namespace cpu
}  // namespace mobrt
