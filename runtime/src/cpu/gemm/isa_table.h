// The per-architecture list of optimized kernel tables (one row per instruction set),
// provided by x86/isa_x86.cpp or neon/isa_neon.cpp (the build compiles x86/ only for
// x86-64 and neon/ only for arm64; other targets get the empty list in dispatch.cpp: scalar only). dispatch.cpp picks a row at run
// time: the first (best) row whose detect() says the CPU can run it.
#pragma once
#include "gemm.h"

namespace mobrt {
namespace cpu {

struct IsaEntry {
  SimdIsa isa;
  const IsaKernels* ops;    // vectorized kernels (gemm field unused)
  const GemmUkernel* gemm;  // the GEMM microkernel for this instruction set
  bool (*detect)();         // can the running CPU + OS execute it?
};

// Rows ordered best first; *n receives the count.
const IsaEntry* arch_isa_entries(size_t* n);

}  // namespace cpu
}  // namespace mobrt
