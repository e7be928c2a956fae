// GEMM micro-benchmark: C[M,N] = A[M,K] x B[K,N] through mobconv's packed SGEMM, per
// instruction set, reported as GFLOP/s and as a fraction of the single-core fp32 FMA
// peak measured on this machine by a tight register-only FMA loop.
//
//   bench_gemm [M N K] [--threads T] [--reps R]
// Built and run by benchmarks/bench_gemm.py.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "f32_tables.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

using namespace mobrt::cpu;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

#if defined(__x86_64__)
// Independent FMA chains (enough to cover FMA latency x 2 FMA ports); explicit FMA
// intrinsics because ISO C++ mode does not contract a*b+c.
__attribute__((target("avx512f"))) double fma_peak_avx512(long iters) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps((float)(i + 1) * 1e-3f);
  const __m512 m = _mm512_set1_ps(0.9999999f), a = _mm512_set1_ps(1e-7f);
  auto t0 = Clock::now();
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  }
  double s = seconds_since(t0);
  float sink[16], tot = 0;
  for (int i = 0; i < 24; ++i) { _mm512_storeu_ps(sink, acc[i]); tot += sink[0]; }
  if (tot == 12345.f) std::printf(" ");
  return 24.0 * 16 * 2 * iters / s / 1e9;
}
__attribute__((target("avx2,fma"))) double fma_peak_avx2(long iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps((float)(i + 1) * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.9999999f), a = _mm256_set1_ps(1e-7f);
  auto t0 = Clock::now();
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  }
  double s = seconds_since(t0);
  float sink[8], tot = 0;
  for (int i = 0; i < 12; ++i) { _mm256_storeu_ps(sink, acc[i]); tot += sink[0]; }
  if (tot == 12345.f) std::printf(" ");
  return 12.0 * 8 * 2 * iters / s / 1e9;
}
#endif

#if defined(__aarch64__)
double fma_peak_neon(long iters) {
  float32x4_t acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = vdupq_n_f32((float)(i + 1) * 1e-3f);
  const float32x4_t m = vdupq_n_f32(0.9999999f), a = vdupq_n_f32(1e-7f);
  auto t0 = Clock::now();
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = vfmaq_f32(a, acc[i], m);
  }
  double s = seconds_since(t0);
  float tot = 0;
  for (int i = 0; i < 24; ++i) tot += vgetq_lane_f32(acc[i], 0);
  if (tot == 12345.f) std::printf(" ");
  return 24.0 * 4 * 2 * iters / s / 1e9;
}
#endif

double peak_for(const std::string& isa) {
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    double g = 0;
#if defined(__x86_64__)
    if (isa == "avx512") g = fma_peak_avx512(20000000);
    if (isa == "avx2") g = fma_peak_avx2(20000000);
#endif
#if defined(__aarch64__)
    if (isa == "neon") g = fma_peak_neon(20000000);
#endif
    best = std::max(best, g);
  }
  return best;
}

struct PoolRunner {
  int threads;
};
void thread_parallel_for(void* pool, int64_t n, void* ctx, void (*fn)(void*, int64_t)) {
  const int t = static_cast<PoolRunner*>(pool)->threads;
  std::vector<std::thread> ts;
  for (int w = 0; w < t; ++w)
    ts.emplace_back([=] {
      for (int64_t i = w; i < n; i += t) fn(ctx, i);
    });
  for (auto& th : ts) th.join();
}

}  // namespace

int main(int argc, char** argv) {
  size_t m = 1024, n = 1024, k = 1024;
  int threads = 1, reps = 10;
  std::vector<size_t> dims;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else dims.push_back(std::strtoul(argv[i], nullptr, 10));
  }
  if (dims.size() == 3) { m = dims[0]; n = dims[1]; k = dims[2]; }
  std::vector<float> a(m * k), b(k * n), c(m * n);
  for (size_t i = 0; i < a.size(); ++i) a[i] = float((i * 7) % 13) * 0.1f - 0.6f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = float((i * 5) % 11) * 0.1f - 0.5f;
  PoolRunner pr{threads};
  TaskRunner runner;
  runner.parallel_for = thread_parallel_for;
  runner.pool = &pr;
  runner.threads = threads;
  const double flops = 2.0 * m * n * k;
  std::vector<F32Table> tables = runnable_f32_tables();
  std::reverse(tables.begin(), tables.end());  // best first
  for (const F32Table& t : tables) {
    const std::string isa = t.isa;
    const F32Kernels* ks = t.kernels;
    // Full sgemm (packs both operands every call) and the packed-only core.
    std::vector<float> pa(sgemm_packed_a_size(*ks->gemm, m, k) + 16);
    std::vector<float> pb(sgemm_packed_b_size(*ks->gemm, k, n) + 16);
    sgemm_pack_a(*ks->gemm, m, k, a.data(), k, 1, pa.data());
    sgemm_pack_b(*ks->gemm, k, n, b.data(), n, 1, pb.data());
    SgemmArgs g;
    g.m = m; g.n = n; g.k = k;
    g.packed_a = pa.data(); g.packed_b = pb.data();
    g.c = c.data(); g.ldc = n;
    int r = isa == "scalar" ? 1 : reps;
    double best_full = 1e30, best_packed = 1e30;
    for (int i = 0; i < r + 1; ++i) {
      auto t0 = Clock::now();
      sgemm(*ks->gemm, ks->activation, false, false, m, n, k, a.data(), k, b.data(), n, c.data(), n, nullptr,
            BiasMode::kNone, mobrt::Activation(), &runner);
      if (i) best_full = std::min(best_full, seconds_since(t0));
      t0 = Clock::now();
      sgemm_packed(*ks->gemm, ks->activation, g, &runner);
      if (i) best_packed = std::min(best_packed, seconds_since(t0));
    }
    const double peak = peak_for(isa);
    const double gf_full = flops / best_full / 1e9, gf_packed = flops / best_packed / 1e9;
    std::printf("%-32s %zux%zux%zu threads=%d  sgemm %.1f GFLOP/s (%.2f ms)  packed-only %.1f GFLOP/s",
                ks->gemm->name, m, n, k, threads, gf_full, best_full * 1e3, gf_packed);
    if (peak > 0)
      std::printf("  1-core FMA peak %.1f GFLOP/s -> %.0f%% (packed %.0f%%)", peak,
                  100.0 * gf_full / (peak * threads), 100.0 * gf_packed / (peak * threads));
    std::printf("\n");
  }
  return 0;
}
