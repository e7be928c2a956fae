// dtype_dispatch.h: call a generic lambda with the storage type of a DType
// (float, f16, bf16, int8_t, uint8_t, int16_t, int32_t, int64_t; bool as
// uint8_t), so a kernel is written once as a template over Elem<S>.
#pragma once

#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {

template <typename F>
bool dispatch_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::F32: f(float{}); return true;
    case DType::F16: f(f16{}); return true;
    case DType::BF16: f(bf16{}); return true;
    case DType::I8: f(int8_t{}); return true;
    case DType::U8: f(uint8_t{}); return true;
    case DType::BOOL: f(uint8_t{}); return true;
    case DType::I16: f(int16_t{}); return true;
    case DType::I32: f(int32_t{}); return true;
    case DType::I64: f(int64_t{}); return true;
    default: return false;
  }
}

// Element i of an integer or float tensor as double (indices given as floats).
inline double value_as_double(const TensorView& t, int64_t i) {
  double v = 0;
  dispatch_dtype(t.dtype, [&](auto s) {
    using S = decltype(s);
    v = static_cast<double>(Elem<S>::load(t.as<S>()[i]));
  });
  return v;
}

}  // namespace ref
}  // namespace mobrt
