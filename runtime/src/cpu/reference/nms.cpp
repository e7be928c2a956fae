// nms.cpp: reference NonMaxSuppression (ONNX opset 11; specification
// mobconv/ops/nms.py). Output rows [batch, class, box] (int64). The row
// count depends on the data: the shape function plans the upper bound
// N * C * min(max_output_boxes_per_class, B) (B when that input is not known
// before run) and run() sets dims[0] to the real count, which the
// interpreter accepts for graph outputs (see has_dynamic_shape). Steps per
// (batch, class): candidates with score > score_threshold, stable by
// descending score; greedy keep unless IoU with a kept box > iou_threshold.
#include <numeric>

#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace {

struct NmsIn { int64_t n, b, c; };

Status nms_shapes(const KernelContext& ctx, NmsIn* p) {
  Status s = need_dtype(ctx, 0, {DType::F32});
  if (s.ok()) s = need_dtype(ctx, 1, {DType::F32});
  if (s.ok()) s = need_dtype(ctx, 2, {DType::I64, DType::I32});
  if (s.ok()) s = need_dtype(ctx, 3, {DType::F32});
  if (s.ok()) s = need_dtype(ctx, 4, {DType::F32});
  if (!s.ok()) return s;
  const TensorView &bx = ctx.inputs[0], &sc = ctx.inputs[1];
  if (bx.rank != 3 || sc.rank != 3 || bx.dims[2] != 4 || bx.dims[0] != sc.dims[0] || bx.dims[1] != sc.dims[2])
    return ctx.error("boxes " + shape_str(bx) + " and scores " + shape_str(sc) + " must be (N, B, 4) and (N, C, B)");
  int64_t cpb = ctx.attrs->get_int("center_point_box", 0);
  if (cpb != 0 && cpb != 1) return ctx.error("center_point_box must be 0 or 1");
  *p = {bx.dims[0], bx.dims[1], sc.dims[1]};
  return Status::Ok();
}

bool present(const KernelContext& ctx, int i) {
  return i < ctx.num_inputs && ctx.inputs[i].present() && ctx.inputs[i].numel() > 0;
}

int64_t max_out_value(const KernelContext& ctx) {
  const TensorView& m = ctx.inputs[2];
  int64_t v = m.dtype == DType::I64 ? m.as<int64_t>()[0] : m.as<int32_t>()[0];
  return std::max<int64_t>(v, 0);
}

Status infer_nms(KernelContext& ctx) {
  NmsIn p;
  Status s = nms_shapes(ctx, &p);
  if (!s.ok()) return s;
  int64_t per_class = p.b;
  if (!present(ctx, 2)) per_class = 0;
  else if (ctx.inputs[2].data) per_class = std::min(per_class, max_out_value(ctx));
  return set_out(ctx, 0, DType::I64, {p.n * p.c * per_class, 3});
}

struct Corners { float x0, x1, y0, y1; };

Corners corners(const float* b, bool center) {
  if (center) return {b[0] - b[2] / 2, b[0] + b[2] / 2, b[1] - b[3] / 2, b[1] + b[3] / 2};
  return {std::min(b[1], b[3]), std::max(b[1], b[3]), std::min(b[0], b[2]), std::max(b[0], b[2])};
}

bool suppress(const Corners& a, const Corners& b, float threshold) {
  float ix0 = std::max(a.x0, b.x0), ix1 = std::min(a.x1, b.x1);
  float iy0 = std::max(a.y0, b.y0), iy1 = std::min(a.y1, b.y1);
  if (ix1 <= ix0 || iy1 <= iy0) return false;
  float inter = (ix1 - ix0) * (iy1 - iy0);
  float a1 = (a.x1 - a.x0) * (a.y1 - a.y0), a2 = (b.x1 - b.x0) * (b.y1 - b.y0);
  float uni = a1 + a2 - inter;
  if (inter <= 0 || a1 <= 0 || a2 <= 0 || uni <= 0) return false;
  return inter / uni > threshold;
}

Status run_nms(KernelContext& ctx) {
  NmsIn p;
  Status s = nms_shapes(ctx, &p);
  if (!s.ok()) return s;
  const int64_t max_out = present(ctx, 2) ? max_out_value(ctx) : 0;
  const float iou = present(ctx, 3) ? ctx.inputs[3].as<float>()[0] : 0.f;
  const bool has_thr = present(ctx, 4);
  const float thr = has_thr ? ctx.inputs[4].as<float>()[0] : 0.f;
  const bool center = ctx.attrs->get_int("center_point_box", 0) != 0;
  const float* boxes = ctx.inputs[0].as<float>();
  const float* scores = ctx.inputs[1].as<float>();
  TensorView& y = ctx.outputs[0];
  const int64_t capacity = y.dims[0];
  int64_t rows = 0;
  std::vector<int64_t> cand, kept;
  std::vector<Corners> box(static_cast<size_t>(p.b));
  for (int64_t n = 0; n < p.n; ++n) {
    for (int64_t k = 0; k < p.b; ++k) box[k] = corners(boxes + (n * p.b + k) * 4, center);
    for (int64_t c = 0; c < p.c; ++c) {
      const float* sc = scores + (n * p.c + c) * p.b;
      cand.clear();
      for (int64_t k = 0; k < p.b; ++k)
        if (!has_thr || sc[k] > thr) cand.push_back(k);
      std::stable_sort(cand.begin(), cand.end(), [&](int64_t a, int64_t b) { return sc[a] > sc[b]; });
      kept.clear();
      for (int64_t k : cand) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        bool keep = true;
        for (int64_t j : kept)
          if (suppress(box[k], box[j], iou)) { keep = false; break; }
        if (!keep) continue;
        kept.push_back(k);
        if (rows >= capacity) return ctx.error("internal: more selected boxes than the planned bound");
        int64_t* r = y.as<int64_t>() + rows * 3;
        r[0] = n; r[1] = c; r[2] = k;
        ++rows;
      }
    }
  }
  y.dims[0] = rows;  // data-dependent: the interpreter shrinks the output to this
  return Status::Ok();
}

}  // namespace

void register_nms(KernelRegistry& r) {
  reg(r, fb::OpType_NonMaxSuppression, DType::F32, "non_max_suppression_f32_reference", infer_nms, run_nms);
}

}  // namespace ref
}  // namespace mobrt
