// q8_concat.cpp: the int8/uint8 Concat with one Rescale per input (concat_rules): an
// input whose parameters equal the output's is copied, any other is rescaled by the
// instruction set's rescale row (q8_elementwise.h). Any axis: the output is `outer`
// slices, each the inputs' rows (dims[axis] * inner elements) one after the other.
#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/int8/q8_elementwise.h"
#include "cpu/reference/quant_params.h"

namespace mobrt {
namespace q8 {

namespace rq = ::mobrt::ref::q8;

bool q8_concat_supports(const KernelContext& ctx) {
  if (ctx.num_inputs < 1 || ctx.num_outputs != 1 || !rq::node_quantized(ctx)) return false;
  const DType d = ctx.outputs[0].dtype;
  if (d != DType::I8 && d != DType::U8) return false;
  for (int i = 0; i < ctx.num_inputs; ++i)
    if (!ctx.inputs[i].present() || ctx.inputs[i].dtype != d) return false;
  KernelContext c = ctx;
  std::vector<rq::Rescale> rs;
  return rq::concat_rules(c, &rs).ok();
}

Status q8_concat_run(KernelContext& ctx) {
  std::vector<rq::Rescale> rs;
  Status s = rq::concat_rules(ctx, &rs);
  if (!s.ok()) return s;
  const TensorView& y = ctx.outputs[0];
  int axis;
  s = ref::norm_axis(ctx, ctx.attrs->get_int("axis", 0), ctx.inputs[0].rank, &axis);
  if (!s.ok()) return s;
  const Q8ElemIsa& isa = q8_state_isa(*ctx.state);
  const bool u8 = y.dtype == DType::U8;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= y.dims[d];
  for (int d = axis + 1; d < y.rank; ++d) inner *= y.dims[d];
  const int64_t yrow = y.dims[axis] * inner;
  const int n_in = ctx.num_inputs;
  std::vector<Q8RescaleParams> ps(static_cast<size_t>(n_in));
  std::vector<int64_t> rows(static_cast<size_t>(n_in)), offs(static_cast<size_t>(n_in));
  int64_t off = 0;
  for (int i = 0; i < n_in; ++i) {
    const rq::Rescale& r = rs[static_cast<size_t>(i)];
    Q8RescaleParams& p = ps[static_cast<size_t>(i)];
    p.copy = r.copy;
    p.zx = static_cast<int32_t>(r.zp);
    p.m.q = static_cast<int32_t>(r.m.q);
    p.m.left = r.m.shift > 0 ? r.m.shift : 0;
    p.m.right = r.m.shift < 0 ? -r.m.shift : 0;
    p.zy = static_cast<int32_t>(r.zp_y);
    p.lo = static_cast<int32_t>(r.lo);
    p.hi = static_cast<int32_t>(r.hi);
    rows[static_cast<size_t>(i)] = ctx.inputs[i].dims[axis] * inner;
    offs[static_cast<size_t>(i)] = off;
    off += rows[static_cast<size_t>(i)];
  }
  std::vector<uint8_t> luts;  // the tables of the rescaled inputs, where the rows are worth it
  if (isa.rescale_lut) {
    luts.resize(256 * static_cast<size_t>(n_in));
    for (int i = 0; i < n_in; ++i) {
      Q8RescaleParams& p = ps[static_cast<size_t>(i)];
      if (p.copy || outer * rows[static_cast<size_t>(i)] < kQ8LutMinElements) continue;
      q8_rescale_lut(p, u8, &luts[256 * static_cast<size_t>(i)]);
      p.lut = &luts[256 * static_cast<size_t>(i)];
    }
  }
  uint8_t* py = static_cast<uint8_t*>(y.data);
  // one task per (outer slice, input); a long single slice is cut into blocks
  constexpr int64_t kBlock = 16384;
  std::vector<int64_t> first(static_cast<size_t>(n_in) + 1, 0);  // block index of input i's first block
  for (int i = 0; i < n_in; ++i)
    first[static_cast<size_t>(i) + 1] =
        first[static_cast<size_t>(i)] + (rows[static_cast<size_t>(i)] + kBlock - 1) / kBlock;
  const int64_t per_slice = first.back();
  ctx.parallel_for(outer * per_slice, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / per_slice, blk = t % per_slice;
      const int i = static_cast<int>(std::upper_bound(first.begin(), first.end(), blk) - first.begin()) - 1;
      const size_t ii = static_cast<size_t>(i);
      const int64_t j0 = (blk - first[ii]) * kBlock, j1 = std::min(rows[ii], j0 + kBlock);
      const uint8_t* src = static_cast<const uint8_t*>(ctx.inputs[i].data) + o * rows[ii] + j0;
      uint8_t* dst = py + o * yrow + offs[ii] + j0;
      if (ps[ii].copy) std::memcpy(dst, src, static_cast<size_t>(j1 - j0));
      else isa.rescale(src, static_cast<size_t>(j1 - j0), ps[ii], dst, u8);
    }
  });
  return Status::Ok();
}

}  // namespace q8
}  // namespace mobrt
