// The machine's single-core int8 dot-product peak, measured the way bench_gemm.cpp measures
// the FMA peak: a register-only loop of independent accumulator chains (enough to cover the
// instruction's latency on every port), the best of 400 short runs.
//
//   bench_gemm_vnni_peak            one line per instruction this CPU runs:
//   <name> <GOPS> <GMAC/s>
// vpdpbusd zmm (AVX512-VNNI, 64 u8*s8 MACs), vpdpbusd ymm (EVEX, AVX512-VNNI+VL, 32 MACs:
// the width of the avx_vnni kernels), and the non-VNNI AVX2 exact path's vpmaddwd ymm +
// vpaddd (16 int16 MACs per pair). One MAC = 2 ops (GOPS = 2 x GMAC/s).
// Built and run by benchmarks/bench_gemm.py (plain g++, no runtime dependency); the loops
// carry target attributes so the file compiles without ISA flags.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

using Clock = std::chrono::steady_clock;

namespace {

constexpr long kIters = 20000;  // ~0.2 ms per run
constexpr int kReps = 400;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

#if defined(__x86_64__)
// The loops are written in assembly: compilers spill arrays of vector accumulators.
#define R4(op, a, b, c, d) op(a) op(b) op(c) op(d)
#define R24(op) R4(op, 0, 1, 2, 3) R4(op, 4, 5, 6, 7) R4(op, 8, 9, 10, 11) \
  R4(op, 12, 13, 14, 15) R4(op, 16, 17, 18, 19) R4(op, 20, 21, 22, 23)
#define R12(op) R4(op, 0, 1, 2, 3) R4(op, 4, 5, 6, 7) R4(op, 8, 9, 10, 11)
#define DPZ(i) "vpdpbusd %%zmm31, %%zmm30, %%zmm" #i "\n\t"
#define DPY(i) "vpdpbusd %%ymm31, %%ymm30, %%ymm" #i "\n\t"
#define MADD(i) "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n\t" "vpaddd %%ymm13, %%ymm" #i ", %%ymm" #i "\n\t"
#define ZMM_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
  "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", \
  "xmm21", "xmm22", "xmm23", "xmm30", "xmm31"

// 24 independent vpdpbusd chains (latency 5 x 2 ports < 24). Returns GMAC/s.
__attribute__((target("avx512f,avx512vnni"))) double vnni_zmm(long iters) {
  auto t0 = Clock::now();
  __asm__ volatile(
      "vpternlogd $0xff, %%zmm30, %%zmm30, %%zmm30\n\t"
      "vpabsd %%zmm30, %%zmm31\n\t"
      "1:\n\t" R24(DPZ) "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iters) : : ZMM_CLOBBERS, "cc");
  return 24.0 * 64 * (double)kIters / seconds_since(t0) / 1e9;
}

__attribute__((target("avx512f,avx512vl,avx512vnni"))) double vnni_ymm(long iters) {
  auto t0 = Clock::now();
  __asm__ volatile(
      "vpternlogd $0xff, %%zmm30, %%zmm30, %%zmm30\n\t"
      "vpabsd %%zmm30, %%zmm31\n\t"
      "1:\n\t" R24(DPY) "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iters) : : ZMM_CLOBBERS, "cc");
  return 24.0 * 32 * (double)kIters / seconds_since(t0) / 1e9;
}

// AVX2 without VNNI, the exact way (no vpmaddubsw saturation): int16 pairs through
// vpmaddwd, then vpaddd into 12 int32 accumulator chains.
__attribute__((target("avx2"))) double avx2_madd(long iters) {
  auto t0 = Clock::now();
  __asm__ volatile(
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n\t"
      "vpabsd %%ymm14, %%ymm15\n\t"
      "1:\n\t" R12(MADD) "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iters) : : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
        "xmm9", "xmm10", "xmm11", "xmm13", "xmm14", "xmm15", "cc");
  return 12.0 * 16 * (double)kIters / seconds_since(t0) / 1e9;
}

bool has_avx512_vnni() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool f = b & (1u << 16), bw = b & (1u << 30), vl = b & (1u << 31), vnni = c & (1u << 11);
  return f && bw && vl && vnni && __builtin_cpu_supports("avx512f");
}

// Many short runs, the best one: on a loaded machine a long loop is always interrupted
// (the GEMM it is compared with is timed best-of-reps at sub-millisecond scale, too).
double best_of(double (*f)(long)) {
  double best = 0;
  for (int rep = 0; rep < kReps; ++rep) best = std::max(best, f(kIters));
  return best;
}
#endif

}  // namespace

int main() {
#if defined(__x86_64__)
  if (has_avx512_vnni()) {
    double z = best_of(vnni_zmm), y = best_of(vnni_ymm);
    std::printf("vpdpbusd_zmm %.1f %.1f\n", 2 * z, z);
    std::printf("vpdpbusd_ymm %.1f %.1f\n", 2 * y, y);
  }
  if (__builtin_cpu_supports("avx2")) {
    double m = best_of(avx2_madd);
    std::printf("vpmaddwd_ymm %.1f %.1f\n", 2 * m, m);
  }
#endif
  return 0;
}
