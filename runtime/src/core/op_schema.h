// op_schema.h: what the verifier knows about each op type: input/output
// counts and the kinds of its declared attributes. Generated from the Python
// registry (mobconv/ops) by scripts/gen_op_schema.py, with its attribute
// defaults; tests/test_runtime_schema.py checks they agree.
#pragma once

#include <string>
#include <vector>

#include "core/kernel.h"

namespace mobrt {

struct AttrDecl {
  std::string name;
  char kind;  // i int, f float, s string, I ints, F floats, S strings, t tensor
  enum Presence : uint8_t { kRequired, kOptional, kDefault } presence = kRequired;
  AttrValue def;  // the default (presence == kDefault)
};

struct OpSchema {
  const char* name = nullptr;  // null: op type unknown to this runtime
  int min_inputs = 0, max_inputs = 0;    // max -1: variadic
  int min_outputs = 0, max_outputs = 0;  // max -1: variadic
  // Newest per-op semantics version this runtime implements (Operator.version
  // must be in [1, version]; the registry's OpSpec.version, generated with
  // the row, 1 for every op so far).
  int version = 1;
  std::vector<AttrDecl> attrs;
  const AttrDecl* find(const std::string& attr) const {
    for (const auto& a : attrs)
      if (a.name == attr) return &a;
    return nullptr;
  }
};

// Schema of `type`, or null if this runtime does not know it.
const OpSchema* op_schema(uint32_t type);
// Number of op types the runtime knows (= OpType enum size it was built with).
uint32_t num_op_types();
// JSON description of op `type` for tooling and tests: name, input/output
// counts, attributes (name, kind, default), registered kernels (isa, dtype,
// name). Empty for unknown types.
const std::string& op_describe_json(uint32_t type);
// Does an attribute stored with `kind` satisfy a declaration of `decl_kind`?
bool attr_kind_compatible(char decl_kind, AttrValue::Kind kind, const AttrValue& v);

}  // namespace mobrt
