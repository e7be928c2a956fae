// Kernel tests: every optimized fp32 kernel of every instruction set this build and CPU
// can run (scalar, AVX2+FMA, AVX-512F, NEON) against straightforward scalar references
// written here (double accumulation). Sizes sweep below / at / above each microkernel
// tile, primes (13, 127), strided and padded cases; multi-threaded runs must match the
// single-threaded result bit for bit.
//
// A failure prints: kernel, isa, shape, index, expected, got. Exit status is non-zero on
// any failure; the last line is "N passed, N failed".
//   kernel_tests [--isa scalar|avx2|avx512|neon] [--quick]
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "f32/conv_f32.h"
#include "f32/elementwise_f32.h"
#include "f32/fc_f32.h"
#include "f32/pool_f32.h"
#include "f32/softmax_f32.h"
#include "f32_tables.h"

using namespace mobrt::cpu;
using mobrt::Activation;

namespace {

int g_passed = 0, g_failed = 0;
std::mt19937 g_rng(12345);

std::vector<float> rand_vec(size_t n, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}

// Compares got vs expected; one test case = one call. tol scales with |expected|.
bool check(const std::string& kernel, const std::string& shape, const float* got,
           const float* expect, size_t n, float atol = 1e-4f, float rtol = 1e-4f) {
  for (size_t i = 0; i < n; ++i) {
    const float e = expect[i], g = got[i];
    const bool ok = std::fabs(g - e) <= atol + rtol * std::fabs(e) || (std::isnan(e) && std::isnan(g)) ||
                    (std::isinf(e) && g == e);
    if (!ok) {
      std::printf("FAIL %s shape=%s index=%zu expected=%.8g got=%.8g\n", kernel.c_str(),
                  shape.c_str(), i, e, g);
      ++g_failed;
      return false;
    }
  }
  ++g_passed;
  return true;
}

bool check_equal(const std::string& kernel, const std::string& shape, const std::vector<float>& a,
                 const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      std::printf("FAIL %s shape=%s index=%zu 1-thread=%.9g n-thread=%.9g (thread counts disagree)\n",
                  kernel.c_str(), shape.c_str(), i, a[i], b[i]);
      ++g_failed;
      return false;
    }
  }
  ++g_passed;
  return true;
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// ---- threads: a plain std::thread runner (the core's pool is not needed here) ---------
struct Threads {
  int n;
};
void threads_parallel_for(void* pool, int64_t n, void* ctx, void (*fn)(void*, int64_t)) {
  const int t = static_cast<Threads*>(pool)->n;
  std::vector<std::thread> ts;
  for (int w = 0; w < t; ++w)
    ts.emplace_back([=] {
      for (int64_t i = n * w / t; i < n * (w + 1) / t; ++i) fn(ctx, i);
    });
  for (auto& th : ts) th.join();
}
Threads g_three{3};
TaskRunner three_threads() {
  TaskRunner r;
  r.parallel_for = threads_parallel_for;
  r.pool = &g_three;
  r.threads = 3;
  return r;
}

// ---- references -----------------------------------------------------------------------
double ref_act(double x, const Activation& a) {
  if (std::isnan(x)) return x;  // every activation keeps NaN (docs/runtime.md)
  switch (a.kind) {
    case ActKind::None: return x;
    case ActKind::Relu: return x > 0 ? x : 0;
    case ActKind::Clip: return x < a.a ? a.a : (x > a.b ? a.b : x);
    case ActKind::LeakyRelu: return x < 0 ? a.a * x : x;
    case ActKind::HardSwish: return x * std::min(1.0, std::max(0.0, x / 6 + 0.5));
    case ActKind::Sigmoid: return 1 / (1 + std::exp(-x));
    case ActKind::Tanh: return std::tanh(x);
    case ActKind::HardSigmoid: return std::min(1.0, std::max(0.0, a.a * x + a.b));
  }
  return x;
}
const char* act_name(ActKind k) {
  static const char* names[] = {"none", "relu", "clip", "leakyrelu", "hardsigmoid", "hardswish", "sigmoid", "tanh"};
  return names[int(k)];
}
// Every kind, with parameters; the order the size sweeps below index by (i % 8).
std::vector<Activation> all_acts() {
  std::vector<Activation> v;
  for (ActKind k : {ActKind::None, ActKind::Relu, ActKind::Clip, ActKind::LeakyRelu, ActKind::HardSwish,
                    ActKind::Sigmoid, ActKind::Tanh, ActKind::HardSigmoid}) {
    Activation a;
    a.kind = k;
    if (a.kind == ActKind::Clip) { a.a = -0.5f; a.b = 0.7f; }
    if (a.kind == ActKind::LeakyRelu) a.a = 0.1f;
    if (a.kind == ActKind::HardSigmoid) { a.a = 0.2f; a.b = 0.5f; }
    v.push_back(a);
  }
  return v;
}

struct ConvRef {
  static std::vector<float> run(const Conv2dShape& s, const float* x, const float* w,
                                const float* bias, const Activation& act) {
    std::vector<float> y(s.n * s.cout * s.oh * s.ow);
    const int64_t cin_g = s.cin / s.group, cout_g = s.cout / s.group;
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t co = 0; co < s.cout; ++co) {
        const int64_t g = co / cout_g;
        for (int64_t oy = 0; oy < s.oh; ++oy)
          for (int64_t ox = 0; ox < s.ow; ++ox) {
            double acc = bias ? bias[co] : 0;
            for (int64_t ci = 0; ci < cin_g; ++ci)
              for (int64_t ky = 0; ky < s.kh; ++ky)
                for (int64_t kx = 0; kx < s.kw; ++kx) {
                  const int64_t iy = oy * s.sh - s.pt + ky * s.dh, ix = ox * s.sw - s.pl + kx * s.dw;
                  if (iy < 0 || iy >= s.ih || ix < 0 || ix >= s.iw) continue;
                  acc += double(x[((n * s.cin + g * cin_g + ci) * s.ih + iy) * s.iw + ix]) *
                         w[((co * cin_g + ci) * s.kh + ky) * s.kw + kx];
                }
            y[((n * s.cout + co) * s.oh + oy) * s.ow + ox] = float(ref_act(acc, act));
          }
      }
    return y;
  }
};

