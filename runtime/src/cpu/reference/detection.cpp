// detection.cpp: reference PriorBox and DetectionOutput with Caffe SSD
// semantics. The specification is mobconv/ops/detection.py; the arithmetic
// follows it step by step (float32 where it uses float32, double where it
// uses Python floats) so results agree to rounding.
//
// PriorBox only reads its inputs' dims, so the interpreter folds it at
// prepare time (the boxes are computed once per shape).
//
// DetectionOutput has a data-dependent row count. Its shape function gives
// the upper bound (N * max(1, rows per image)); run() writes the rows and
// sets the output's dims[2] to the actual count, which the interpreter
// accepts for graph outputs (see Interpreter::Invoke). Steps per image:
//   1. decode every prior's offsets (code_type) against the priors;
//   2. per non-background class: candidates with score > confidence_threshold,
//      best first (stable), the first top_k, greedy NMS (adaptive with eta);
//   3. keep_top_k best over all classes (stable by score), regrouped by label;
//   4. rows [image, label, score, xmin, ymin, xmax, ymax]; no row at all in
//      the batch gives one [image, -1, -1, -1, -1, -1, -1] row per image.
#include <algorithm>
#include <map>
#include <numeric>

#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace {

// ---- PriorBox ------------------------------------------------------------------

struct PriorP {
  std::vector<double> ars;  // 1 first, then each new ratio (and 1/ar with flip)
  std::vector<float> min_sizes, max_sizes, variance;
};

Status prior_params(const KernelContext& ctx, PriorP* p) {
  const Attrs& a = *ctx.attrs;
  p->min_sizes = a.get_floats("min_sizes");
  p->max_sizes = a.get_floats("max_sizes");
  p->variance = a.get_floats("variance");
  if (p->min_sizes.empty()) return ctx.error("min_sizes must be non-empty");
  for (float m : p->min_sizes)
    if (!(m > 0)) return ctx.error("min_sizes must be positive");
  if (!p->max_sizes.empty() && p->max_sizes.size() != p->min_sizes.size())
    return ctx.error("max_sizes (" + std::to_string(p->max_sizes.size()) + ") must pair with min_sizes (" +
                     std::to_string(p->min_sizes.size()) + ")");
  for (size_t i = 0; i < p->max_sizes.size(); ++i)
    if (!(p->max_sizes[i] > p->min_sizes[i])) return ctx.error("each max_size must exceed its min_size");
  if (p->variance.size() != 1 && p->variance.size() != 4) return ctx.error("variance must have 1 or 4 values");
  if (p->min_sizes.size() > 1024) return ctx.error("too many min_sizes");
  p->ars.assign(1, 1.0);
  bool flip = a.get_int("flip", 1) != 0;
  for (float arf : a.get_floats("aspect_ratios")) {
    double ar = arf;
    bool dup = false;
    for (double e : p->ars) dup = dup || std::fabs(ar - e) < 1e-6;
    if (dup) continue;
    if (!(ar > 0) || !std::isfinite(ar)) return ctx.error("aspect_ratios must be positive");
    p->ars.push_back(ar);
    if (flip) p->ars.push_back(1.0 / ar);
    if (p->ars.size() > 1024) return ctx.error("too many aspect_ratios");
  }
  return Status::Ok();
}

int64_t num_priors(const PriorP& p) {
  return static_cast<int64_t>(p.ars.size() * p.min_sizes.size() + p.max_sizes.size());
}

Status infer_prior_box(KernelContext& ctx) {
  PriorP p;
  Status s = prior_params(ctx, &p);
  if (!s.ok()) return s;
  s = need_rank(ctx, 0, 4, 4);
  if (s.ok()) s = need_rank(ctx, 1, 4, 4);
  if (!s.ok()) return s;
  int64_t n = ctx.inputs[0].dims[2] * ctx.inputs[0].dims[3] * num_priors(p) * 4;
  return set_out(ctx, 0, DType::F32, {1, 2, n});
}

