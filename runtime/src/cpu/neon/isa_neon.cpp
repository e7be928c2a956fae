// AArch64 row of the dispatch table: NEON is part of the armv8-a baseline, so it is
// always available. (Dot-product and fp16 rows would be added here, with getauxval
// HWCAP detection.)
#include "../gemm/isa_table.h"

namespace mobrt {
namespace cpu {

extern const IsaKernels kOpsNeon;
extern const GemmUkernel kF32GemmNeon;

namespace {
bool always() { return true; }
const IsaEntry kEntries[] = {
    {SimdIsa::kNeon, &kOpsNeon, &kF32GemmNeon, &always},
};
}  // namespace

const IsaEntry* arch_isa_entries(size_t* n) {
  *n = sizeof(kEntries) / sizeof(kEntries[0]);
  return kEntries;
}

}  // namespace cpu
}  // namespace mobrt