// ---- tests ----------------------------------------------------------------------------
void test_gemm(const F32Kernels& ks, bool quick) {
  const int mr = ks.gemm->mr, nr = ks.gemm->nr;
  std::vector<int> ms = {1, mr - 1, mr, mr + 1, 2 * mr + 3, 13, 127};
  std::vector<int> ns = {1, nr - 1, nr, nr + 1, 13, 127, 3 * nr + 5};
  std::vector<int> kset = {1, 2, 13, 127, 300};  // 300 > KC: K slicing + accumulate
  if (quick) { ms = {1, mr, mr + 1, 13}; ns = {1, nr, nr + 1, 13}; kset = {13, 300}; }
  const std::string name = ks.gemm->name;
  for (int m : ms) for (int n : ns) for (int k : kset) {
    if (m <= 0 || n <= 0) continue;
    for (int variant = 0; variant < 4; ++variant) {
      const bool ta = variant & 1, tb = variant & 2;
      // Strided operands: leading dimension larger than the row length.
      const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1;
      auto a = rand_vec(size_t(ta ? k : m) * lda), b = rand_vec(size_t(tb ? n : k) * ldb);
      const Activation act = all_acts()[size_t(m + n + k + variant) % 8];
      const BiasMode bm = BiasMode((m + n + variant) % 3);
      auto bias = rand_vec(size_t(std::max(m, n)));
      std::vector<float> c(size_t(m) * ldc, 7.f), ref(c);
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          double acc = bm == BiasMode::kPerRow ? bias[i] : bm == BiasMode::kPerCol ? bias[j] : 0;
          for (int kk = 0; kk < k; ++kk)
            acc += double(ta ? a[size_t(kk) * lda + i] : a[size_t(i) * lda + kk]) *
                   (tb ? b[size_t(j) * ldb + kk] : b[size_t(kk) * ldb + j]);
          ref[size_t(i) * ldc + j] = float(ref_act(acc, act));
        }
      sgemm(*ks.gemm, ks.activation, ta, tb, m, n, k, a.data(), lda, b.data(), ldb, c.data(), ldc,
            bm == BiasMode::kNone ? nullptr : bias.data(), bm, act, nullptr);
      const std::string shape = fmt("m=%d n=%d k=%d ta=%d tb=%d bias=%d act=%s", m, n, k, ta, tb,
                                    int(bm), act_name(act.kind));
      check(name, shape, c.data(), ref.data(), c.size(), 1e-4f, 1e-4f);
      if (m >= 13 && n >= 13 && !quick) {
        TaskRunner r = three_threads();
        std::vector<float> c3(c.size(), 7.f);
        sgemm(*ks.gemm, ks.activation, ta, tb, m, n, k, a.data(), lda, b.data(), ldb, c3.data(), ldc,
              bm == BiasMode::kNone ? nullptr : bias.data(), bm, act, &r);
        check_equal(name + " (3 threads)", shape, c, c3);
      }
    }
  }
  // Larger than one MC x NC block in both directions, multi-threaded.
  {
    const int m = 2 * 168 + 7, n = 2 * 512 + 9, k = 2 * 256 + 1;
    auto a = rand_vec(size_t(m) * k), b = rand_vec(size_t(k) * n);
    std::vector<float> c1(size_t(m) * n), c3(c1.size()), ref(c1.size());
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double acc = 0;
        for (int kk = 0; kk < k; ++kk) acc += double(a[size_t(i) * k + kk]) * b[size_t(kk) * n + j];
        ref[size_t(i) * n + j] = float(acc);
      }
    TaskRunner r = three_threads();
    sgemm(*ks.gemm, ks.activation, false, false, m, n, k, a.data(), k, b.data(), n, c1.data(), n, nullptr, BiasMode::kNone, Activation(), nullptr);
    sgemm(*ks.gemm, ks.activation, false, false, m, n, k, a.data(), k, b.data(), n, c3.data(), n, nullptr, BiasMode::kNone, Activation(), &r);
    const std::string shape = fmt("m=%d n=%d k=%d", m, n, k);
    check(name, shape, c1.data(), ref.data(), c1.size(), 2e-4f, 1e-4f);
    check_equal(name + " (3 threads)", shape, c1, c3);
  }
}

void test_activation(const F32Kernels& ks) {
  const std::string isa = ks.isa;
  for (const Activation& act : all_acts())
    for (size_t n : {1, 3, 4, 7, 8, 13, 16, 17, 31, 127, 1000}) {
      auto x = rand_vec(n, -12.f, 12.f);
      x[0] = 0.f;
      std::vector<float> y(x), ref(n);
      for (size_t i = 0; i < n; ++i) ref[i] = float(ref_act(x[i], act));
      ks.activation(y.data(), n, &act);
      check(fmt("f32_vact_%s__%s", act_name(act.kind), isa.c_str()), fmt("n=%zu", n), y.data(),
            ref.data(), n, 2e-6f, 2e-5f);
    }
  // Extreme inputs must not produce NaN/Inf for the transcendental ones.
  std::vector<float> x = {-1000.f, -88.f, -20.f, 20.f, 88.f, 1000.f, 0.f, -0.f, 1e-8f};
  for (ActKind k : {ActKind::Sigmoid, ActKind::Tanh}) {
    Activation a;
    a.kind = k;
    std::vector<float> y(x), ref(x.size());
    for (size_t i = 0; i < x.size(); ++i) ref[i] = float(ref_act(x[i], a));
    ks.activation(y.data(), y.size(), &a);
    check(fmt("f32_vact_%s__%s", act_name(k), isa.c_str()), "extremes", y.data(), ref.data(), y.size(), 1e-6f, 1e-5f);
  }
}

double ref_bin(BinOp op, double a, double b) {
  switch (op) {
    case BinOp::kAdd: return a + b;
    case BinOp::kSub: return a - b;
    case BinOp::kMul: return a * b;
    case BinOp::kDiv: return a / b;
    case BinOp::kMax: return std::isnan(a) || std::isnan(b) ? NAN : (a > b ? a : b);
    case BinOp::kMin: return std::isnan(a) || std::isnan(b) ? NAN : (a < b ? a : b);
  }
  return 0;
}