Status run_prior_box(KernelContext& ctx) {
  PriorP p;
  Status s = prior_params(ctx, &p);
  if (!s.ok()) return s;
  const Attrs& a = *ctx.attrs;
  const int64_t lh = ctx.inputs[0].dims[2], lw = ctx.inputs[0].dims[3];
  auto pick = [](int64_t x, int64_t y, int64_t z) { return x ? x : (y ? y : z); };
  const int64_t ih = pick(a.get_int("img_h", 0), a.get_int("img_size", 0), ctx.inputs[1].dims[2]);
  const int64_t iw = pick(a.get_int("img_w", 0), a.get_int("img_size", 0), ctx.inputs[1].dims[3]);
  if (ih <= 0 || iw <= 0) return ctx.error("image size must be positive");
  double step = a.get_float("step", 0.f);
  double sh = a.get_float("step_h", 0.f), sw = a.get_float("step_w", 0.f);
  if (sh == 0) sh = step != 0 ? step : (lh ? static_cast<double>(ih) / lh : 0.0);
  if (sw == 0) sw = step != 0 ? step : (lw ? static_cast<double>(iw) / lw : 0.0);
  const float sh32 = static_cast<float>(sh), sw32 = static_cast<float>(sw);
  const float offset = a.get_float("offset", 0.5f);
  // Box sizes of one cell, in Caffe's order (computed in double, kept as float).
  std::vector<double> bw, bh;
  for (size_t i = 0; i < p.min_sizes.size(); ++i) {
    double mn = p.min_sizes[i];
    bw.push_back(static_cast<float>(mn));
    bh.push_back(static_cast<float>(mn));
    if (!p.max_sizes.empty()) {
      double sz = std::sqrt(mn * static_cast<double>(p.max_sizes[i]));
      bw.push_back(static_cast<float>(sz));
      bh.push_back(static_cast<float>(sz));
    }
    for (double ar : p.ars) {
      if (std::fabs(ar - 1.0) < 1e-6) continue;
      bw.push_back(static_cast<float>(mn * std::sqrt(ar)));
      bh.push_back(static_cast<float>(mn / std::sqrt(ar)));
    }
  }
  const bool clip = a.get_int("clip", 0) != 0;
  float* out = ctx.outputs[0].as<float>();
  const int64_t total = lh * lw * static_cast<int64_t>(bw.size()) * 4;
  float* box = out;
  for (int64_t y = 0; y < lh; ++y) {
    double cy = (static_cast<float>(y) + offset) * sh32;
    for (int64_t x = 0; x < lw; ++x) {
      double cx = (static_cast<float>(x) + offset) * sw32;
      for (size_t k = 0; k < bw.size(); ++k) {
        float v[4] = {static_cast<float>((cx - bw[k] / 2) / iw), static_cast<float>((cy - bh[k] / 2) / ih),
                      static_cast<float>((cx + bw[k] / 2) / iw), static_cast<float>((cy + bh[k] / 2) / ih)};
        for (float f : v) *box++ = clip ? std::min(std::max(f, 0.f), 1.f) : f;
      }
    }
  }
  float* var = out + total;
  for (int64_t i = 0; i < total; ++i) var[i] = p.variance.size() == 4 ? p.variance[i % 4] : p.variance[0];
  return Status::Ok();
}

// ---- DetectionOutput ---------------------------------------------------------

struct DetP {
  int64_t num_classes, nlc, background, top_k, keep_top_k, num_priors, batch;
  float nms_threshold, confidence, eta;
  int code;  // 0 CORNER, 1 CENTER_SIZE, 2 CORNER_SIZE
  bool variance_encoded;
};

