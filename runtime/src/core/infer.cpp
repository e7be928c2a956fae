// infer.cpp: the table of shape functions (filled by the reference kernel
// registration) and the per-tensor size limit.
#include "core/infer.h"

#include <cstdlib>
#include <mutex>
#include <vector>

namespace mobrt {

static std::vector<InferFn>& table() {
  static std::vector<InferFn> t(static_cast<size_t>(::mobconv::formats::fb::OpType_MAX) + 1, nullptr);
  return t;
}

void register_infer(OpType op, InferFn fn) {
  if (static_cast<size_t>(op) < table().size()) table()[static_cast<size_t>(op)] = fn;
}

InferFn find_infer(OpType op) {
  kernel_registry();  // registration of reference kernels also fills this table
  size_t i = static_cast<size_t>(op);
  return i < table().size() ? table()[i] : nullptr;
}

InferFn registered_infer(OpType op) {
  size_t i = static_cast<size_t>(op);
  return i < table().size() ? table()[i] : nullptr;
}

size_t max_tensor_bytes() {
  static const size_t limit = [] {
    const char* env = std::getenv("MOBRT_MAX_TENSOR_BYTES");
    if (env && *env) {
      unsigned long long v = std::strtoull(env, nullptr, 10);
      if (v > 0) return static_cast<size_t>(v);
    }
    return static_cast<size_t>(4) << 30;
  }();
  return limit;
}

}  // namespace mobrt
