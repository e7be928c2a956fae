// q8_gemm_neon.h: the ARM int8 GEMM micro-kernels and requantization row of the
// int8 GEMM driver (q8_gemm.h's Q8GemmUkernel / Q8RequantRowFn contract).
//
//   q8_gemm_ukernel_8x12__neon        armv8.0: S16 operands (A = w - zw, B = x - zx), KR = 1,
//                                     widening multiply-accumulate by lane (smlal/smlal2), exact
//   q8_gemm_ukernel_8x12c4__neon_dot  armv8.2 dot product: S8 operands, KR = 4, sdot by lane
//   q8_gemm_ukernel_8x4*              the same with 4 columns: Q8Isa::narrow, for the last
//                                     column panel of a small N (batch-1 Gemm/MatMul: N = 1)
//   q8_requant_row_neon               equals q8_requant_row_scalar bit for bit (both rules)
//
// The kernels compute the whole 8x12 tile (the driver zero-pads the A panel past its rows
// and fills the B panel past N) and store its mr x nr corner. Declared here so the
// registration files (compiled without ISA flags) can take their addresses; defined in
// q8_gemm_ukernel_neon.cpp, q8_gemm_ukernel_neon_dot.cpp, q8_gemm_pack_neon.cpp and
// q8_requant_neon.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/int8/q8_requant.h"

namespace mobrt {
namespace q8 {

struct Q8BConvert;  // q8_gemm.h (which needs the runtime core's headers; the kernels do not)

void q8_gemm_ukernel_8x12__neon(size_t kgroups, const void* a, const void* b, int32_t* c, size_t ldc, size_t mr,
                                size_t nr, const int32_t* init);
void q8_gemm_ukernel_8x4__neon(size_t kgroups, const void* a, const void* b, int32_t* c, size_t ldc, size_t mr,
                               size_t nr, const int32_t* init);
void q8_gemm_ukernel_8x12c4__neon_dot(size_t kgroups, const void* a, const void* b, int32_t* c, size_t ldc,
                                      size_t mr, size_t nr, const int32_t* init);
void q8_gemm_ukernel_8x4c4__neon_dot(size_t kgroups, const void* a, const void* b, int32_t* c, size_t ldc,
                                     size_t mr, size_t nr, const int32_t* init);
// B packers (Q8PackBFn) for the 8x12 kernels: n a multiple of 12 (q8_gemm_pack_neon.cpp).
void q8_pack_b_s16_kr1_nr12_neon(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst,
                                 size_t panel_stride);
void q8_pack_b_s8_kr4_nr12_neon(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst,
                                size_t panel_stride);
void q8_requant_row_neon(const int32_t* acc, size_t n, const Q8Requant& r, void* out, bool out_u8);

}  // namespace q8
}  // namespace mobrt
