// op_schema.cpp: the op table the verifier checks files against. One line
// per op: inputs min..max, outputs min..max, "name:kind" attributes.
#include "core/op_schema.h"

#include <cmath>
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
#define CONV_ATTRS "auto_pad:s dilations:I group:i kernel_shape:I pads:I strides:I activation:s activation_params:F"
#define REDUCE_ATTRS "keepdims:i noop_with_empty_axes:i"
#define ARG_ATTRS "axis:i keepdims:i select_last_index:i"

// Indexed by OpType value: order must follow formats/mobconv.fbs.
const Row kRows[] = {
    {"Conv", 2, 3, 1, 1, CONV_ATTRS},
    {"ConvTranspose", 2, 3, 1, 1, CONV_ATTRS " output_padding:I output_shape:I"},
    {"Gemm", 2, 3, 1, 1, "alpha:f beta:f transA:i transB:i activation:s activation_params:F"},
    {"MatMul", 2, 2, 1, 1, "activation:s activation_params:F"},
    {"BatchNormalization", 5, 5, 1, 3, "epsilon:f momentum:f training_mode:i"},
    {"Add", 2, 2, 1, 1, ""},
    {"Sub", 2, 2, 1, 1, ""},
    {"Mul", 2, 2, 1, 1, ""},
    {"Div", 2, 2, 1, 1, ""},
    {"Pow", 2, 2, 1, 1, ""},
    {"Max", 1, V, 1, 1, ""},
    {"Min", 1, V, 1, 1, ""},
    {"Relu", 1, 1, 1, 1, ""},
    {"LeakyRelu", 1, 1, 1, 1, "alpha:f"},
    {"PRelu", 2, 2, 1, 1, ""},
    {"Clip", 1, 3, 1, 1, ""},
    {"Sigmoid", 1, 1, 1, 1, ""},
    {"Tanh", 1, 1, 1, 1, ""},
    {"HardSigmoid", 1, 1, 1, 1, "alpha:f beta:f"},
    {"HardSwish", 1, 1, 1, 1, ""},
    {"Elu", 1, 1, 1, 1, "alpha:f"},
    {"Selu", 1, 1, 1, 1, "alpha:f gamma:f"},
    {"Softplus", 1, 1, 1, 1, ""},
    {"Gelu", 1, 1, 1, 1, "approximate:s"},
    {"Erf", 1, 1, 1, 1, ""},
    {"Exp", 1, 1, 1, 1, ""},
    {"Log", 1, 1, 1, 1, ""},
    {"Sqrt", 1, 1, 1, 1, ""},
    {"Abs", 1, 1, 1, 1, ""},
    {"Neg", 1, 1, 1, 1, ""},
    {"Reciprocal", 1, 1, 1, 1, ""},
    {"MaxPool", 1, 1, 1, 2, "auto_pad:s ceil_mode:i dilations:I kernel_shape:I pads:I strides:I storage_order:i"},
    {"AveragePool", 1, 1, 1, 1, "auto_pad:s ceil_mode:i dilations:I kernel_shape:I pads:I strides:I count_include_pad:i"},
    {"GlobalAveragePool", 1, 1, 1, 1, ""},
    {"GlobalMaxPool", 1, 1, 1, 1, ""},
    {"LRN", 1, 1, 1, 1, "size:i alpha:f beta:f bias:f"},
    {"Softmax", 1, 1, 1, 1, "axis:i"},
    {"LogSoftmax", 1, 1, 1, 1, "axis:i"},
    {"Concat", 1, V, 1, 1, "axis:i"},
    {"Split", 1, 2, 1, V, "axis:i num_outputs:i"},
    {"Slice", 3, 5, 1, 1, ""},
    {"Transpose", 1, 1, 1, 1, "perm:I"},
    {"Reshape", 2, 2, 1, 1, "allowzero:i"},
    {"Flatten", 1, 1, 1, 1, "axis:i"},
    {"Squeeze", 1, 2, 1, 1, ""},
    {"Unsqueeze", 2, 2, 1, 1, ""},
    {"Pad", 2, 4, 1, 1, "mode:s"},
    {"Gather", 2, 2, 1, 1, "axis:i"},
    {"Shape", 1, 1, 1, 1, "start:i end:i"},
    {"Resize", 1, 4, 1, 1,
     "antialias:i axes:I coordinate_transformation_mode:s cubic_coeff_a:f exclude_outside:i "
     "extrapolation_value:f keep_aspect_ratio_policy:s mode:s nearest_mode:s"},
    {"DepthToSpace", 1, 1, 1, 1, "blocksize:i mode:s"},
    {"SpaceToDepth", 1, 1, 1, 1, "blocksize:i"},
    {"ReduceMean", 1, 2, 1, 1, REDUCE_ATTRS},
    {"ReduceSum", 1, 2, 1, 1, REDUCE_ATTRS},
    {"ReduceMax", 1, 2, 1, 1, REDUCE_ATTRS},
    {"ReduceMin", 1, 2, 1, 1, REDUCE_ATTRS},
    {"ArgMax", 1, 1, 1, 1, ARG_ATTRS},
    {"ArgMin", 1, 1, 1, 1, ARG_ATTRS},
    {"Cast", 1, 1, 1, 1, "to:i saturate:i round_mode:s"},
    {"InstanceNormalization", 3, 3, 1, 1, "epsilon:f"},
    {"LayerNormalization", 2, 3, 1, 3, "axis:i epsilon:f stash_type:i"},
    {"Tile", 2, 2, 1, 1, ""},
    {"Expand", 2, 2, 1, 1, ""},
    {"Where", 3, 3, 1, 1, ""},
    {"Equal", 2, 2, 1, 1, ""},
    {"Less", 2, 2, 1, 1, ""},
    {"Greater", 2, 2, 1, 1, ""},
    {"ConstantOfShape", 1, 1, 1, 1, "value:t"},
    {"Identity", 1, 1, 1, 1, ""},
    {"Dropout", 1, 3, 1, 2, "seed:i"},
    {"ReduceProd", 1, 2, 1, 1, REDUCE_ATTRS},
    {"ReduceL1", 1, 2, 1, 1, REDUCE_ATTRS},
    {"ReduceL2", 1, 2, 1, 1, REDUCE_ATTRS},
    {"ReduceSumSquare", 1, 2, 1, 1, REDUCE_ATTRS},
    {"ReduceLogSumExp", 1, 2, 1, 1, REDUCE_ATTRS},
    {"TopK", 2, 2, 2, 2, "axis:i largest:i sorted:i"},
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
    {"Range", 3, 3, 1, 1, "stash_type:i"},
    {"Mod", 2, 2, 1, 1, "fmod:i"},
    {"Softsign", 1, 1, 1, 1, ""},
    {"Mish", 1, 1, 1, 1, ""},
    {"Celu", 1, 1, 1, 1, "alpha:f"},
    {"ThresholdedRelu", 1, 1, 1, 1, "alpha:f"},
    {"LpNormalization", 1, 1, 1, 1, "axis:i p:i"},
    {"MeanVarianceNormalization", 1, 1, 1, 1, "axes:I"},
    {"GatherElements", 2, 2, 1, 1, "axis:i"},
    {"CumSum", 2, 2, 1, 1, "exclusive:i reverse:i"},
    {"Hardmax", 1, 1, 1, 1, "axis:i"},
    {"Size", 1, 1, 1, 1, ""},
    {"PriorBox", 2, 2, 1, 1, ""},
    {"DetectionOutput", 3, 5, 1, 1, ""},
};
#undef V

constexpr uint32_t kNumRows = sizeof(kRows) / sizeof(kRows[0]);
static_assert(kNumRows == static_cast<uint32_t>(::mobconv::formats::fb::OpType_MAX) + 1,
              "op_schema.cpp must list every OpType of formats/mobconv.fbs, in order");

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
    while (in >> tok) {
      auto colon = tok.find(':');
      s.attrs.push_back({tok.substr(0, colon), tok[colon + 1]});
    }
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