void test_binary(const F32Kernels& ks) {
  const std::string isa = ks.isa;
  const char* names[] = {"add", "sub", "mul", "div", "max", "min"};
  struct Case { std::vector<int64_t> a, b; };
  std::vector<Case> cases = {
      {{13}, {13}}, {{127}, {1}}, {{1}, {127}}, {{2, 3, 13, 7}, {2, 3, 13, 7}},
      {{1, 16, 9, 9}, {1, 16, 1, 1}}, {{1, 1, 1, 1}, {2, 5, 3, 17}}, {{2, 5, 3, 17}, {17}},
      {{4, 1, 6}, {1, 5, 1}}, {{3, 1}, {1, 127}}, {{1, 24, 17, 17}, {1, 24, 17, 17}},
      {{2, 3, 4, 5}, {3, 1, 5}}, {{40000}, {40000}}, {{}, {5}}};
  for (int op = 0; op < 6; ++op)
    for (const Case& cs : cases) {
      const int ra = int(cs.a.size()), rb = int(cs.b.size()), r = std::max(ra, rb);
      std::vector<int64_t> out(r);
      for (int i = 0; i < r; ++i) {
        const int ia = i - (r - ra), ib = i - (r - rb);
        out[i] = std::max(ia >= 0 ? cs.a[ia] : 1, ib >= 0 ? cs.b[ib] : 1);
      }
      int64_t na = 1, nb = 1, ny = 1;
      for (auto d : cs.a) na *= d;
      for (auto d : cs.b) nb *= d;
      for (auto d : out) ny *= d;
      auto a = rand_vec(na), b = rand_vec(nb, 0.5f, 2.f);
      const Activation act = all_acts()[size_t(op + ra) % 8];
      std::vector<float> y(ny), ref(ny);
      for (int64_t i = 0; i < ny; ++i) {
        int64_t rem = i, oa = 0, ob = 0, sa = 1, sb = 1;
        for (int d = r - 1; d >= 0; --d) {
          const int64_t idx = rem % out[d];
          rem /= out[d];
          const int ia = d - (r - ra), ib = d - (r - rb);
          if (ia >= 0) { if (cs.a[ia] != 1) oa += idx * sa; sa *= cs.a[ia]; }
          if (ib >= 0) { if (cs.b[ib] != 1) ob += idx * sb; sb *= cs.b[ib]; }
        }
        ref[i] = float(ref_act(ref_bin(BinOp(op), a[oa], b[ob]), act));
      }
      binary_run(ks, BinOp(op), cs.a.data(), ra, a.data(), cs.b.data(), rb, b.data(), y.data(), act, nullptr);
      std::string shape = "a=[";
      for (auto d : cs.a) shape += fmt("%lld,", (long long)d);
      shape += "] b=[";
      for (auto d : cs.b) shape += fmt("%lld,", (long long)d);
      shape += fmt("] act=%s", act_name(act.kind));
      check(fmt("f32_vbinary_%s__%s", names[op], isa.c_str()), shape, y.data(), ref.data(), ny, 2e-6f, 2e-5f);
    }
}

