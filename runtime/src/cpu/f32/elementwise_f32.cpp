// Element-wise drivers (elementwise_f32.h): numpy-broadcast binary ops (dims merged,
// then chunks of the innermost run through the instruction set's binary row) and unary
// activations over contiguous chunks.
#include <algorithm>
#include <cstring>

#include "elementwise_f32.h"

namespace mobrt {
namespace cpu {

namespace {

constexpr int64_t kChunk = 16384;

struct BinCtx {
  const F32Kernels* ks;
  BinOp op;
  const float *a, *b;
  float* y;
  const Activation* act;
  int nd;                 // outer dims (after merging), innermost excluded
  int64_t dims[8], sa[8], sb[8];
  int64_t inner, ia, ib;  // inner length and strides (0 or 1)
  int64_t chunks_per_row;
};

void bin_task(void* vctx, int64_t t) {
  const BinCtx& c = *static_cast<const BinCtx*>(vctx);
  int64_t row = t / c.chunks_per_row;
  const int64_t i0 = (t % c.chunks_per_row) * kChunk;
  const int64_t len = std::min(kChunk, c.inner - i0);
  int64_t oa = 0, ob = 0, rem = row;
  for (int d = c.nd - 1; d >= 0; --d) {
    const int64_t idx = rem % c.dims[d];
    rem /= c.dims[d];
    oa += idx * c.sa[d];
    ob += idx * c.sb[d];
  }
  c.ks->binary(c.op, c.a + oa + i0 * c.ia, size_t(c.ia), c.b + ob + i0 * c.ib, size_t(c.ib),
               c.y + row * c.inner + i0, size_t(len), c.act);
}

}  // namespace

void binary_run(const F32Kernels& ks, BinOp op, const int64_t* a_dims, int ra, const float* a,
                const int64_t* b_dims, int rb, const float* b, float* y, const Activation& act,
                const TaskRunner* runner) {
  const int r = std::max(ra, rb);
  // Right-aligned dims and element strides (0 where broadcast).
  int64_t d[8], sa[8], sb[8];
  int64_t stra = 1, strb = 1;
  for (int i = r - 1; i >= 0; --i) {
    const int ia = i - (r - ra), ib = i - (r - rb);
    const int64_t da = ia >= 0 ? a_dims[ia] : 1, db = ib >= 0 ? b_dims[ib] : 1;
    // numpy broadcasting: a 1 takes the other side's size, 0 included (max(0, 1) would
    // make an empty output one element long: issue 7, finding 1).
    d[i] = da == 1 ? db : da;
    if (d[i] == 0) return;  // empty output: nothing to read or write
    sa[i] = da == 1 ? 0 : stra;
    sb[i] = db == 1 ? 0 : strb;
    stra *= da;
    strb *= db;
  }
  // Drop size-1 dims, merge neighbours that are contiguous (or broadcast) in both inputs.
  int64_t md[8], msa[8], msb[8];
  int m = 0;
  for (int i = 0; i < r; ++i) {
    if (d[i] == 1) continue;
    if (m > 0 && msa[m - 1] == sa[i] * d[i] && msb[m - 1] == sb[i] * d[i]) {
      md[m - 1] *= d[i];
      msa[m - 1] = sa[i];
      msb[m - 1] = sb[i];
      continue;
    }
    md[m] = d[i];
    msa[m] = sa[i];
    msb[m] = sb[i];
    ++m;
  }
  if (m == 0) {
    md[0] = 1;
    msa[0] = msb[0] = 0;
    m = 1;
  }
  BinCtx c;
  c.ks = &ks;
  c.op = op;
  c.a = a;
  c.b = b;
  c.y = y;
  c.act = &act;
  c.nd = m - 1;
  for (int i = 0; i < m - 1; ++i) {
    c.dims[i] = md[i];
    c.sa[i] = msa[i];
    c.sb[i] = msb[i];
  }
  c.inner = md[m - 1];
  c.ia = msa[m - 1];
  c.ib = msb[m - 1];
  int64_t rows = 1;
  for (int i = 0; i < m - 1; ++i) rows *= md[i];
  c.chunks_per_row = (c.inner + kChunk - 1) / kChunk;
  run_tasks(runner, rows * c.chunks_per_row, &c, bin_task);
}

namespace {
struct ActCtx {
  const F32Kernels* ks;
  const Activation* act;
  const float* x;
  float* y;
  int64_t n;
};
void act_task(void* vctx, int64_t t) {
  const ActCtx& c = *static_cast<const ActCtx*>(vctx);
  const int64_t i0 = t * kChunk, len = std::min(kChunk, c.n - i0);
  if (c.x != c.y) std::memcpy(c.y + i0, c.x + i0, len * sizeof(float));
  c.ks->activation(c.y + i0, size_t(len), c.act);
}
}  // namespace

void activation_run(const F32Kernels& ks, const Activation& act, const float* x, float* y,
                    int64_t n, const TaskRunner* runner) {
  ActCtx c{&ks, &act, x, y, n};
  run_tasks(runner, (n + kChunk - 1) / kChunk, &c, act_task);
}

}  // namespace cpu
}  // namespace mobrt
