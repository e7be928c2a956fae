// Vectorized elementwise, activation, depthwise 3x3, pooling-row, softmax and sum
// kernels, written once against a small vector-traits interface and instantiated per
// instruction set (x86/ops_avx2.cpp, x86/ops_avx512.cpp, neon/ops_neon.cpp,
// f32/ops_scalar.cpp) into that set's F32Kernels table (f32_kernels.h). Each
// instantiating TU is compiled with its own ISA flags.
//
// Traits `V` provide: type T, lane count N, zero/set1/load/store, add/sub/mul/div/
// max/min, max_nan/min_nan, unord(a,b) (all-ones lanes where a or b is NaN, else 0),
// or_bits (bitwise OR; a lane OR all-ones is NaN), fma(a,b,c)=a*b+c, floor, pow2i (2^v for integral v),
// hsum/hmax, and load_even_odd(p, e, o) splitting 2N floats into even and odd lanes
// (stride-2 ops).
//
// NaN (docs/runtime.md, "NaN and infinities"): every kernel propagates NaN as the numpy
// reference does. max/min follow x86 maxps/minps: when either operand is NaN they return
// the SECOND one, so max(c, x) with a constant c keeps a NaN x (clamps are written that
// way round); max_nan/min_nan return NaN when either operand is NaN (Max/Min ops, pooling
// windows). NEON's vmaxq/vminq already propagate NaN either way.
//
// Tails (n % N) go through a padded stack buffer so the same vector math (and the same
// exp/tanh approximation) applies to every element. Everything has internal linkage.
#pragma once
#include "f32_kernels.h"
#include "im2col.h"