void test_conv(const F32Kernels& ks, bool quick) {
  const std::string isa = ks.isa;
  struct C { int64_t n, cin, ih, iw, cout, k, s, p, d, g; };
  std::vector<C> cases = {
      {1, 3, 13, 13, 8, 3, 1, 1, 1, 1},   {1, 16, 7, 9, 13, 1, 1, 0, 1, 1},
      {2, 5, 11, 10, 17, 3, 2, 1, 1, 1},  {1, 8, 14, 14, 32, 1, 1, 0, 1, 1},
      {1, 3, 17, 15, 16, 5, 2, 2, 1, 1},  {1, 12, 9, 9, 12, 3, 1, 2, 2, 3},
      {1, 4, 23, 23, 6, 7, 3, 3, 1, 2},   {1, 32, 8, 8, 64, 3, 1, 1, 1, 1},
      {1, 127, 5, 5, 13, 1, 1, 0, 1, 1},  {1, 64, 28, 28, 29, 1, 2, 0, 1, 1},
      {1, 300, 6, 6, 20, 3, 1, 1, 1, 1},  {1, 20, 17, 19, 37, 1, 1, 0, 1, 1},
      {1, 130, 17, 19, 3, 1, 1, 0, 1, 1}, {2, 300, 16, 17, 16, 1, 1, 0, 1, 1},
      // stride 1 with >= 64 input channels per group: shift-and-accumulate
      {1, 64, 9, 11, 17, 3, 1, 1, 1, 1},  {2, 96, 7, 7, 30, 3, 1, 1, 1, 1},
      {1, 64, 10, 12, 8, 3, 1, 2, 2, 1},  {1, 70, 13, 9, 5, 5, 1, 2, 1, 1},
      {1, 128, 6, 6, 16, 3, 1, 0, 1, 2},  {1, 300, 5, 4, 29, 2, 1, 1, 1, 1},
      {1, 64, 20, 20, 20, 3, 1, 1, 1, 1}, {1, 80, 18, 17, 9, 3, 1, 2, 2, 1},
      // stride 2 through even/odd column phases: odd/even widths, dilation, groups, K > 256
      {1, 3, 45, 45, 16, 7, 2, 3, 1, 1},  {1, 3, 14, 13, 8, 3, 2, 1, 1, 1},
      {1, 8, 14, 14, 20, 3, 2, 1, 2, 2},  {2, 128, 9, 7, 16, 3, 2, 1, 1, 1},
      {1, 3, 1, 2, 5, 3, 2, 1, 1, 1},     {1, 16, 33, 70, 7, 3, 2, 0, 1, 1}};
  if (quick) cases.resize(4);
  for (const C& c : cases) {
    Conv2dShape s;
    s.n = c.n; s.cin = c.cin; s.ih = c.ih; s.iw = c.iw; s.cout = c.cout;
    s.kh = s.kw = c.k; s.sh = s.sw = c.s; s.pt = s.pl = s.pb = s.pr = c.p; s.dh = s.dw = c.d;
    s.group = c.g;
    conv2d_output_dims(&s);
    auto x = rand_vec(s.n * s.cin * s.ih * s.iw), w = rand_vec(s.cout * (s.cin / s.group) * s.kh * s.kw);
    auto bias = rand_vec(s.cout);
    const Activation act = all_acts()[size_t(c.cin + c.k) % 8];
    auto ref = ConvRef::run(s, x.data(), w.data(), bias.data(), act);
    std::vector<float> pw(conv2d_packed_weights_floats(ks, s)), scratch(conv2d_scratch_floats(ks, s));
    conv2d_pack_weights(ks, s, w.data(), pw.data());
    std::vector<float> y(ref.size()), y3(ref.size());
    conv2d_run(ks, s, pw.data(), bias.data(), act, x.data(), y.data(), scratch.data(), nullptr);
    TaskRunner r = three_threads();
    conv2d_run(ks, s, pw.data(), bias.data(), act, x.data(), y3.data(), scratch.data(), &r);
    const std::string shape = fmt("n=%lld cin=%lld %lldx%lld cout=%lld k=%lld s=%lld p=%lld d=%lld g=%lld act=%s",
        (long long)s.n, (long long)s.cin, (long long)s.ih, (long long)s.iw, (long long)s.cout,
        (long long)s.kh, (long long)s.sh, (long long)s.pt, (long long)s.dh, (long long)s.group, act_name(act.kind));
    const std::string name = std::string(conv2d_is_pointwise(s) ? "conv_f32_1x1_gemm__" : "conv_f32_im2col_gemm__") + isa;
    check(name, shape, y.data(), ref.data(), y.size(), 1e-4f, 1e-4f);
    check_equal(name + " (3 threads)", shape, y, y3);
  }
  // Asymmetric padding, with and without shift-and-accumulate (cin 3 vs 80).
  for (int64_t cin : {int64_t(3), int64_t(80)}) {
    Conv2dShape s;
    s.cin = cin; s.ih = 10; s.iw = 13; s.cout = 5; s.kh = 3; s.kw = 2; s.sh = 2; s.sw = 1;
    s.pt = 0; s.pl = 1; s.pb = 1; s.pr = 0;
    conv2d_output_dims(&s);
    auto x = rand_vec(s.cin * s.ih * s.iw), w = rand_vec(s.cout * s.cin * s.kh * s.kw);
    auto ref = ConvRef::run(s, x.data(), w.data(), nullptr, Activation());
    std::vector<float> pw(conv2d_packed_weights_floats(ks, s)), scratch(conv2d_scratch_floats(ks, s)), y(ref.size());
    conv2d_pack_weights(ks, s, w.data(), pw.data());
    conv2d_run(ks, s, pw.data(), nullptr, Activation(), x.data(), y.data(), scratch.data(), nullptr);
    check("conv_f32_im2col_gemm__" + isa, fmt("cin=%lld asymmetric pads 3x2 s(2,1)", (long long)cin), y.data(), ref.data(), y.size());
    // Stride 1 with the same asymmetric pads.
    Conv2dShape t = s;
    t.sh = 1;
    conv2d_output_dims(&t);
    auto ref1 = ConvRef::run(t, x.data(), w.data(), nullptr, Activation());
    std::vector<float> pw1(conv2d_packed_weights_floats(ks, t)), scr1(conv2d_scratch_floats(ks, t) + 1), y1(ref1.size());
    conv2d_pack_weights(ks, t, w.data(), pw1.data());
    conv2d_run(ks, t, pw1.data(), nullptr, Activation(), x.data(), y1.data(), scr1.data(), nullptr);
    check("conv_f32_gemm__" + isa, fmt("cin=%lld asymmetric pads 3x2 s1", (long long)cin), y1.data(), ref1.data(), y1.size());
  }
}

