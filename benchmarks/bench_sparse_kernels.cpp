// Kernel-only crossover of the sparse fp32 kernels (runtime/src/cpu/sparse/) against the
// dense fp32 ones of the same instruction set, without the interpreter: 1x1 convs
// (sparse_conv1x1_run vs conv2d_run) at 56x56x128, 28x28x256, 14x14x512, 7x7x1024 and
// FC 1024x1024 (sparse_fc_run vs fc_run) at batch 1..32, Relu fused, 1 thread, weights
// pruned by magnitude to 0/50/70/80/90/95 %. Prints dense / sparse time (best of `reps`
// thread-CPU-time runs; > 1: sparse wins). The numbers behind the MOBRT_SPARSE=auto
// thresholds in runtime/src/cpu/sparse/sparse_f32.h (with bench_sparse.py --layers).
// x86-64 only (the AVX2 and AVX-512 tables). Build and run (from anywhere):
//   benchmarks/bench_sparse_kernels.sh [reps]     (objects and binary in build/bench-sparse-kernels/)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <vector>

#include "cpu/f32/conv_f32.h"
#include "cpu/f32/fc_f32.h"
#include "cpu/sparse/sparse_f32.h"

using namespace mobrt;
using namespace mobrt::cpu;

namespace {

double now_ms() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}
template <class F>
double best_ms(F f, int reps) {
  double b = 1e30;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now_ms();
    f();
    b = std::min(b, now_ms() - t0);
  }
  return b;
}
float* align64(std::vector<float>& v) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t(63));
}
std::vector<float> prune(const std::vector<float>& w, float sparsity) {  // smallest |w| to 0
  std::vector<float> a(w.size());
  for (size_t i = 0; i < w.size(); ++i) a[i] = std::fabs(w[i]);
  std::vector<float> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  const float thr = sparsity > 0 ? sorted[static_cast<size_t>(sparsity * sorted.size())] : -1.f;
  std::vector<float> out = w;
  for (size_t i = 0; i < w.size(); ++i)
    if (a[i] < thr) out[i] = 0.f;
  return out;
}

const float kSparsities[] = {0.f, .5f, .7f, .8f, .9f, .95f};

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 9;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  const F32Kernels* dense[] = {&kF32Avx2, &kF32Avx512};
  const SparseF32Kernels* sparse[] = {&kSparseF32Avx2, &kSparseF32Avx512};
  Activation act;
  act.kind = Activation::Kind::Relu;
  struct Layer { const char* name; int c, hw; } layers[] = {
      {"conv56", 128, 56}, {"conv28", 256, 28}, {"conv14", 512, 14}, {"conv7", 1024, 7}};
  for (const Layer& l : layers)
    for (int i = 0; i < 2; ++i) {
      const int64_t c = l.c, hw = int64_t(l.hw) * l.hw;
      std::vector<float> w(c * c), x(c * hw), y(c * hw), bias(c, 0.f);
      for (float& v : w) v = nd(rng);
      for (float& v : x) v = nd(rng);
      Conv2dShape s;
      s.cin = s.cout = c;
      s.ih = s.iw = l.hw;
      conv2d_output_dims(&s);
      std::vector<float> packed(conv2d_packed_weights_floats(*dense[i], s) + 16),
          scratch(conv2d_scratch_floats(*dense[i], s) + 16);
      conv2d_pack_weights(*dense[i], s, w.data(), align64(packed));
      const double td = best_ms([&] {
        conv2d_run(*dense[i], s, align64(packed), bias.data(), act, x.data(), y.data(), align64(scratch), nullptr);
      }, reps);
      std::printf("%-7s %-6s dense %7.3f ms |", l.name, sparse[i]->isa, td);
      for (float sp : kSparsities) {
        const std::vector<float> ws = prune(w, sp);
        SparseRows sr;
        sparse_pack(ws.data(), c, c, c, 1, 1.f, &sr);
        std::vector<float> scr(sparse_conv1x1_scratch_floats(*sparse[i], sr, 1));
        const double ts = best_ms([&] {
          sparse_conv1x1_run(*sparse[i], sr, bias.data(), act, 1, hw, x.data(), y.data(), nullptr, scr.data(), nullptr);
        }, reps);
        std::printf(" %3.0f%% %5.2fx", sp * 100, td / ts);
      }
      std::printf("\n");
    }
  for (int m : {1, 2, 4, 8, 16, 32})
    for (int i = 0; i < 2; ++i) {
      const int64_t k = 1024, n = 1024;
      std::vector<float> w(n * k), a(m * k), y(m * n), bias(n, 0.f);
      for (float& v : w) v = nd(rng);
      for (float& v : a) v = nd(rng);
      std::vector<float> packed(fc_packed_weights_floats(*dense[i], k, n) + 16),
          scratch(fc_scratch_floats(*dense[i], m, k) + 16);
      fc_pack_weights(*dense[i], k, n, w.data(), true, align64(packed));
      const double td = best_ms([&] {
        fc_run(*dense[i], m, k, n, a.data(), align64(packed), bias.data(), act, y.data(), align64(scratch), nullptr);
      }, reps * 4);
      std::printf("fc_b%-3d %-6s dense %7.3f ms |", m, sparse[i]->isa, td);
      for (float sp : kSparsities) {
        const std::vector<float> ws = prune(w, sp);
        SparseRows sr;
        sparse_pack(ws.data(), n, k, k, 1, 1.f, &sr);
        std::vector<float> scr(sparse_fc_scratch_floats(*sparse[i], sr, m, 1) + 1);
        const double ts = best_ms([&] {
          sparse_fc_run(*sparse[i], sr, bias.data(), act, m, a.data(), y.data(), scr.data(), nullptr);
        }, reps * 4);
        std::printf(" %3.0f%% %5.2fx", sp * 100, td / ts);
      }
      std::printf("\n");
    }
  return 0;
}
