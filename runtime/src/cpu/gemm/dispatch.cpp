// Run-time choice of the kernel table: walk the architecture's rows (best first), take
// the first one the CPU supports, else the scalar table. MOBRT_ISA in the environment
// caps the choice (scalar|avx2|avx512|neon), so tests and benchmarks can compare them.
#include <cstdlib>
#include <cstring>

#include "isa_table.h"

namespace mobrt {
namespace cpu {

extern const IsaKernels kOpsScalar;
extern const GemmUkernel kF32GemmScalar;

#if !defined(__x86_64__) && !defined(__aarch64__)
// No optimized kernel set is built for this architecture (see kernels.cmake).
const IsaEntry* arch_isa_entries(size_t* n) {
  *n = 0;
  return nullptr;
}
#endif

namespace {

struct Tables {
  IsaKernels by_isa[int(SimdIsa::kCount)];
  bool available[int(SimdIsa::kCount)] = {};
  SimdIsa best = SimdIsa::kScalar;

  Tables() {
    by_isa[int(SimdIsa::kScalar)] = kOpsScalar;
    by_isa[int(SimdIsa::kScalar)].gemm = kF32GemmScalar;
    available[int(SimdIsa::kScalar)] = true;
    size_t n = 0;
    const IsaEntry* rows = arch_isa_entries(&n);
    const char* cap = std::getenv("MOBRT_ISA");
    bool chosen = false;
    for (size_t i = 0; i < n; ++i) {
      if (!rows[i].detect()) continue;
      by_isa[int(rows[i].isa)] = *rows[i].ops;
      by_isa[int(rows[i].isa)].gemm = *rows[i].gemm;
      available[int(rows[i].isa)] = true;
      const bool allowed =
          cap == nullptr || cap[0] == '\0' || std::strcmp(cap, isa_name(rows[i].isa)) == 0;
      if (!chosen && allowed) {
        best = rows[i].isa;
        chosen = true;
      }
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const char* isa_name(SimdIsa isa) {
  switch (isa) {
    case SimdIsa::kScalar: return "scalar";
    case SimdIsa::kAvx2: return "avx2";
    case SimdIsa::kAvx512: return "avx512";
    case SimdIsa::kNeon: return "neon";
    default: return "?";
  }
}

bool isa_available(SimdIsa isa) { return int(isa) < int(SimdIsa::kCount) && tables().available[int(isa)]; }

SimdIsa best_isa() { return tables().best; }

const IsaKernels& isa_kernels() { return tables().by_isa[int(tables().best)]; }

const IsaKernels* isa_kernels_for(SimdIsa isa) {
  return isa_available(isa) ? &tables().by_isa[int(isa)] : nullptr;
}

}  // namespace cpu
}  // namespace mobrt