void test_dwconv(const F32Kernels& ks) {
  const std::string isa = ks.isa;
  struct C { int64_t c, h, w, k, s, p, d; };
  std::vector<C> cases = {{3, 13, 13, 3, 1, 1, 1}, {5, 13, 13, 3, 2, 1, 1}, {2, 1, 1, 3, 1, 1, 1},
                          {4, 127, 9, 3, 1, 1, 1}, {3, 9, 127, 3, 2, 1, 1}, {8, 16, 16, 3, 2, 1, 1},
                          {7, 17, 31, 3, 1, 0, 1}, {6, 14, 15, 3, 2, 0, 1}, {3, 12, 12, 5, 1, 2, 1},
                          {3, 12, 12, 3, 1, 2, 2}, {4, 19, 19, 5, 2, 2, 1}, {2, 32, 33, 3, 1, 1, 1},
                          {2, 20, 100, 3, 1, 1, 1}, {2, 15, 70, 3, 1, 0, 1}, {2, 9, 131, 3, 2, 0, 1},
                          // whole-plane kernels: widths below/at/above one chunk (16 s1, 15 s2 outputs)
                          {17, 7, 7, 3, 1, 1, 1}, {17, 7, 7, 3, 2, 1, 1}, {9, 14, 14, 3, 1, 1, 1},
                          {9, 14, 14, 3, 2, 1, 1}, {3, 16, 16, 3, 1, 1, 1}, {3, 17, 17, 3, 1, 1, 1},
                          {3, 29, 29, 3, 2, 1, 1}, {3, 30, 30, 3, 2, 1, 1}, {3, 31, 31, 3, 2, 1, 1},
                          {3, 33, 32, 3, 2, 0, 1}, {3, 28, 28, 3, 2, 1, 1}, {3, 13, 13, 3, 1, 2, 1},
                          {3, 13, 13, 3, 2, 2, 1}, {3, 2, 2, 3, 2, 1, 1}, {3, 1, 5, 3, 2, 1, 1},
                          {2, 5, 481, 3, 1, 1, 1}, {2, 5, 1000, 3, 2, 1, 1}, {2, 5, 960, 3, 2, 1, 1},
                          // stride-1 narrow-plane kernel: at/over its 16-lane limits
                          {3, 9, 13, 3, 1, 0, 1}, {3, 4, 15, 3, 1, 0, 1}, {3, 4, 16, 3, 1, 0, 1},
                          {3, 5, 14, 3, 1, 1, 1}, {3, 5, 15, 3, 1, 1, 1}, {3, 3, 1, 3, 1, 1, 1},
                          {3, 6, 30, 3, 1, 1, 1}, {3, 6, 31, 3, 1, 1, 1}, {3, 5, 47, 3, 1, 0, 1},
                          {3, 5, 62, 3, 1, 1, 1}, {3, 5, 63, 3, 1, 1, 1}, {3, 4, 56, 3, 1, 2, 1},
                          {2, 4, 112, 3, 1, 1, 1}, {2, 4, 126, 3, 1, 1, 1}, {2, 4, 127, 3, 1, 1, 1},
                          {2, 3, 128, 3, 1, 0, 1}, {2, 3, 129, 3, 1, 0, 1}};
  // 3x3 plane kernels (the NEON ones gather border columns into a stack buffer): every
  // width 1..33 and 56, 112-114, pads 0/1/2, strides 1/2, so each border/tail split of
  // a 4-output block (and of AVX-512's 15/16-lane chunks) occurs.
  {
    std::vector<int64_t> widths;
    for (int64_t wd = 1; wd <= 33; ++wd) widths.push_back(wd);
    for (int64_t wd : {56, 112, 113, 114}) widths.push_back(wd);
    for (int64_t wd : widths)
      for (int64_t p = 0; p <= 2; ++p)
        for (int64_t st = 1; st <= 2; ++st) {
          const int64_t h = wd <= 16 ? wd : (wd % 5) + 3;
          if (wd + 2 * p < 3 || h + 2 * p < 3) continue;
          cases.push_back({2, h, wd, 3, st, p, 1});
        }
  }
  for (const C& c : cases)
    for (const Activation& act : {all_acts()[0], all_acts()[2], all_acts()[4]}) {
      Conv2dShape s;
      s.n = 2; s.cin = s.cout = s.group = c.c; s.ih = c.h; s.iw = c.w; s.kh = s.kw = c.k;
      s.sh = s.sw = c.s; s.pt = s.pl = s.pb = s.pr = c.p; s.dh = s.dw = c.d;
      conv2d_output_dims(&s);
      auto x = rand_vec(s.n * s.cin * s.ih * s.iw), w = rand_vec(s.cin * s.kh * s.kw), bias = rand_vec(s.cin);
      auto ref = ConvRef::run(s, x.data(), w.data(), bias.data(), act);
      std::vector<float> y(ref.size()), y3(ref.size());
      dwconv2d_run(ks, s, w.data(), bias.data(), act, x.data(), y.data(), nullptr);
      TaskRunner r = three_threads();
      dwconv2d_run(ks, s, w.data(), bias.data(), act, x.data(), y3.data(), &r);
      const bool k3 = c.k == 3 && c.d == 1;
      const std::string name = k3 ? fmt("conv_f32_dw3x3s%lld__%s", (long long)c.s, isa.c_str())
                                  : "conv_f32_dw_generic__" + isa;
      const std::string shape = fmt("c=%lld %lldx%lld k=%lld s=%lld p=%lld d=%lld act=%s", (long long)c.c,
          (long long)c.h, (long long)c.w, (long long)c.k, (long long)c.s, (long long)c.p, (long long)c.d, act_name(act.kind));
      check(name, shape, y.data(), ref.data(), y.size(), 1e-5f, 1e-5f);
      check_equal(name + " (3 threads)", shape, y, y3);
    }
}

void test_fc(const F32Kernels& ks) {
  const std::string isa = ks.isa;
  for (int64_t batch : {int64_t(1), int64_t(3), int64_t(13)})
    for (int64_t in : {int64_t(1), int64_t(13), int64_t(127), int64_t(300)})
      for (int64_t out : {int64_t(1), int64_t(13), int64_t(127), int64_t(ks.gemm->nr)}) {
        const bool out_by_in = (in + out) % 2 == 0;
        auto x = rand_vec(batch * in), w = rand_vec(in * out), bias = rand_vec(out);
        const Activation act = all_acts()[size_t(batch + in) % 8];
        std::vector<float> ref(batch * out), y(batch * out);
        for (int64_t b = 0; b < batch; ++b)
          for (int64_t o = 0; o < out; ++o) {
            double acc = bias[o];
            for (int64_t i = 0; i < in; ++i)
              acc += double(x[b * in + i]) * (out_by_in ? w[o * in + i] : w[i * out + o]);
            ref[b * out + o] = float(ref_act(acc, act));
          }
        std::vector<float> pw(fc_packed_weights_floats(ks, in, out)), scratch(fc_scratch_floats(ks, batch, in));
        fc_pack_weights(ks, in, out, w.data(), out_by_in, pw.data());
        fc_run(ks, batch, in, out, x.data(), pw.data(), bias.data(), act, y.data(), scratch.data(), nullptr);
        check("fully_connected_f32_gemm__" + isa,
              fmt("batch=%lld in=%lld out=%lld w=%s act=%s", (long long)batch, (long long)in, (long long)out,
                  out_by_in ? "[out,in]" : "[in,out]", act_name(act.kind)),
              y.data(), ref.data(), y.size());
      }
}

