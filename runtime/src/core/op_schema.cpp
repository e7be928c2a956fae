// op_schema.cpp: the op table the verifier checks files against. One line
// per op: inputs min..max, outputs min..max, attributes as "name:kind"
// (required), "name:kind?" (optional, no default) or "name:kind=default"
// (lists "[1,2]", strings bare, "" after '=' is the empty string). Mirrors
// the Python registry (the source of truth); tests/test_runtime_schema.py
// checks names, kinds and defaults. The loader fills absent attributes with
// these defaults, so kernels always see the registry's values.
#include "core/op_schema.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>

namespace mobrt {
namespace {

struct Row {
  const char* name;
  int min_in, max_in, min_out, max_out;
  const char* attrs;
};

#define V -1

// Indexed by OpType value: order must follow formats/mobconv.fbs.
const Row kRows[] = {
    {"Conv", 2, 4, 1, 1, "auto_pad:s=NOTSET dilations:I=[] group:i=1 kernel_shape:I=[] pads:I=[] strides:I=[] activation:s= activation_params:F=[]"},
    {"ConvTranspose", 2, 3, 1, 1, "auto_pad:s=NOTSET dilations:I=[] group:i=1 kernel_shape:I=[] pads:I=[] strides:I=[] output_padding:I=[] output_shape:I=[] activation:s= activation_params:F=[]"},
    {"Gemm", 2, 3, 1, 1, "alpha:f=1.0 beta:f=1.0 transA:i=0 transB:i=0 activation:s= activation_params:F=[]"},
    {"MatMul", 2, 2, 1, 1, "activation:s= activation_params:F=[]"},
    {"BatchNormalization", 5, 5, 1, 1, "epsilon:f=1e-05"},
    {"Add", 2, 2, 1, 1, ""},
    {"Sub", 2, 2, 1, 1, ""},
    {"Mul", 2, 2, 1, 1, ""},
    {"Div", 2, 2, 1, 1, ""},
    {"Pow", 2, 2, 1, 1, ""},
    {"Max", 1, V, 1, 1, ""},
    {"Min", 1, V, 1, 1, ""},
    {"Relu", 1, 1, 1, 1, ""},
    {"LeakyRelu", 1, 1, 1, 1, "alpha:f=0.01"},
    {"PRelu", 2, 2, 1, 1, ""},
    {"Clip", 1, 3, 1, 1, ""},
    {"Sigmoid", 1, 1, 1, 1, ""},
    {"Tanh", 1, 1, 1, 1, ""},
    {"HardSigmoid", 1, 1, 1, 1, "alpha:f=0.2 beta:f=0.5"},
    {"HardSwish", 1, 1, 1, 1, ""},
    {"Elu", 1, 1, 1, 1, "alpha:f=1.0"},
    {"Selu", 1, 1, 1, 1, "alpha:f=1.6732631921768188 gamma:f=1.0507010221481323"},
    {"Softplus", 1, 1, 1, 1, ""},
    {"Gelu", 1, 1, 1, 1, "approximate:s=none"},
    {"Erf", 1, 1, 1, 1, ""},
    {"Exp", 1, 1, 1, 1, ""},
    {"Log", 1, 1, 1, 1, ""},
    {"Sqrt", 1, 1, 1, 1, ""},
    {"Abs", 1, 1, 1, 1, ""},
    {"Neg", 1, 1, 1, 1, ""},
    {"Reciprocal", 1, 1, 1, 1, ""},
    {"MaxPool", 1, 1, 1, 2, "auto_pad:s=NOTSET ceil_mode:i=0 dilations:I=[] kernel_shape:I pads:I=[] strides:I=[] storage_order:i=0"},
    {"AveragePool", 1, 1, 1, 1, "auto_pad:s=NOTSET ceil_mode:i=0 dilations:I=[] kernel_shape:I pads:I=[] strides:I=[] count_include_pad:i=0"},
    {"GlobalAveragePool", 1, 1, 1, 1, ""},
    {"GlobalMaxPool", 1, 1, 1, 1, ""},
    {"LRN", 1, 1, 1, 1, "size:i alpha:f=0.0001 beta:f=0.75 bias:f=1.0"},
    {"Softmax", 1, 1, 1, 1, "axis:i=-1"},
    {"LogSoftmax", 1, 1, 1, 1, "axis:i=-1"},
    {"Concat", 1, V, 1, 1, "axis:i"},
    {"Split", 1, 2, 1, V, "axis:i=0 num_outputs:i=0"},
    {"Slice", 3, 5, 1, 1, ""},
    {"Transpose", 1, 1, 1, 1, "perm:I=[]"},
    {"Reshape", 2, 2, 1, 1, "allowzero:i=0"},
    {"Flatten", 1, 1, 1, 1, "axis:i=1"},
    {"Squeeze", 1, 2, 1, 1, ""},
    {"Unsqueeze", 2, 2, 1, 1, ""},
    {"Pad", 2, 4, 1, 1, "mode:s=constant"},
    {"Gather", 2, 2, 1, 1, "axis:i=0"},
    {"Shape", 1, 1, 1, 1, "start:i=0 end:i?"},
    {"Resize", 1, 4, 1, 1,
     "antialias:i=0 axes:I=[] coordinate_transformation_mode:s=half_pixel cubic_coeff_a:f=-0.75 exclude_outside:i=0 "
     "extrapolation_value:f=0.0 keep_aspect_ratio_policy:s=stretch mode:s=nearest nearest_mode:s=round_prefer_floor"},
    {"DepthToSpace", 1, 1, 1, 1, "blocksize:i mode:s=DCR"},
    {"SpaceToDepth", 1, 1, 1, 1, "blocksize:i mode:s=DCR"},
    {"ReduceMean", 1, 2, 1, 1, "keepdims:i=1 noop_with_empty_axes:i=0"},
    {"ReduceSum", 1, 2, 1, 1, "keepdims:i=1 noop_with_empty_axes:i=0"},
    {"ReduceMax", 1, 2, 1, 1, "keepdims:i=1 noop_with_empty_axes:i=0"},
    {"ReduceMin", 1, 2, 1, 1, "keepdims:i=1 noop_with_empty_axes:i=0"},
    {"ArgMax", 1, 1, 1, 1, "axis:i=0 keepdims:i=1 select_last_index:i=0"},
    {"ArgMin", 1, 1, 1, 1, "axis:i=0 keepdims:i=1 select_last_index:i=0"},
    {"Cast", 1, 1, 1, 1, "to:i saturate:i=1 round_mode:s=up"},
    {"InstanceNormalization", 3, 3, 1, 1, "epsilon:f=1e-05"},
    {"LayerNormalization", 2, 3, 1, 3, "axis:i=-1 epsilon:f=1e-05 stash_type:i=1"},
    {"Tile", 2, 2, 1, 1, ""},
    {"Expand", 2, 2, 1, 1, ""},
    {"Where", 3, 3, 1, 1, ""},
    {"Equal", 2, 2, 1, 1, ""},
    {"Less", 2, 2, 1, 1, ""},
    {"Greater", 2, 2, 1, 1, ""},
    {"ConstantOfShape", 1, 1, 1, 1, "value:t?"},
    {"Identity", 1, 1, 1, 1, ""},
    {"Dropout", 1, 3, 1, 2, "seed:i=0"},
    {"ReduceProd", 1, 2, 1, 1, "keepdims:i=1 noop_with_empty_axes:i=0"},
    {"ReduceL1", 1, 2, 1, 1, "keepdims:i=1 noop_with_empty_axes:i=0"},
    {"ReduceL2", 1, 2, 1, 1, "keepdims:i=1 noop_with_empty_axes:i=0"},
    {"ReduceSumSquare", 1, 2, 1, 1, "keepdims:i=1 noop_with_empty_axes:i=0"},
    {"ReduceLogSumExp", 1, 2, 1, 1, "keepdims:i=1 noop_with_empty_axes:i=0"},
    {"TopK", 2, 2, 2, 2, "axis:i=-1 largest:i=1 sorted:i=1"},
    {"Floor", 1, 1, 1, 1, ""},
    {"Ceil", 1, 1, 1, 1, ""},
    {"Round", 1, 1, 1, 1, ""},
    {"Sign", 1, 1, 1, 1, ""},
    {"Sin", 1, 1, 1, 1, ""},
    {"Cos", 1, 1, 1, 1, ""},
    {"Not", 1, 1, 1, 1, ""},
    {"And", 2, 2, 1, 1, ""},
    {"Or", 2, 2, 1, 1, ""},
    {"Xor", 2, 2, 1, 1, ""},
    {"LessOrEqual", 2, 2, 1, 1, ""},
    {"GreaterOrEqual", 2, 2, 1, 1, ""},
    {"Sum", 1, V, 1, 1, ""},
    {"Mean", 1, V, 1, 1, ""},
    {"Range", 3, 3, 1, 1, "stash_type:i=1"},
    {"Mod", 2, 2, 1, 1, "fmod:i=0"},
    {"Softsign", 1, 1, 1, 1, ""},
    {"Mish", 1, 1, 1, 1, ""},
    {"Celu", 1, 1, 1, 1, "alpha:f=1.0"},
    {"ThresholdedRelu", 1, 1, 1, 1, "alpha:f=1.0"},
    {"LpNormalization", 1, 1, 1, 1, "axis:i=-1 p:i=2"},
    {"MeanVarianceNormalization", 1, 1, 1, 1, "axes:I=[0,2,3]"},
    {"GatherElements", 2, 2, 1, 1, "axis:i=0"},
    {"CumSum", 2, 2, 1, 1, "exclusive:i=0 reverse:i=0"},
    {"Hardmax", 1, 1, 1, 1, "axis:i=-1"},
    {"Size", 1, 1, 1, 1, ""},
    {"PriorBox", 2, 2, 1, 1, "min_sizes:F max_sizes:F=[] aspect_ratios:F=[] flip:i=1 clip:i=0 variance:F=[0.1] img_size:i=0 img_h:i=0 img_w:i=0 step:f=0.0 step_h:f=0.0 step_w:f=0.0 offset:f=0.5"},
    {"DetectionOutput", 3, 3, 1, 1, "num_classes:i share_location:i=1 background_label_id:i=0 nms_threshold:f=0.3 top_k:i=-1 keep_top_k:i=-1 confidence_threshold:f=-3.4028234663852886e+38 code_type:s=CORNER variance_encoded_in_target:i=0 eta:f=1.0"},
    {"ScatterND", 3, 3, 1, 1, "reduction:s=none"},
    {"ScatterElements", 3, 3, 1, 1, "axis:i=0 reduction:s=none"},
    {"Trilu", 1, 2, 1, 1, "upper:i=1"},
    {"OneHot", 3, 3, 1, 1, "axis:i=-1"},
    {"Einsum", 1, V, 1, 1, "equation:s"},
    {"GridSample", 2, 2, 1, 1, "align_corners:i=0 mode:s=linear padding_mode:s=zeros"},
    {"Shrink", 1, 1, 1, 1, "bias:f=0.0 lambd:f=0.5"},
    {"EyeLike", 1, 1, 1, 1, "dtype:i=0 k:i=0"},
    {"NonMaxSuppression", 2, 5, 1, 1, "center_point_box:i=0"},
    {"QuantizeLinear", 2, 3, 1, 1, "axis:i=1 block_size:i=0 output_dtype:i=0 precision:i=0 saturate:i=1"},
    {"DequantizeLinear", 2, 3, 1, 1, "axis:i=1 block_size:i=0 output_dtype:i=0"},
};
#undef V

constexpr uint32_t kNumRows = sizeof(kRows) / sizeof(kRows[0]);
static_assert(kNumRows == static_cast<uint32_t>(::mobconv::formats::fb::OpType_MAX) + 1,
              "op_schema.cpp must list every OpType of formats/mobconv.fbs, in order");

// Splits "[a,b,c]" into its items ("[]": none).
std::vector<std::string> list_items(const std::string& v) {
  std::vector<std::string> out;
  std::string body = v.size() >= 2 ? v.substr(1, v.size() - 2) : "";
  std::istringstream in(body);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

AttrDecl parse_decl(const std::string& tok) {
  AttrDecl d;
  auto colon = tok.find(':');
  d.name = tok.substr(0, colon);
  d.kind = tok[colon + 1];
  d.presence = AttrDecl::kRequired;
  if (tok.size() > colon + 2 && tok[colon + 2] == '?') d.presence = AttrDecl::kOptional;
  if (tok.size() > colon + 2 && tok[colon + 2] == '=') {
    d.presence = AttrDecl::kDefault;
    std::string v = tok.substr(colon + 3);
    AttrValue& a = d.def;
    a.name = d.name;
    switch (d.kind) {
      case 'i': a.kind = AttrValue::Kind::Int; a.i = std::strtoll(v.c_str(), nullptr, 10); break;
      case 'f': a.kind = AttrValue::Kind::Float; a.f = static_cast<float>(std::strtod(v.c_str(), nullptr)); break;
      case 's': a.kind = AttrValue::Kind::String; a.s = v; break;
      case 'I':
        a.kind = AttrValue::Kind::Ints;
        for (const auto& x : list_items(v)) a.ints.push_back(std::strtoll(x.c_str(), nullptr, 10));
        break;
      case 'F':
        a.kind = AttrValue::Kind::Floats;
        for (const auto& x : list_items(v)) a.floats.push_back(static_cast<float>(std::strtod(x.c_str(), nullptr)));
        break;
      case 'S': a.kind = AttrValue::Kind::Strings; a.strings = list_items(v); break;
      default: d.presence = AttrDecl::kOptional; break;  // tensors: no default in the table
    }
  }
  return d;
}

std::vector<OpSchema> build() {
  std::vector<OpSchema> out(kNumRows);
  for (uint32_t i = 0; i < kNumRows; ++i) {
    const Row& r = kRows[i];
    OpSchema& s = out[i];
    s.name = r.name;
    s.min_inputs = r.min_in;
    s.max_inputs = r.max_in;
    s.min_outputs = r.min_out;
    s.max_outputs = r.max_out;
    std::istringstream in(r.attrs);
    std::string tok;
    while (in >> tok) s.attrs.push_back(parse_decl(tok));
  }
  return out;
}

}  // namespace

const OpSchema* op_schema(uint32_t type) {
  static const std::vector<OpSchema> table = build();
  if (type >= table.size()) return nullptr;
  return &table[type];
}

uint32_t num_op_types() { return kNumRows; }

bool attr_kind_compatible(char decl, AttrValue::Kind kind, const AttrValue& v) {
  using K = AttrValue::Kind;
  switch (decl) {
    case 'i':
      return kind == K::Int || (kind == K::Float && std::isfinite(v.f) && std::floor(v.f) == v.f &&
                                std::fabs(v.f) < 9.0e18f);
    case 'f': return kind == K::Float || kind == K::Int;
    case 's': return kind == K::String;
    case 'I': return kind == K::Ints;
    case 'F': return kind == K::Floats || kind == K::Ints;
    case 'S': return kind == K::Strings;
    case 't': return kind == K::Tensor;
  }
  return false;
}

}  // namespace mobrt

namespace mobrt {
namespace {

std::string json_str(const std::string& s) {
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  return r + "\"";
}

std::string json_float(float f) {
  if (!std::isfinite(f)) return f > 0 ? "3.4028234663852886e+38" : "-3.4028234663852886e+38";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(f));
  return buf;
}

std::string json_default(const AttrDecl& d) {
  const AttrValue& a = d.def;
  std::string r;
  switch (d.kind) {
    case 'i': return std::to_string(a.i);
    case 'f': return json_float(a.f);
    case 's': return json_str(a.s);
    case 'I':
      for (int64_t v : a.ints) r += (r.empty() ? "" : ",") + std::to_string(v);
      return "[" + r + "]";
    case 'F':
      for (float v : a.floats) r += (r.empty() ? "" : ",") + json_float(v);
      return "[" + r + "]";
    case 'S':
      for (const auto& v : a.strings) r += (r.empty() ? "" : ",") + json_str(v);
      return "[" + r + "]";
  }
  return "null";
}

std::string describe(uint32_t type) {
  const OpSchema* s = op_schema(type);
  if (!s) return "";
  std::string r = "{\"name\":" + json_str(s->name) + ",\"inputs\":[" + std::to_string(s->min_inputs) + "," +
                  std::to_string(s->max_inputs) + "],\"outputs\":[" + std::to_string(s->min_outputs) + "," +
                  std::to_string(s->max_outputs) + "],\"version\":" + std::to_string(s->version) + ",\"attrs\":[";
  for (size_t k = 0; k < s->attrs.size(); ++k) {
    const AttrDecl& d = s->attrs[k];
    const char* presence = d.presence == AttrDecl::kRequired ? "required"
                           : d.presence == AttrDecl::kOptional ? "optional" : "default";
    r += std::string(k ? "," : "") + "{\"name\":" + json_str(d.name) + ",\"kind\":\"" + d.kind +
         "\",\"presence\":\"" + presence + "\",\"default\":" +
         (d.presence == AttrDecl::kDefault ? json_default(d) : "null") + "}";
  }
  r += "],\"kernels\":[";
  bool first = true;
  for (const auto& e : kernel_registry().entries()) {
    if (static_cast<uint32_t>(e.op) != type) continue;
    r += std::string(first ? "" : ",") + "{\"isa\":\"" + isa_name(e.isa) + "\",\"dtype\":\"" + dtype_name(e.key.in0) +
         "\",\"dtype1\":\"" + dtype_name(e.key.in1) +
         "\",\"name\":" + json_str(e.kernel.name) + "}";
    first = false;
  }
  return r + "]}";
}

}  // namespace

const std::string& op_describe_json(uint32_t type) {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t;
    for (uint32_t i = 0; i < num_op_types(); ++i) t.push_back(describe(i));
    return t;
  }();
  static const std::string empty;
  return type < table.size() ? table[type] : empty;
}

}  // namespace mobrt
