// op_schema.cpp: the op table the verifier checks files against. One line
// per op: inputs min..max, outputs min..max, version, attributes as
// "name:kind" (required), "name:kind?" (optional, no default) or
// "name:kind=default" (lists "[1,2]", strings bare, "" after '=' is the empty
// string). The rows are generated from the Python registry (the source of
// truth) into core/generated/op_schema_table.inc by scripts/gen_op_schema.py;
// tests/test_op_schema_generated.py fails when that file is stale and
// tests/test_runtime_schema.py checks names, kinds and defaults as built. The
// loader fills absent attributes with these defaults, so kernels always see
// the registry's values.
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
  int version;
  const char* attrs;
};

// Indexed by OpType value. The rows are generated from the Python registry in the
// order of formats/mobconv.fbs (scripts/gen_op_schema.py); never edit them here.
#define MOBRT_OP_ROW(op, min_in, max_in, min_out, max_out, version, attrs) \
  {#op, min_in, max_in, min_out, max_out, version, attrs},
const Row kRows[] = {
#include "core/generated/op_schema_table.inc"
};
#undef MOBRT_OP_ROW

constexpr uint32_t kNumRows = sizeof(kRows) / sizeof(kRows[0]);
static_assert(kNumRows == static_cast<uint32_t>(::mobconv::formats::fb::OpType_MAX) + 1,
              "op_schema_table.inc must list every OpType of formats/mobconv.fbs: "
              "run scripts/gen_op_schema.py");

// The same rows as enum values: row i must be OpType i (a stale table names an op the
// enum lacks, which fails to compile, or lists them in another order).
#define MOBRT_OP_ROW(op, ...) ::mobconv::formats::fb::OpType_##op,
constexpr ::mobconv::formats::fb::OpType kRowTypes[] = {
#include "core/generated/op_schema_table.inc"
};
#undef MOBRT_OP_ROW

constexpr bool rows_follow_the_enum() {
  for (uint32_t i = 0; i < kNumRows; ++i)
    if (static_cast<uint32_t>(kRowTypes[i]) != i) return false;
  return true;
}
static_assert(rows_follow_the_enum(),
              "op_schema_table.inc is not in OpType order: run scripts/gen_op_schema.py");

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
    s.version = r.version;
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