void test_pool(const F32Kernels& ks) {
  const std::string isa = ks.isa;
  struct C { int64_t c, h, w, k, s, p; bool inc; };
  std::vector<C> cases = {{3, 13, 13, 3, 2, 1, false}, {2, 14, 14, 2, 2, 0, false}, {4, 13, 127, 3, 1, 1, true},
                          {2, 7, 7, 7, 1, 0, false},  {3, 17, 19, 3, 3, 1, false}, {2, 16, 33, 5, 2, 2, true},
                          {1, 1, 1, 1, 1, 0, false},  {2, 112, 112, 3, 2, 1, false}};
  for (const C& c : cases)
    for (bool is_max : {true, false}) {
      Pool2dShape s;
      s.n = 2; s.c = c.c; s.ih = c.h; s.iw = c.w; s.kh = s.kw = c.k; s.sh = s.sw = c.s;
      s.pt = s.pl = s.pb = s.pr = c.p; s.count_include_pad = c.inc;
      s.oh = (s.ih + 2 * c.p - c.k) / c.s + 1;
      s.ow = (s.iw + 2 * c.p - c.k) / c.s + 1;
      auto x = rand_vec(s.n * s.c * s.ih * s.iw);
      std::vector<float> y(s.n * s.c * s.oh * s.ow), ref(y.size());
      for (int64_t pl = 0; pl < s.n * s.c; ++pl)
        for (int64_t oy = 0; oy < s.oh; ++oy)
          for (int64_t ox = 0; ox < s.ow; ++ox) {
            double acc = is_max ? -1e30 : 0;
            int cnt = 0;
            for (int64_t ky = 0; ky < s.kh; ++ky)
              for (int64_t kx = 0; kx < s.kw; ++kx) {
                const int64_t iy = oy * s.sh - s.pt + ky, ix = ox * s.sw - s.pl + kx;
                const bool in = iy >= 0 && iy < s.ih && ix >= 0 && ix < s.iw;
                if (in || c.inc) ++cnt;
                if (!in) continue;
                const float v = x[(pl * s.ih + iy) * s.iw + ix];
                acc = is_max ? std::max(acc, double(v)) : acc + v;
              }
            ref[(pl * s.oh + oy) * s.ow + ox] = float(is_max ? acc : acc / cnt);
          }
      if (is_max) maxpool2d_run(ks, s, x.data(), y.data(), nullptr);
      else avgpool2d_run(ks, s, x.data(), y.data(), nullptr);
      check(fmt("%s_f32__%s", is_max ? "maxpool2d" : "avgpool2d", isa.c_str()),
            fmt("c=%lld %lldx%lld k=%lld s=%lld p=%lld include_pad=%d", (long long)c.c, (long long)c.h,
                (long long)c.w, (long long)c.k, (long long)c.s, (long long)c.p, int(c.inc)),
            y.data(), ref.data(), y.size(), 1e-6f, 1e-5f);
    }
  for (int64_t hw : {int64_t(1), int64_t(7), int64_t(49), int64_t(127), int64_t(3136)}) {
    const int64_t planes = 13;
    auto x = rand_vec(planes * hw);
    std::vector<float> y(planes), ref(planes);
    for (int64_t p = 0; p < planes; ++p) {
      double s = 0;
      for (int64_t i = 0; i < hw; ++i) s += x[p * hw + i];
      ref[p] = float(s / hw);
    }
    global_avgpool_run(ks, planes, hw, x.data(), y.data(), nullptr);
    check("global_avgpool_f32__" + isa, fmt("planes=%lld hw=%lld", (long long)planes, (long long)hw),
          y.data(), ref.data(), planes, 1e-6f, 1e-5f);
  }
}

void test_softmax(const F32Kernels& ks) {
  const std::string isa = ks.isa;
  struct C { int64_t outer, len, inner; };
  for (const C& c : std::vector<C>{{1, 1000, 1}, {13, 13, 1}, {3, 127, 1}, {2, 1, 1}, {5, 7, 13},
                                   {2, 21, 49}, {1, 3, 16}, {4, 10, 1}, {1, 17, 8}})
    for (bool log : {false, true}) {
      auto x = rand_vec(c.outer * c.len * c.inner, -10.f, 10.f);
      std::vector<float> y(x.size()), ref(x.size());
      for (int64_t o = 0; o < c.outer; ++o)
        for (int64_t i = 0; i < c.inner; ++i) {
          double m = -1e30, s = 0;
          for (int64_t a = 0; a < c.len; ++a) m = std::max(m, double(x[(o * c.len + a) * c.inner + i]));
          for (int64_t a = 0; a < c.len; ++a) s += std::exp(x[(o * c.len + a) * c.inner + i] - m);
          for (int64_t a = 0; a < c.len; ++a) {
            const double d = x[(o * c.len + a) * c.inner + i] - m;
            ref[(o * c.len + a) * c.inner + i] = float(log ? d - std::log(s) : std::exp(d) / s);
          }
        }
      softmax_run(ks, c.outer, c.len, c.inner, log, x.data(), y.data(), nullptr);
      check(fmt("%s_f32__%s", log ? "log_softmax" : "softmax", isa.c_str()),
            fmt("outer=%lld len=%lld inner=%lld", (long long)c.outer, (long long)c.len, (long long)c.inner),
            y.data(), ref.data(), y.size(), 1e-6f, 2e-5f);
    }
}

}  // namespace

// ---- zero-size tensors and non-finite values (issue 7: findings 1, 2 and 8) ------------
// Empty buffers are exact zero-length heap allocations, so a kernel that touches one is
// caught by the ASan build; non-empty outputs are pre-filled with NaN, so one left unwritten
// (stale memory) fails.
struct Guarded {  // n floats, surrounded by sentinels
  std::vector<float> buf;
  size_t n;
  explicit Guarded(size_t n_) : buf(n_ + 32, 12345.f), n(n_) {}
  float* data() { return buf.data() + 16; }
  bool intact() const {
    for (size_t i = 0; i < 16; ++i)
      if (buf[i] != 12345.f || buf[16 + n + i] != 12345.f) return false;
    return true;
  }
};

void check_true(const std::string& kernel, const std::string& what, bool ok) {
  if (ok) {
    ++g_passed;
  } else {
    std::printf("FAIL %s %s\n", kernel.c_str(), what.c_str());
    ++g_failed;
  }
}

