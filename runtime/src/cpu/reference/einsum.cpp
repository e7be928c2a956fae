// einsum.cpp: reference Einsum (ONNX opset 12; specification mobconv/ops/einsum.py).
// Steps: parse "a,b->c" into per-operand label lists ('...' becomes shared,
// right-aligned broadcast labels), size each label (1 broadcasts), then one
// generic index loop: for each output element, sum over the labels missing
// from the output the product of the operands' elements (a label repeated in
// one operand adds its strides: the diagonal). Floats accumulate in double,
// integers in int64.
#include <map>

#include "cpu/reference/dtype_dispatch.h"

namespace mobrt {
namespace ref {
namespace {

constexpr int kMaxLabels = 64;

struct Plan {
  std::vector<int> out;                 // output labels
  std::vector<int> sum;                 // summed labels
  std::vector<int64_t> size;            // per label
  std::vector<std::vector<int64_t>> stride;  // per operand, per label (0 if absent/broadcast)
};

Status parse(const KernelContext& ctx, Plan* p) {
  std::string eq;
  for (char c : ctx.attrs->get_string("equation")) if (c != ' ') eq += c;
  if (eq.empty()) return ctx.error("attribute 'equation' is required");
  std::string lhs = eq, rhs;
  size_t arrow = eq.find("->");
  bool explicit_out = arrow != std::string::npos;
  if (explicit_out) { lhs = eq.substr(0, arrow); rhs = eq.substr(arrow + 2); }
  std::vector<std::string> terms(1);
  for (char c : lhs) { if (c == ',') terms.emplace_back(); else terms.back() += c; }
  if (static_cast<int>(terms.size()) != ctx.num_inputs)
    return ctx.error("equation '" + eq + "' names " + std::to_string(terms.size()) + " operands, got " +
                     std::to_string(ctx.num_inputs));
  auto letters = [](const std::string& t, std::string* head, std::string* tail, bool* ell) {
    size_t e = t.find("...");
    *ell = e != std::string::npos;
    *head = *ell ? t.substr(0, e) : t;
    *tail = *ell ? t.substr(e + 3) : "";
    for (char c : *head + *tail) if (!std::isalpha(static_cast<unsigned char>(c))) return false;
    return true;
  };
  // label ids: letters 0..51, ellipsis dims 52..
  auto letter_id = [](char c) { return c >= 'a' ? c - 'a' : 26 + (c - 'A'); };
  int n_ell = 0;
  std::vector<std::vector<int>> labels(terms.size());
  for (size_t t = 0; t < terms.size(); ++t) {
    std::string h, tl; bool ell;
    if (!letters(terms[t], &h, &tl, &ell)) return ctx.error("equation '" + eq + "': bad term '" + terms[t] + "'");
    int n = ctx.inputs[t].rank - static_cast<int>(h.size() + tl.size());
    if (n < 0 || (n > 0 && !ell)) return ctx.error("equation '" + eq + "': term '" + terms[t] + "' does not match input " + shape_str(ctx.inputs[t]));
    n_ell = std::max(n_ell, n);
  }
  if (52 + n_ell > kMaxLabels) return ctx.error("too many '...' dims");
  p->size.assign(kMaxLabels, -1);
  p->stride.assign(terms.size(), std::vector<int64_t>(kMaxLabels, 0));
  std::vector<int> count(kMaxLabels, 0);
  for (size_t t = 0; t < terms.size(); ++t) {
    std::string h, tl; bool ell;
    letters(terms[t], &h, &tl, &ell);
    int n = ctx.inputs[t].rank - static_cast<int>(h.size() + tl.size());
    for (char c : h) labels[t].push_back(letter_id(c));
    for (int k = 0; k < n; ++k) labels[t].push_back(52 + n_ell - n + k);
    for (char c : tl) labels[t].push_back(letter_id(c));
    const TensorView& x = ctx.inputs[t];
    Shape st = row_major_strides(shape_of(x));
    for (int d = 0; d < x.rank; ++d) {
      int l = labels[t][d];
      int64_t dim = x.dims[d];
      if (l < 52) ++count[l];
      if (p->size[l] < 0 || p->size[l] == 1) {
        if (p->size[l] == 1 && dim != 1 && l < 52) return ctx.error("letter sizes differ");
        p->size[l] = p->size[l] == 1 && dim == 1 ? 1 : dim;
      } else if (dim != p->size[l] && !(l >= 52 && dim == 1)) {
        return ctx.error("equation '" + eq + "': label sizes differ (" + std::to_string(dim) + " vs " +
                         std::to_string(p->size[l]) + ")");
      }
      if (!(l >= 52 && dim == 1)) p->stride[t][l] += st[d];
    }
  }
  // broadcast ellipsis labels of size 1 in some operands: strides were left 0 there
  for (int l = 52; l < 52 + n_ell; ++l)
    if (p->size[l] < 0) p->size[l] = 1;
  if (explicit_out) {
    std::string h, tl; bool ell;
    if (!letters(rhs, &h, &tl, &ell)) return ctx.error("equation '" + eq + "': bad output term");
    for (char c : h) p->out.push_back(letter_id(c));
    if (ell) for (int k = 0; k < n_ell; ++k) p->out.push_back(52 + k);
    for (char c : tl) p->out.push_back(letter_id(c));
  } else {
    for (int k = 0; k < n_ell; ++k) p->out.push_back(52 + k);
    for (int l = 0; l < 52; ++l) if (count[l] == 1) p->out.push_back(l);
    std::sort(p->out.begin() + n_ell, p->out.end(), [&](int a, int b) {
      auto ch = [](int x) { return x < 26 ? 'a' + x : 'A' + (x - 26); };
      return ch(a) < ch(b);
    });
  }
  std::vector<bool> used(kMaxLabels, false);
  for (int l : p->out) {
    if (p->size[l] < 0) return ctx.error("equation '" + eq + "': an output letter is in no input");
    if (used[l]) return ctx.error("equation '" + eq + "': the output repeats a letter");
    used[l] = true;
  }
  for (int l = 0; l < kMaxLabels; ++l)
    if (p->size[l] >= 0 && !used[l]) p->sum.push_back(l);
  return Status::Ok();
}

Status infer_einsum(KernelContext& ctx) {
  for (int i = 1; i < ctx.num_inputs; ++i)
    if (ctx.inputs[i].dtype != ctx.inputs[0].dtype) return ctx.error("inputs must share one dtype");
  DType dt = ctx.inputs[0].dtype;
  if (dt == DType::BOOL || !dispatch_dtype(dt, [](auto) {})) return ctx.error("unsupported dtype");
  Plan p;
  Status s = parse(ctx, &p);
  if (!s.ok()) return s;
  Shape out;
  for (int l : p.out) out.push_back(p.size[l]);
  return set_out(ctx, 0, dt, out);
}

template <typename S>
void run_t(KernelContext& ctx, const Plan& p) {
  using E = Elem<S>;
  using C = typename E::C;
  using Acc = typename std::conditional<std::is_floating_point<C>::value, double, int64_t>::type;
  const int n_in = ctx.num_inputs;
  const int64_t n_out = numel(Shape(ctx.outputs[0].dims, ctx.outputs[0].dims + ctx.outputs[0].rank));
  int64_t n_sum = 1;
  for (int l : p.sum) n_sum *= p.size[l];
  std::vector<int64_t> base(n_in), off(n_in);
  S* y = ctx.outputs[0].as<S>();
  for (int64_t o = 0; o < n_out; ++o) {
    int64_t rem = o;
    std::fill(base.begin(), base.end(), 0);
    for (int k = static_cast<int>(p.out.size()) - 1; k >= 0; --k) {
      int l = p.out[k];
      int64_t c = rem % p.size[l];
      rem /= p.size[l];
      for (int t = 0; t < n_in; ++t) base[t] += c * p.stride[t][l];
    }
    Acc acc = 0;
    for (int64_t s = 0; s < n_sum; ++s) {
      int64_t r = s;
      off = base;
      for (int k = static_cast<int>(p.sum.size()) - 1; k >= 0; --k) {
        int l = p.sum[k];
        int64_t c = r % p.size[l];
        r /= p.size[l];
        for (int t = 0; t < n_in; ++t) off[t] += c * p.stride[t][l];
      }
      Acc prod = 1;
      for (int t = 0; t < n_in; ++t) prod *= static_cast<Acc>(E::load(ctx.inputs[t].as<S>()[off[t]]));
      acc += prod;
    }
    y[o] = E::store(static_cast<C>(acc));
  }
}

Status run_einsum(KernelContext& ctx) {
  Plan p;
  Status s = parse(ctx, &p);
  if (!s.ok()) return s;
  dispatch_dtype(ctx.inputs[0].dtype, [&](auto v) { run_t<decltype(v)>(ctx, p); });
  return Status::Ok();
}

}  // namespace

void register_einsum(KernelRegistry& r) {
  reg(r, fb::OpType_Einsum, DType::Any, "einsum_reference", infer_einsum, run_einsum);
}

}  // namespace ref
}  // namespace mobrt