Status det_params(const KernelContext& ctx, DetP* p) {
  const Attrs& a = *ctx.attrs;
  for (int i = 0; i < 3; ++i) {
    Status s = need_dtype(ctx, i, {DType::F32});
    if (!s.ok()) return s;
    if (ctx.inputs[i].rank < 1) return ctx.error("input " + std::to_string(i) + " must have rank >= 1");
  }
  p->num_classes = a.get_int("num_classes", 0);
  if (p->num_classes < 1 || p->num_classes > (1 << 20)) return ctx.error("num_classes must be in [1, 2^20]");
  std::string code = a.get_string("code_type", "CORNER");
  p->code = code == "CORNER" ? 0 : code == "CENTER_SIZE" ? 1 : code == "CORNER_SIZE" ? 2 : -1;
  if (p->code < 0) return ctx.error("code_type '" + code + "' is not CORNER, CENTER_SIZE or CORNER_SIZE");
  p->nlc = a.get_int("share_location", 1) ? 1 : p->num_classes;
  p->background = a.get_int("background_label_id", 0);
  p->top_k = a.get_int("top_k", -1);
  p->keep_top_k = a.get_int("keep_top_k", -1);
  p->nms_threshold = a.get_float("nms_threshold", 0.3f);
  p->confidence = a.get_float("confidence_threshold", -3.4028235e38f);
  p->eta = a.get_float("eta", 1.f);
  p->variance_encoded = a.get_int("variance_encoded_in_target", 0) != 0;
  const TensorView& prior = ctx.inputs[2];
  if (prior.rank != 3 || prior.dims[1] != 2 || prior.dims[2] % 4 != 0 || prior.dims[0] < 1)
    return ctx.error("prior must have shape (1, 2, P*4), got " + shape_str(prior));
  p->num_priors = prior.dims[2] / 4;
  p->batch = ctx.inputs[0].dims[0];
  int64_t loc_per = ctx.inputs[0].numel() / std::max<int64_t>(p->batch, 1);
  int64_t conf_per = ctx.inputs[1].numel() / std::max<int64_t>(p->batch, 1);
  if (ctx.inputs[1].dims[0] != p->batch) return ctx.error("loc and conf must have the same batch");
  if (loc_per != p->num_priors * p->nlc * 4)
    return ctx.error("loc " + shape_str(ctx.inputs[0]) + " must hold " + std::to_string(p->num_priors) + " priors x " +
                     std::to_string(p->nlc) + " x 4 values per image");
  if (conf_per != p->num_priors * p->num_classes)
    return ctx.error("conf " + shape_str(ctx.inputs[1]) + " must hold " + std::to_string(p->num_priors) +
                     " priors x " + std::to_string(p->num_classes) + " classes");
  return Status::Ok();
}

int64_t max_rows_per_image(const DetP& p) {
  int64_t classes = p.num_classes - ((p.background >= 0 && p.background < p.num_classes) ? 1 : 0);
  int64_t per_class = p.top_k > -1 ? std::min(p.top_k, p.num_priors) : p.num_priors;
  int64_t rows = classes * per_class;
  if (p.keep_top_k > -1) rows = std::min(rows, p.keep_top_k);
  return rows;
}

Status infer_detection_output(KernelContext& ctx) {
  DetP p;
  Status s = det_params(ctx, &p);
  if (!s.ok()) return s;
  return set_out(ctx, 0, DType::F32, {1, 1, p.batch * std::max<int64_t>(1, max_rows_per_image(p)), 7});
}

struct Box { float x0, y0, x1, y1; };

void decode(const DetP& p, const float* loc, int64_t stride, const float* prior, const float* var, Box* out) {
  for (int64_t k = 0; k < p.num_priors; ++k) {
    const float* l = loc + k * stride;
    const float* pr = prior + 4 * k;
    float v[4] = {1.f, 1.f, 1.f, 1.f};
    if (!p.variance_encoded) std::copy(var + 4 * k, var + 4 * k + 4, v);
    float pw = pr[2] - pr[0], ph = pr[3] - pr[1];
    Box& b = out[k];
    if (p.code == 0) {
      b = {pr[0] + v[0] * l[0], pr[1] + v[1] * l[1], pr[2] + v[2] * l[2], pr[3] + v[3] * l[3]};
    } else if (p.code == 2) {
      b = {pr[0] + v[0] * l[0] * pw, pr[1] + v[1] * l[1] * ph, pr[2] + v[2] * l[2] * pw, pr[3] + v[3] * l[3] * ph};
    } else {
      float pcx = (pr[0] + pr[2]) / 2, pcy = (pr[1] + pr[3]) / 2;
      float cx = v[0] * l[0] * pw + pcx, cy = v[1] * l[1] * ph + pcy;
      float w = std::exp(v[2] * l[2]) * pw, h = std::exp(v[3] * l[3]) * ph;
      b = {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2};
    }
  }
}

float area(const Box& b) { return (b.x1 >= b.x0 && b.y1 >= b.y0) ? (b.x1 - b.x0) * (b.y1 - b.y0) : 0.f; }

float iou(const Box& a, const Box& b) {
  if (b.x0 > a.x1 || b.x1 < a.x0 || b.y0 > a.y1 || b.y1 < a.y0) return 0.f;
  float inter = (std::min(a.x1, b.x1) - std::max(a.x0, b.x0)) * (std::min(a.y1, b.y1) - std::max(a.y0, b.y0));
  float uni = area(a) + area(b) - inter;
  return inter / (uni > 0 ? uni : 1.f);
}

