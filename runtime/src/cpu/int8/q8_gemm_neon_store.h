// q8_gemm_neon_store.h: stores one row of an 8x12 (or 8x4) int32 tile of the NEON int8 GEMM
// micro-kernels (q8_gemm_ukernel_neon.cpp, q8_gemm_ukernel_neon_dot.cpp): the whole
// 12 (4) columns, or the first nr of them for the last column panel.
// Only for files compiled for arm64 (it uses NEON intrinsics). Internal linkage: the
// armv8.0 and the armv8.2-dotprod files each keep their own copy (no ODR merging across ISAs).
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mobrt {
namespace q8 {
namespace neon_tile {
namespace {

inline void store_row12(int32_t* c, size_t nr, int32x4_t v0, int32x4_t v1, int32x4_t v2) {
  if (nr == 12) {
    vst1q_s32(c, v0);
    vst1q_s32(c + 4, v1);
    vst1q_s32(c + 8, v2);
    return;
  }
  int32_t t[12];
  vst1q_s32(t, v0);
  vst1q_s32(t + 4, v1);
  vst1q_s32(t + 8, v2);
  std::memcpy(c, t, nr * sizeof(int32_t));
}

inline void store_row4(int32_t* c, size_t nr, int32x4_t v0) {
  if (nr == 4) {
    vst1q_s32(c, v0);
    return;
  }
  int32_t t[4];
  vst1q_s32(t, v0);
  std::memcpy(c, t, nr * sizeof(int32_t));
}

// init[r] for the tile's mr live rows, 0 for the padding rows (never stored).
inline void load_init8(const int32_t* init, size_t mr, int32_t out[8]) {
  for (size_t r = 0; r < 8; ++r) out[r] = r < mr ? init[r] : 0;
}

}  // namespace
}  // namespace neon_tile
}  // namespace q8
}  // namespace mobrt
