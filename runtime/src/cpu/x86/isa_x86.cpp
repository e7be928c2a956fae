// x86-64 rows of the dispatch table: AVX-512F, then AVX2 + FMA. Detection uses the
// compiler's cpuid wrapper, which also checks that the OS saves the wider registers.
// Compiled with baseline flags (this file must run on any x86-64).
#include "../gemm/isa_table.h"

namespace mobrt {
namespace cpu {

extern const IsaKernels kOpsAvx2;
extern const IsaKernels kOpsAvx512;
extern const GemmUkernel kF32GemmAvx2;
extern const GemmUkernel kF32GemmAvx512;

namespace {
bool has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool has_avx512f() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && has_avx2_fma();
}
const IsaEntry kEntries[] = {
    {SimdIsa::kAvx512, &kOpsAvx512, &kF32GemmAvx512, &has_avx512f},
    {SimdIsa::kAvx2, &kOpsAvx2, &kF32GemmAvx2, &has_avx2_fma},
};
}  // namespace

const IsaEntry* arch_isa_entries(size_t* n) {
  *n = sizeof(kEntries) / sizeof(kEntries[0]);
  return kEntries;
}

}  // namespace cpu
}  // namespace mobrt