void test_zero_size(const F32Kernels& ks) {
  const std::string isa = ks.isa;
  TaskRunner r3 = three_threads();
  // Broadcasts with an empty output: nothing may be read from the empty input or written.
  struct B { std::vector<int64_t> a, b; };
  for (const B& c : std::vector<B>{{{4, 0}, {1, 1}}, {{0, 1000}, {1, 1}}, {{1, 1}, {0, 1000}}, {{2, 0, 3}, {1, 1, 3}},
                                   {{3, 1}, {0}}, {{0}, {1}}, {{5, 0, 7}, {5, 1, 7}}})
    for (int op = 0; op < 6; ++op)
      for (const TaskRunner* run : {static_cast<const TaskRunner*>(nullptr), static_cast<const TaskRunner*>(&r3)}) {
        int64_t na = 1, nb = 1;
        for (auto d : c.a) na *= d;
        for (auto d : c.b) nb *= d;
        std::unique_ptr<float[]> ea(new float[size_t(na)]), eb(new float[size_t(nb)]);  // exact sizes (0 or few)
        for (int64_t i = 0; i < na; ++i) ea[size_t(i)] = 1.f;
        for (int64_t i = 0; i < nb; ++i) eb[size_t(i)] = 2.f;
        Guarded y(0);
        binary_run(ks, BinOp(op), c.a.data(), int(c.a.size()), ea.get(), c.b.data(), int(c.b.size()), eb.get(),
                   y.data(), Activation(), run);
        std::string shape = fmt("op=%d a=[", op);
        for (auto d : c.a) shape += fmt("%lld,", (long long)d);
        shape += "] b=[";
        for (auto d : c.b) shape += fmt("%lld,", (long long)d);
        check_true("f32_vbinary_empty__" + isa, shape + "]: wrote outside an empty output", y.intact());
      }
  // K = 0: C = act(bias), never what the output held before.
  for (int64_t m : {int64_t(1), int64_t(5), int64_t(13)})
    for (int64_t n : {int64_t(1), int64_t(19), int64_t(64)}) {
      auto bias = rand_vec(size_t(n), -2.f, 2.f);
      Activation relu;
      relu.kind = ActKind::Relu;
      std::vector<float> ref(size_t(m * n));
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) ref[size_t(i * n + j)] = bias[size_t(j)] > 0 ? bias[size_t(j)] : 0.f;
      std::unique_ptr<float[]> a(new float[0]), b(new float[0]);
      std::vector<float> c(size_t(m * n), NAN);
      sgemm(*ks.gemm, ks.activation, false, false, size_t(m), size_t(n), 0, a.get(), 0, b.get(), size_t(n), c.data(), size_t(n), bias.data(),
            BiasMode::kPerCol, relu, &r3);
      check("sgemm_k0__" + isa, fmt("m=%lld n=%lld relu(bias)", (long long)m, (long long)n), c.data(), ref.data(), c.size());
      std::vector<float> pw(fc_packed_weights_floats(ks, 0, n) + 1), scratch(fc_scratch_floats(ks, m, 0) + 16);
      fc_pack_weights(ks, 0, n, b.get(), true, pw.data());
      std::vector<float> y(size_t(m * n), NAN);
      fc_run(ks, m, 0, n, a.get(), pw.data(), bias.data(), relu, y.data(), scratch.data(), nullptr);
      check("fc_k0__" + isa, fmt("m=%lld n=%lld relu(bias)", (long long)m, (long long)n), y.data(), ref.data(), y.size());
    }
  // Conv with zero input channels (im2col K = 0, 1x1 as a GEMM with K = 0): y = bias.
  for (int64_t k : {int64_t(1), int64_t(3)}) {
    Conv2dShape s;
    s.n = 2; s.cin = 0; s.ih = 5; s.iw = 6; s.cout = 7; s.kh = s.kw = k; s.pt = s.pl = s.pb = s.pr = k / 2;
    conv2d_output_dims(&s);
    auto bias = rand_vec(size_t(s.cout));
    std::vector<float> ref(size_t(s.n * s.cout * s.oh * s.ow));
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = bias[(i / size_t(s.oh * s.ow)) % size_t(s.cout)];
    std::unique_ptr<float[]> x(new float[0]), w(new float[0]);
    std::vector<float> pw(conv2d_packed_weights_floats(ks, s) + 1), scratch(conv2d_scratch_floats(ks, s) + 16);
    conv2d_pack_weights(ks, s, w.get(), pw.data());
    std::vector<float> y(ref.size(), NAN);
    conv2d_run(ks, s, pw.data(), bias.data(), Activation(), x.get(), y.data(), scratch.data(), &r3);
    check("conv_f32_cin0__" + isa, fmt("k=%lld y = bias", (long long)k), y.data(), ref.data(), y.size());
  }
}