// Caffe ApplyNMSFast over one class: kept prior indices, best first.
void nms(const DetP& p, const Box* boxes, const float* scores, int64_t stride, std::vector<int64_t>* kept) {
  std::vector<int64_t> cand;
  for (int64_t k = 0; k < p.num_priors; ++k)
    if (scores[k * stride] > p.confidence) cand.push_back(k);
  std::stable_sort(cand.begin(), cand.end(),
                   [&](int64_t x, int64_t y) { return scores[x * stride] > scores[y * stride]; });
  if (p.top_k > -1 && static_cast<int64_t>(cand.size()) > p.top_k) cand.resize(static_cast<size_t>(p.top_k));
  kept->clear();
  double threshold = p.nms_threshold;
  for (int64_t idx : cand) {
    bool keep = true;
    for (int64_t k : *kept)
      if (!(iou(boxes[idx], boxes[k]) <= threshold)) { keep = false; break; }
    if (!keep) continue;
    kept->push_back(idx);
    if (p.eta < 1 && threshold > 0.5) threshold *= p.eta;
  }
}

Status run_detection_output(KernelContext& ctx) {
  DetP p;
  Status s = det_params(ctx, &p);
  if (!s.ok()) return s;
  const float* loc = ctx.inputs[0].as<float>();
  const float* conf = ctx.inputs[1].as<float>();
  const float* prior = ctx.inputs[2].as<float>();
  const float* var = prior + 4 * p.num_priors;
  float* out = ctx.outputs[0].as<float>();
  const int64_t capacity = p.batch * std::max<int64_t>(1, max_rows_per_image(p));  // the planned bound
  std::vector<Box> decoded(static_cast<size_t>(p.num_priors * p.nlc));
  std::vector<int64_t> kept;
  int64_t rows = 0;
  for (int64_t i = 0; i < p.batch; ++i) {
    const float* li = loc + i * p.num_priors * p.nlc * 4;
    const float* ci = conf + i * p.num_priors * p.num_classes;
    for (int64_t c = 0; c < p.nlc; ++c)
      decode(p, li + c * 4, p.nlc * 4, prior, var, decoded.data() + c * p.num_priors);
    std::vector<std::pair<int64_t, int64_t>> picks;  // (label, prior)
    for (int64_t c = 0; c < p.num_classes; ++c) {
      if (c == p.background) continue;
      nms(p, decoded.data() + (p.nlc == 1 ? 0 : c * p.num_priors), ci + c, p.num_classes, &kept);
      for (int64_t k : kept) picks.emplace_back(c, k);
    }
    if (p.keep_top_k > -1 && static_cast<int64_t>(picks.size()) > p.keep_top_k) {
      std::vector<size_t> order(picks.size());
      std::iota(order.begin(), order.end(), 0);
      auto score = [&](size_t j) { return ci[picks[j].second * p.num_classes + picks[j].first]; };
      std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return score(x) > score(y); });
      order.resize(static_cast<size_t>(p.keep_top_k));
      std::map<int64_t, std::vector<int64_t>> by_label;
      for (size_t j : order) by_label[picks[j].first].push_back(picks[j].second);
      picks.clear();
      for (const auto& kv : by_label)
        for (int64_t k : kv.second) picks.emplace_back(kv.first, k);
    }
    for (const auto& pk : picks) {
      if (rows >= capacity) return ctx.error("internal: more detections than the planned bound");
      const Box& b = decoded[(p.nlc == 1 ? 0 : pk.first * p.num_priors) + pk.second];
      float* r = out + rows * 7;
      r[0] = static_cast<float>(i);
      r[1] = static_cast<float>(pk.first);
      r[2] = ci[pk.second * p.num_classes + pk.first];
      r[3] = b.x0; r[4] = b.y0; r[5] = b.x1; r[6] = b.y1;
      ++rows;
    }
  }
  if (rows == 0) {
    for (int64_t i = 0; i < p.batch; ++i) {
      float* r = out + i * 7;
      r[0] = static_cast<float>(i);
      for (int k = 1; k < 7; ++k) r[k] = -1.f;
    }
    rows = p.batch;
  }
  ctx.outputs[0].dims[2] = rows;  // data-dependent: the interpreter shrinks the output to this
  return Status::Ok();
}

}  // namespace

void register_detection(KernelRegistry& r) {
  reg(r, fb::OpType_PriorBox, DType::F32, "prior_box_f32_reference", infer_prior_box, run_prior_box);
  reg(r, fb::OpType_DetectionOutput, DType::F32, "detection_output_f32_reference", infer_detection_output,
      run_detection_output);
}

}  // namespace ref
}  // namespace mobrt
