// Portable (one lane) instantiation of the kernels in simd_ops.h: the kF32Scalar table,
// the baseline the SIMD tables are compared against (runtime/tests/kernel_tests).
#include <cmath>

#include "simd_ops.h"

namespace mobrt {
namespace cpu {
namespace {

struct VecScalar {
  using T = float;
  static constexpr size_t N = 1;
  static T zero() { return 0.f; }
  static T set1(float v) { return v; }
  static T load(const float* p) { return *p; }
  static void store(float* p, T v) { *p = v; }
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T div(T a, T b) { return a / b; }
  static T max(T a, T b) { return a > b ? a : b; }
  static T min(T a, T b) { return a < b ? a : b; }
  static T unord(T a, T b) { return a != a || b != b ? __builtin_nanf("") : 0.f; }
  static T or_bits(T a, T b) { return b != b ? b : (a != a ? a : (b == 0.f ? a : b)); }  // only OR with 0 or NaN
  static T max_nan(T a, T b) { return a != a ? a : max(a, b); }
  static T min_nan(T a, T b) { return a != a ? a : min(a, b); }
  static T fma(T a, T b, T c) { return a * b + c; }
  static T floor(T a) { return std::floor(a); }
  static T pow2i(T n) { return std::ldexp(1.f, int(n)); }
  static float hsum(T v) { return v; }
  static float hmax(T v) { return v; }
  static void load_even_odd(const float* p, T& e, T& o) {
    e = p[0];
    o = p[1];
  }
};

}  // namespace

extern const F32Kernels kF32Scalar = make_f32_kernels<VecScalar>("scalar", &kF32GemmScalar);

}  // namespace cpu
}  // namespace mobrt
