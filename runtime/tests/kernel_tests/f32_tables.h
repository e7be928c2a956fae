// The fp32 kernel tables this standalone build has (f32/f32_kernels.h) and whether the
// CPU running the test can execute each. The runtime never does this: its kernel
// registry (core/kernel.h, cpu_features()) is the only dispatch. The test drivers
// (kernel_tests, bench_gemm) are built without the core, so they ask the compiler's
// cpuid wrapper themselves, only to skip tables this machine cannot run.
#pragma once
#include <vector>

#include "f32/f32_kernels.h"

struct F32Table {
  const char* isa;  // "scalar", "avx2", "avx512", "neon"
  const mobrt::cpu::F32Kernels* kernels;
};

// Lowest first; only the tables the CPU can run.
inline std::vector<F32Table> runnable_f32_tables() {
  using namespace mobrt::cpu;
  std::vector<F32Table> out = {{"scalar", &kF32Scalar}};
#if defined(MOBRT_CPU_ARCH_x86)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2) out.push_back({"avx2", &kF32Avx2});
  if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl"))
    out.push_back({"avx512", &kF32Avx512});
#elif defined(MOBRT_CPU_ARCH_neon)
  out.push_back({"neon", &kF32Neon});  // part of the armv8-a baseline
#endif
  return out;
}
