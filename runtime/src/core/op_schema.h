// op_schema.h: what the verifier knows about each op type: input/output
// counts and the kinds of its declared attributes. Mirrors the Python
// registry (mobconv/ops); tests/test_runtime_schema.py checks they agree.
#pragma once

#include <string>
#include <vector>

#include "core/kernel.h"

namespace mobrt {

struct AttrDecl {
  std::string name;
  char kind;  // i int, f float, s string, I ints, F floats, S strings, t tensor
};

struct OpSchema {
  const char* name = nullptr;  // null: op type unknown to this runtime
  int min_inputs = 0, max_inputs = 0;    // max -1: variadic
  int min_outputs = 0, max_outputs = 0;  // max -1: variadic
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
// Does an attribute stored with `kind` satisfy a declaration of `decl_kind`?
bool attr_kind_compatible(char decl_kind, AttrValue::Kind kind, const AttrValue& v);

}  // namespace mobrt