namespace mobrt {
namespace cpu {
namespace {

// ---- math ------------------------------------------------------------------------------
// exp: Cephes/sse_mathfun range reduction x = n ln2 + r, degree-5 polynomial for e^r.
template <class V>
inline typename V::T vexp(typename V::T x) {
  using T = typename V::T;
  x = V::min(V::set1(88.3762626647949f), x);  // NaN stays NaN (operand order)
  x = V::max(V::set1(-87.3365478515625f), x);
  T fx = V::fma(x, V::set1(1.44269504088896341f), V::set1(0.5f));
  fx = V::floor(fx);
  x = V::sub(x, V::mul(fx, V::set1(0.693359375f)));
  x = V::sub(x, V::mul(fx, V::set1(-2.12194440e-4f)));
  T y = V::set1(1.9875691500E-4f);
  y = V::fma(y, x, V::set1(1.3981999507E-3f));
  y = V::fma(y, x, V::set1(8.3334519073E-3f));
  y = V::fma(y, x, V::set1(4.1665795894E-2f));
  y = V::fma(y, x, V::set1(1.6666665459E-1f));
  y = V::fma(y, x, V::set1(5.0000001201E-1f));
  y = V::fma(y, V::mul(x, x), V::add(x, V::set1(1.f)));
  return V::mul(y, V::pow2i(fx));
}

template <class V>
inline typename V::T vsigmoid(typename V::T x) {
  return V::div(V::set1(1.f), V::add(V::set1(1.f), vexp<V>(V::sub(V::zero(), x))));
}

// tanh: the rational 13/6 minimax approximation used by Eigen, clamped at +-7.9053.
template <class V>
inline typename V::T vtanh(typename V::T x) {
  using T = typename V::T;
  x = V::min(V::set1(7.90531110763549805f), V::max(V::set1(-7.90531110763549805f), x));
  const T x2 = V::mul(x, x);
  T p = V::set1(-2.76076847742355e-16f);
  p = V::fma(p, x2, V::set1(2.00018790482477e-13f));
  p = V::fma(p, x2, V::set1(-8.60467152213735e-11f));
  p = V::fma(p, x2, V::set1(5.12229709037114e-08f));
  p = V::fma(p, x2, V::set1(1.48572235717979e-05f));
  p = V::fma(p, x2, V::set1(6.37261928875436e-04f));
  p = V::fma(p, x2, V::set1(4.89352455891786e-03f));
  p = V::mul(p, x);
  T q = V::set1(1.19825839466702e-06f);
  q = V::fma(q, x2, V::set1(1.18534705686654e-04f));
  q = V::fma(q, x2, V::set1(2.26843463243900e-03f));
  q = V::fma(q, x2, V::set1(4.89352518554385e-03f));
  return V::div(p, q);
}

template <class V>
inline typename V::T vact(typename V::T x, const Activation& a) {
  switch (a.kind) {
    case ActKind::None:
      return x;
    // Operand order keeps NaN (x86 max/min return the second operand when unordered),
    // as the op references do.
    case ActKind::Relu:
      return V::max(V::zero(), x);
    case ActKind::Clip:
      return V::min(V::set1(a.b), V::max(V::set1(a.a), x));
    case ActKind::LeakyRelu:
      return V::add(V::max(V::zero(), x), V::mul(V::set1(a.a), V::min(V::zero(), x)));
    case ActKind::HardSwish: {
      typename V::T g = V::fma(x, V::set1(1.f / 6.f), V::set1(0.5f));
      g = V::min(V::set1(1.f), V::max(V::zero(), g));
      return V::mul(x, g);
    }
    case ActKind::HardSigmoid:
      return V::min(V::set1(1.f), V::max(V::zero(), V::fma(x, V::set1(a.a), V::set1(a.b))));
    case ActKind::Sigmoid:
      return vsigmoid<V>(x);
    case ActKind::Tanh:
      return vtanh<V>(x);
  }
  return x;
}

// Applies f (vector -> vector) to n floats in place, tail through a padded buffer.
template <class V, class F>
inline void map_inplace(float* x, size_t n, F f) {
  size_t i = 0;
  for (; i + V::N <= n; i += V::N) V::store(x + i, f(V::load(x + i)));
  if (i < n) {
    alignas(64) float tmp[V::N] = {};
    for (size_t j = 0; j < n - i; ++j) tmp[j] = x[i + j];
    V::store(tmp, f(V::load(tmp)));
    for (size_t j = 0; j < n - i; ++j) x[i + j] = tmp[j];
  }
}

template <class V, ActKind K>
void act_loop(float* x, size_t n, const Activation& a) {
  Activation ak = a;
  ak.kind = K;
  map_inplace<V>(x, n, [&](typename V::T v) { return vact<V>(v, ak); });
}

template <class V>
void activation_impl(float* x, size_t n, const Activation* a) {
  switch (a->kind) {
    case ActKind::None: return;
    case ActKind::Relu: return act_loop<V, ActKind::Relu>(x, n, *a);
    case ActKind::Clip:
      if (a->a != a->a || a->b != a->b) {  // a NaN bound: every output NaN (np.clip)
        Activation nan;                    // = HardSigmoid(x * NaN + NaN)
        nan.a = nan.b = __builtin_nanf("");
        return act_loop<V, ActKind::HardSigmoid>(x, n, nan);
      }
      return act_loop<V, ActKind::Clip>(x, n, *a);
    case ActKind::LeakyRelu: return act_loop<V, ActKind::LeakyRelu>(x, n, *a);
    case ActKind::HardSwish: return act_loop<V, ActKind::HardSwish>(x, n, *a);
    case ActKind::HardSigmoid: return act_loop<V, ActKind::HardSigmoid>(x, n, *a);
    case ActKind::Sigmoid: return act_loop<V, ActKind::Sigmoid>(x, n, *a);
    case ActKind::Tanh: return act_loop<V, ActKind::Tanh>(x, n, *a);
  }
}

// ---- binary ----------------------------------------------------------------------------
template <class V, BinOp OP>
inline typename V::T vbin(typename V::T a, typename V::T b) {
  switch (OP) {
    case BinOp::kAdd: return V::add(a, b);
    case BinOp::kSub: return V::sub(a, b);
    case BinOp::kMul: return V::mul(a, b);
    case BinOp::kDiv: return V::div(a, b);
    case BinOp::kMax: return V::max_nan(a, b);
    case BinOp::kMin: return V::min_nan(a, b);
  }
  return a;
}

template <class V, BinOp OP>
void binary_loop(const float* a, size_t sa, const float* b, size_t sb, float* y, size_t n,
                 float lo, float hi) {
  using T = typename V::T;
  const T vlo = V::set1(lo), vhi = V::set1(hi);
  const T a0 = V::set1(a[0]), b0 = V::set1(b[0]);
  size_t i = 0;
  for (; i + V::N <= n; i += V::N) {
    const T va = sa ? V::load(a + i) : a0;
    const T vb = sb ? V::load(b + i) : b0;
    V::store(y + i, V::min(vhi, V::max(vlo, vbin<V, OP>(va, vb))));
  }
  if (i < n) {
    alignas(64) float ta[V::N] = {}, tb[V::N] = {}, ty[V::N];
    for (size_t j = 0; j < n - i; ++j) {
      ta[j] = a[sa ? i + j : 0];
      tb[j] = b[sb ? i + j : 0];
    }
    const T va = V::load(ta), vb = sb || true ? V::load(tb) : b0;
    V::store(ty, V::min(vhi, V::max(vlo, vbin<V, OP>(va, vb))));
    for (size_t j = 0; j < n - i; ++j) y[i + j] = ty[j];
  }
}

template <class V>
void binary_impl(BinOp op, const float* a, size_t sa, const float* b, size_t sb, float* y,
                 size_t n, const Activation* act) {
  float lo, hi;
  const bool clamp = act == nullptr || act_as_clamp(*act, &lo, &hi);
  if (act == nullptr) {
    lo = -__builtin_inff();
    hi = __builtin_inff();
  }
  switch (op) {
    case BinOp::kAdd: binary_loop<V, BinOp::kAdd>(a, sa, b, sb, y, n, lo, hi); break;
    case BinOp::kSub: binary_loop<V, BinOp::kSub>(a, sa, b, sb, y, n, lo, hi); break;
    case BinOp::kMul: binary_loop<V, BinOp::kMul>(a, sa, b, sb, y, n, lo, hi); break;
    case BinOp::kDiv: binary_loop<V, BinOp::kDiv>(a, sa, b, sb, y, n, lo, hi); break;
    case BinOp::kMax: binary_loop<V, BinOp::kMax>(a, sa, b, sb, y, n, lo, hi); break;
    case BinOp::kMin: binary_loop<V, BinOp::kMin>(a, sa, b, sb, y, n, lo, hi); break;
  }
  if (!clamp) activation_impl<V>(y, n, act);
}

// ---- depthwise 3x3 ---------------------------------------------------------------------
template <class V, int S>
void dwconv3x3_row_impl(const float* r0, const float* r1, const float* r2, const float* w,
                        float bias, float* y, size_t n, const Activation* act) {
  using T = typename V::T;
  float lo, hi;
  const bool clamp = act_as_clamp(*act, &lo, &hi);
  const T vlo = V::set1(lo), vhi = V::set1(hi), vb = V::set1(bias);
  const T k0 = V::set1(w[0]), k1 = V::set1(w[1]), k2 = V::set1(w[2]);
  const T k3 = V::set1(w[3]), k4 = V::set1(w[4]), k5 = V::set1(w[5]);
  const T k6 = V::set1(w[6]), k7 = V::set1(w[7]), k8 = V::set1(w[8]);
  // Outputs are a pure function of the input, so the last partial vector is computed as
  // a full vector ending at n (overlapping the previous one): no scalar tail.
  auto body = [&](size_t x) {
    T acc = vb;
    if (S == 1) {
      acc = V::fma(V::load(r0 + x), k0, acc);
      acc = V::fma(V::load(r0 + x + 1), k1, acc);
      acc = V::fma(V::load(r0 + x + 2), k2, acc);
      acc = V::fma(V::load(r1 + x), k3, acc);
      acc = V::fma(V::load(r1 + x + 1), k4, acc);
      acc = V::fma(V::load(r1 + x + 2), k5, acc);
      acc = V::fma(V::load(r2 + x), k6, acc);
      acc = V::fma(V::load(r2 + x + 1), k7, acc);
      acc = V::fma(V::load(r2 + x + 2), k8, acc);
    } else {
      T e, o, e2, o2;
      V::load_even_odd(r0 + 2 * x, e, o);
      V::load_even_odd(r0 + 2 * x + 2, e2, o2);
      acc = V::fma(e, k0, acc);
      acc = V::fma(o, k1, acc);
      acc = V::fma(e2, k2, acc);
      V::load_even_odd(r1 + 2 * x, e, o);
      V::load_even_odd(r1 + 2 * x + 2, e2, o2);
      acc = V::fma(e, k3, acc);
      acc = V::fma(o, k4, acc);
      acc = V::fma(e2, k5, acc);
      V::load_even_odd(r2 + 2 * x, e, o);
      V::load_even_odd(r2 + 2 * x + 2, e2, o2);
      acc = V::fma(e, k6, acc);
      acc = V::fma(o, k7, acc);
      acc = V::fma(e2, k8, acc);
    }
    V::store(y + x, V::min(vhi, V::max(vlo, acc)));
  };
  size_t x = 0;
  for (; x + V::N <= n; x += V::N) body(x);
  if (x < n && n >= V::N) {
    body(n - V::N);
    x = n;
  }
  for (; x < n; ++x) {  // rows shorter than one vector: same taps, one lane
    const float* p0 = r0 + x * S;
    const float* p1 = r1 + x * S;
    const float* p2 = r2 + x * S;
    float acc = bias;
    acc += p0[0] * w[0] + p0[1] * w[1] + p0[2] * w[2];
    acc += p1[0] * w[3] + p1[1] * w[4] + p1[2] * w[5];
    acc += p2[0] * w[6] + p2[1] * w[7] + p2[2] * w[8];
    y[x] = acc < lo ? lo : (acc > hi ? hi : acc);
  }
  if (!clamp) activation_impl<V>(y, n, act);
}

// ---- pooling rows ----------------------------------------------------------------------
template <class V>
inline typename V::T load_strided(const float* p, size_t s) {
  if (s == 1) return V::load(p);
  if (s == 2) {
    typename V::T e, o;
    V::load_even_odd(p, e, o);
    return e;
  }
  alignas(64) float t[V::N];
  for (size_t j = 0; j < V::N; ++j) t[j] = p[j * s];
  return V::load(t);
}

template <class V, bool MAX>
void pool_row_impl(const float* const* rows, size_t nrows, size_t kw, size_t s, float* y,
                   size_t n, float scale) {
  using T = typename V::T;
  // Max: plain max over the window, and NaN lanes collected apart (unord, a compare
  // and an OR per tap pair, cheaper than a NaN-keeping max per tap) and set at the end.
  auto body = [&](size_t x) {
    T acc = MAX ? V::set1(-__builtin_inff()) : V::zero();
    T nan = V::zero();
    if (s == 2 && (kw == 2 || kw == 3)) {
      // 2x2 / 3x3 stride 2 (the usual pools): taps 0 and 1 are the even and odd lanes of
      // one deinterleaving load, tap 2 the even lanes of the next.
      for (size_t i = 0; i < nrows; ++i) {
        const float* p = rows[i] + x * 2;
        T e, o;
        V::load_even_odd(p, e, o);
        T v = MAX ? V::max(e, o) : V::add(e, o);
        if (MAX) nan = V::or_bits(nan, V::unord(e, o));
        if (kw == 3) {
          T e2, o2;
          V::load_even_odd(p + 2, e2, o2);
          v = MAX ? V::max(v, e2) : V::add(v, e2);
          if (MAX) nan = V::or_bits(nan, V::unord(e2, e2));
        }
        acc = MAX ? V::max(acc, v) : V::add(acc, v);
      }
    } else {
      for (size_t i = 0; i < nrows; ++i) {
        const float* p = rows[i] + x * s;
        for (size_t j = 0; j < kw; ++j) {
          const T v = load_strided<V>(p + j, s);
          acc = MAX ? V::max(acc, v) : V::add(acc, v);
          if (MAX) nan = V::or_bits(nan, V::unord(v, v));
        }
      }
    }
    if (MAX) acc = V::or_bits(acc, nan);  // all-ones lanes: NaN
    if (!MAX) acc = V::mul(acc, V::set1(scale));
    V::store(y + x, acc);
  };
  size_t x = 0;
  for (; x + V::N <= n; x += V::N) body(x);
  if (x < n && n >= V::N) {  // overlapping last vector (pure function of the input)
    body(n - V::N);
    x = n;
  }
  for (; x < n; ++x) {
    float acc = MAX ? -__builtin_inff() : 0.f;
    for (size_t i = 0; i < nrows; ++i)
      for (size_t j = 0; j < kw; ++j) {
        const float v = rows[i][x * s + j];
        if (MAX) {  // no data-dependent branch; a NaN (rare) sticks: max(NaN, v) is NaN
          acc = acc < v ? v : acc;
          if (v != v) acc = v;
        } else {
          acc += v;
        }
      }
    y[x] = MAX ? acc : acc * scale;
  }
}

template <class V>
void maxpool_row_impl(const float* const* rows, size_t nrows, size_t kw, size_t s, float* y,
                      size_t n) {
  pool_row_impl<V, true>(rows, nrows, kw, s, y, n, 1.f);
}
template <class V>
void avgpool_row_impl(const float* const* rows, size_t nrows, size_t kw, size_t s, float* y,
                      size_t n, float scale) {
  pool_row_impl<V, false>(rows, nrows, kw, s, y, n, scale);
}

// ---- reductions and softmax ------------------------------------------------------------
template <class V>
float sum_impl(const float* x, size_t n) {
  using T = typename V::T;
  T a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
  size_t i = 0;
  for (; i + 4 * V::N <= n; i += 4 * V::N) {
    a0 = V::add(a0, V::load(x + i));
    a1 = V::add(a1, V::load(x + i + V::N));
    a2 = V::add(a2, V::load(x + i + 2 * V::N));
    a3 = V::add(a3, V::load(x + i + 3 * V::N));
  }
  for (; i + V::N <= n; i += V::N) a0 = V::add(a0, V::load(x + i));
  float s = V::hsum(V::add(V::add(a0, a1), V::add(a2, a3)));
  for (; i < n; ++i) s += x[i];
  return s;
}

template <class V>
void softmax_rows_impl(const float* x, float* y, size_t rows, size_t len, int log) {
  using T = typename V::T;
  for (size_t r = 0; r < rows; ++r, x += len, y += len) {
    T vm = V::set1(-__builtin_inff());
    size_t i = 0;
    for (; i + V::N <= len; i += V::N) vm = V::max(vm, V::load(x + i));
    float m = V::hmax(vm);
    for (; i < len; ++i) m = x[i] > m ? x[i] : m;
    const T vmax = V::set1(m);
    // y = exp(x - max) (or x - max for log), accumulating the sum of exps.
    T vs = V::zero();
    float s = 0.f;
    for (i = 0; i + V::N <= len; i += V::N) {
      const T d = V::sub(V::load(x + i), vmax);
      const T e = vexp<V>(d);
      vs = V::add(vs, e);
      V::store(y + i, log ? d : e);
    }
    if (i < len) {
      alignas(64) float t[V::N];
      for (size_t j = 0; j < V::N; ++j) t[j] = i + j < len ? x[i + j] - m : 0.f;
      const T d = V::load(t);
      V::store(t, vexp<V>(d));
      for (size_t j = 0; j < len - i; ++j) {
        s += t[j];
        y[i + j] = log ? x[i + j] - m : t[j];
      }
    }
    s += V::hsum(vs);
    if (log) {
      const float ls = __builtin_logf(s);
      map_inplace<V>(y, len, [&](T v) { return V::sub(v, V::set1(ls)); });
    } else {
      const float inv = 1.f / s;
      map_inplace<V>(y, len, [&](T v) { return V::mul(v, V::set1(inv)); });
    }
  }
}

// One outer block: x[a*inner + i], a < len; vectorized across i.
template <class V>
void softmax_inner_impl(const float* x, float* y, size_t len, size_t inner, int log) {
  using T = typename V::T;
  alignas(64) float tx[V::N], ty[V::N];
  for (size_t i = 0; i < inner; i += V::N) {
    const size_t w = inner - i < V::N ? inner - i : V::N;
    auto ld = [&](const float* p) {
      if (w == V::N) return V::load(p);
      for (size_t j = 0; j < V::N; ++j) tx[j] = j < w ? p[j] : 0.f;
      return V::load(tx);
    };
    auto st = [&](float* p, T v) {
      if (w == V::N) return V::store(p, v);
      V::store(ty, v);
      for (size_t j = 0; j < w; ++j) p[j] = ty[j];
    };
    T vm = V::set1(-__builtin_inff());
    for (size_t a = 0; a < len; ++a) vm = V::max(vm, ld(x + a * inner + i));
    T vs = V::zero();
    for (size_t a = 0; a < len; ++a) {
      const T d = V::sub(ld(x + a * inner + i), vm);
      const T e = vexp<V>(d);
      vs = V::add(vs, e);
      st(y + a * inner + i, log ? d : e);
    }
    if (log) {
      alignas(64) float t[V::N];
      V::store(t, vs);
      for (size_t j = 0; j < V::N; ++j) t[j] = __builtin_logf(t[j] > 0.f || t[j] != t[j] ? t[j] : 1.f);
      const T ls = V::load(t);
      for (size_t a = 0; a < len; ++a) st(y + a * inner + i, V::sub(ld(y + a * inner + i), ls));
    } else {
      const T inv = V::div(V::set1(1.f), vs);
      for (size_t a = 0; a < len; ++a) st(y + a * inner + i, V::mul(ld(y + a * inner + i), inv));
    }
  }
}

// The F32Kernels table for traits V with GEMM microkernel `gemm`. constexpr, so the
// table is constant-initialized: no code compiled with ISA flags runs at
// static-initialization time on a CPU that may lack that ISA.
template <class V>
constexpr F32Kernels make_f32_kernels(const char* isa, const GemmUkernel* gemm) {
  F32Kernels k{};
  k.isa = isa;
  k.gemm = gemm;
  k.activation = &activation_impl<V>;
  k.binary = &binary_impl<V>;
  k.dwconv3x3s1 = &dwconv3x3_row_impl<V, 1>;
  k.dwconv3x3s2 = &dwconv3x3_row_impl<V, 2>;
  k.softmax_rows = &softmax_rows_impl<V>;
  k.softmax_inner = &softmax_inner_impl<V>;
  k.sum = &sum_impl<V>;
  k.maxpool_row = &maxpool_row_impl<V>;
  k.avgpool_row = &avgpool_row_impl<V>;
  k.im2col_pack = &im2col_pack;
  return k;
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