void test_non_finite(const F32Kernels& ks) {
  const std::string isa = ks.isa;
  const float kInf = INFINITY;
  // 37 = two AVX-512 vectors + a tail; NaN and +-inf in the body and in the tail.
  std::vector<float> x = rand_vec(37, -3.f, 3.f);
  for (size_t i : {size_t(0), size_t(9), size_t(20), size_t(35)}) x[i] = NAN;
  x[4] = kInf;
  x[17] = -kInf;
  x[33] = kInf;
  for (Activation act : all_acts()) {
    if (act.kind == ActKind::Clip) { act.a = -1.f; act.b = 1.f; }
    std::vector<float> y(x), ref(x.size());
    for (size_t i = 0; i < x.size(); ++i) ref[i] = float(ref_act(x[i], act));
    ks.activation(y.data(), y.size(), &act);
    check(fmt("f32_vact_%s_nan_inf__%s", act_name(act.kind), isa.c_str()), "n=37", y.data(), ref.data(), y.size(),
          1e-6f, 1e-5f);
  }
  // Binary ops, NaN on either side, plus a clamp that must keep NaN and inf.
  std::vector<float> other = rand_vec(37, 0.5f, 2.f);
  other[2] = NAN;
  other[30] = NAN;
  const int64_t d37[] = {37};
  for (int op = 0; op < 6; ++op)
    for (bool swap : {false, true}) {
      const std::vector<float>& a = swap ? other : x;
      const std::vector<float>& b = swap ? x : other;
      std::vector<float> y(37), ref(37);
      for (size_t i = 0; i < 37; ++i) ref[i] = float(ref_bin(BinOp(op), a[i], b[i]));
      binary_run(ks, BinOp(op), d37, 1, a.data(), d37, 1, b.data(), y.data(), Activation(), nullptr);
      check(fmt("f32_vbinary_nan_inf_op%d__%s", op, isa.c_str()), swap ? "nan rhs" : "nan lhs", y.data(), ref.data(),
            37, 1e-6f, 1e-5f);
    }
  // Pooling windows: NaN wins a max window; -inf/+inf survive.
  for (int64_t k : {int64_t(2), int64_t(3)})
    for (int64_t st : {int64_t(1), int64_t(2)}) {
      Pool2dShape s;
      s.n = 1; s.c = 2; s.ih = 7; s.iw = 45; s.kh = s.kw = k; s.sh = s.sw = st;
      s.oh = (s.ih - k) / st + 1;
      s.ow = (s.iw - k) / st + 1;
      auto px = rand_vec(size_t(s.c * s.ih * s.iw));
      for (size_t i = 3; i < px.size(); i += 29) px[i] = (i / 29) % 3 == 0 ? NAN : ((i / 29) % 3 == 1 ? kInf : -kInf);
      for (bool is_max : {true, false}) {
        std::vector<float> y(size_t(s.c * s.oh * s.ow)), ref(y.size());
        for (int64_t pl = 0; pl < s.c; ++pl)
          for (int64_t oy = 0; oy < s.oh; ++oy)
            for (int64_t ox = 0; ox < s.ow; ++ox) {
              double acc = is_max ? -INFINITY : 0;
              for (int64_t ky = 0; ky < k; ++ky)
                for (int64_t kx = 0; kx < k; ++kx) {
                  const double v = px[size_t((pl * s.ih + oy * st + ky) * s.iw + ox * st + kx)];
                  acc = is_max ? (std::isnan(v) || std::isnan(acc) ? NAN : std::max(acc, v)) : acc + v;
                }
              ref[size_t((pl * s.oh + oy) * s.ow + ox)] = float(is_max ? acc : acc / double(k * k));
            }
        if (is_max) maxpool2d_run(ks, s, px.data(), y.data(), nullptr);
        else avgpool2d_run(ks, s, px.data(), y.data(), nullptr);
        check(fmt("%s_nan_inf__%s", is_max ? "maxpool2d" : "avgpool2d", isa.c_str()),
              fmt("k=%lld s=%lld", (long long)k, (long long)st), y.data(), ref.data(), y.size(), 1e-6f, 1e-5f);
      }
    }
  // Softmax: a NaN or +inf anywhere makes its row NaN; an all -inf row is NaN too.
  for (int64_t inner : {int64_t(1), int64_t(5)})
    for (bool log : {false, true}) {
      const int64_t outer = 3, len = 37;
      auto sx = rand_vec(size_t(outer * len * inner), -5.f, 5.f);
      sx[size_t(7 * inner)] = NAN;                      // row 0
      sx[size_t((len + 30) * inner)] = kInf;            // row 1
      for (int64_t a = 0; a < len; ++a) sx[size_t((2 * len + a) * inner)] = -kInf;  // row 2, lane 0
      std::vector<float> y(sx.size()), ref(sx.size());
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          double m = -INFINITY, sum = 0;
          bool nan = false;
          for (int64_t a = 0; a < len; ++a) {
            const double v = sx[size_t((o * len + a) * inner + i)];
            nan = nan || std::isnan(v);
            m = std::max(m, v);
          }
          for (int64_t a = 0; a < len; ++a) sum += std::exp(sx[size_t((o * len + a) * inner + i)] - m);
          for (int64_t a = 0; a < len; ++a) {
            const double d = sx[size_t((o * len + a) * inner + i)] - m;
            ref[size_t((o * len + a) * inner + i)] = nan ? NAN : float(log ? d - std::log(sum) : std::exp(d) / sum);
          }
        }
      softmax_run(ks, outer, len, inner, log, sx.data(), y.data(), nullptr);
      check(fmt("%s_nan_inf__%s", log ? "log_softmax" : "softmax", isa.c_str()), fmt("inner=%lld", (long long)inner),
            y.data(), ref.data(), y.size(), 1e-6f, 2e-5f);
    }
  // GEMM epilogue clamps (Relu / Clip folded into the microkernel) keep NaN and inf.
  for (ActKind kind : {ActKind::Relu, ActKind::Clip, ActKind::None}) {
    const int64_t m = 7, n = 37, kk = 5;
    auto a = rand_vec(size_t(m * kk)), b = rand_vec(size_t(kk * n), 0.1f, 1.f);
    a[3] = NAN;          // row 0
    a[2 * kk] = kInf;    // row 2 (b > 0: +inf)
    Activation act;
    act.kind = kind;
    act.a = -0.5f;
    act.b = 0.5f;
    std::vector<float> c(size_t(m * n)), ref(c.size());
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t t = 0; t < kk; ++t) acc += double(a[size_t(i * kk + t)]) * b[size_t(t * n + j)];
        ref[size_t(i * n + j)] = float(ref_act(acc, act));
      }
    sgemm(*ks.gemm, ks.activation, false, false, size_t(m), size_t(n), size_t(kk), a.data(), size_t(kk), b.data(), size_t(n), c.data(),
          size_t(n), nullptr, BiasMode::kNone, act, nullptr);
    check(fmt("sgemm_nan_inf_%s__%s", act_name(kind), isa.c_str()), "7x37x5", c.data(), ref.data(), c.size(), 1e-5f,
          1e-5f);
  }
}

int main(int argc, char** argv) {
  const char* only = nullptr;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--isa") && i + 1 < argc) only = argv[++i];
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
  }
  int tested = 0;
  for (const F32Table& t : runnable_f32_tables()) {
    const F32Kernels* ks = t.kernels;
    if (only != nullptr && std::strcmp(only, t.isa) != 0) continue;
    const int before_p = g_passed, before_f = g_failed;
    test_gemm(*ks, quick);
    test_activation(*ks);
    test_binary(*ks);
    test_conv(*ks, quick);
    test_dwconv(*ks);
    test_fc(*ks);
    test_pool(*ks);
    test_softmax(*ks);
    test_zero_size(*ks);
    test_non_finite(*ks);
    std::printf("isa %-7s (%s): %d passed, %d failed\n", t.isa, ks->gemm->name,
                g_passed - before_p, g_failed - before_f);
    ++tested;
  }
  if (tested == 0) {
    std::printf("no instruction set matched\n0 passed, 1 failed\n");
    return 1;
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
