// q8_gemm.h: the int8 GEMM interface shared by the portable driver (q8_gemm.cpp,
// the Conv / Gemm / MatMul op glue) and every instruction set's micro-kernels.
//
// The product is C[M, N] (int32) = init[M] + A[M, K] x B[K, N] in NCHW terms:
//   M = output channels (rows; one Q8Requant each), N = output pixels (Conv) or the
//   rows of the activation (Gemm/MatMul, computed as the transposed product),
//   K = reduction. A = the constant weights (packed ONCE at prepare), B = the
//   activations (packed per run: 1x1 conv rows, im2col with zero-point padding,
//   Gemm/MatMul rows).
//
// An instruction set contributes one Q8Isa: a micro-kernel (and optionally a
// second, narrower one for the last columns of small N) plus a requant row
// function, and calls register_q8_gemm_kernels() from its register_<set>.cpp.
// The driver then registers conv_q8_gemm_<suffix>, gemm_q8_<suffix> and
// matmul_q8_<suffix> under (op, {I8|U8 activations, I8|U8 weights}, isa).
//
// Exactness (int8_design.md): the micro-kernels accumulate in int32 with
// wrap-around; the driver proves at supports/prepare that the true sum of every
// output fits in int32 (|bias| + sum_k |A| * max|B| <= 2^31 - 1) and refuses the
// node otherwise, so the reference runs (and raises its overflow error).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/kernel.h"
#include "cpu/int8/q8_requant.h"

namespace mobrt {
namespace q8 {

// Element type of a packed operand.
//   B (activations, domain of the packed values; zb = the zero point in that domain,
//      padding taps are stored as zb so that they contribute (x - zx) = 0):
//     U8  -> b = x + 128 if x is int8, x if uint8   (zb = zx (+128))
//     S8  -> b = x - 128 if x is uint8, x if int8   (zb = zx (-128))
//     S16 -> b = x - zx as int16, zb = 0, padding = 0
//   A (weights, as stored in the packed panel):
//     S8  -> a = w - zw as int8 (the driver refuses the node when some w - zw is
//            outside [-128, 127], e.g. asymmetric weights; symmetric int8 always fits)
//     S16 -> a = w - zw as int16 (any int8/uint8 weights)
// The driver folds -zb * sum_k a[r][k] (and the bias) into init[r], so a
// micro-kernel only ever computes init + sum a * b.
enum class Q8Operand : uint8_t { S8, U8, S16 };

inline size_t q8_operand_size(Q8Operand t) { return t == Q8Operand::S16 ? 2 : 1; }

struct Q8GemmUkernel {
  const char* name = nullptr;  // "q8_gemm_ukernel_8x32c4__avx512_vnni"; null: absent
  // C tile (mr <= MR rows, nr <= NR columns, row stride ldc, int32)
  //   c[r * ldc + col] = init[r] + sum over g < kgroups, j < KR of a * b   (wrapping int32)
  // a: one packed A panel: a[(g*MR + r)*KR + j] = A[r][g*KR + j] (0 beyond K and beyond
  //    the panel's rows); a is aligned to 64 bytes.
  // b: one packed B panel: b[(g*NR + c)*KR + j] = B[g*KR + j][c] (any value beyond K,
  //    since A is 0 there; any value beyond nr); b is aligned to 64 bytes.
  // init: mr values. Rows >= mr and columns >= nr of c are not written.
  void (*fn)(size_t kgroups, const void* a, const void* b, int32_t* c, size_t ldc, size_t mr, size_t nr,
             const int32_t* init) = nullptr;
  int mr = 0, nr = 0, kr = 0;
  Q8Operand a_type = Q8Operand::S8, b_type = Q8Operand::U8;
};

// How raw activation bytes become B's packed values (see Q8Operand):
//   U8 / S8: b = raw ^ xor_mask;  S16: b = (x_u8 ? uint8 : int8)(raw) - zx.
struct Q8BConvert {
  uint8_t xor_mask = 0;
  bool x_u8 = false;
  int32_t zx = 0;
};

// Optional fast B packer for one k-group: KR raw activation rows rows[0..KR) (each n
// bytes; n a multiple of the ukernel's NR), converted and interleaved into
// consecutive panels of width NR: column c goes to
//   (char*)dst + (c / NR) * panel_stride + (c % NR) * KR * element size.
typedef void (*Q8PackBFn)(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst,
                          size_t panel_stride);

// Optional fused micro-kernel + requantization for the row-major (Conv) output: `panels`
// full panels of `gemm`'s NR columns (panel p of B at (const char*)b + p * b_panel_stride)
// against one A panel; row r < mr of the mr x (panels * NR) result is requantized with
// rq[r] straight to the bytes (uint8 if y_u8) at (char*)y + r * ldy. The int32 tile never
// goes to memory. Bit for bit gemm.fn followed by requant_row.
typedef void (*Q8GemmRequantFn)(size_t kgroups, const void* a, const void* b, size_t b_panel_stride, size_t panels,
                                void* y, size_t ldy, size_t mr, const int32_t* init, const Q8Requant* rq, bool y_u8);

// Optional stride-2 byte gather of im2col: d[o] = x[2 * o] for o in [a, b), reading no
// byte past x[2 * (b - 1)].
typedef void (*Q8Gather2Fn)(const uint8_t* x, uint8_t* d, int64_t a, int64_t b);

// One instruction set's table. `narrow` is optional (fn null): when present it must
// have the same mr, kr, a_type and b_type as `gemm` and a smaller nr; the driver uses
// it for a last column panel of at most narrow.nr columns.
struct Q8Isa {
  const char* suffix = "";  // "avx512_vnni": kernel names conv_q8_gemm_avx512_vnni, ...
  Q8GemmUkernel gemm;
  Q8RequantRowFn requant_row = nullptr;
  Q8GemmUkernel narrow;
  Q8PackBFn pack_b = nullptr;  // optional (null: the driver's portable packer); for `gemm`'s NR/KR/b_type
  // Optional single-column kernel (nr == 1, same mr, kr, a_type, b_type as `gemm`): a last
  // panel of one column (batch-1 Gemm/MatMul, N = 1 convolutions) runs it.
  Q8GemmUkernel gemv;
  Q8GemmRequantFn gemm_requant = nullptr;  // optional: `gemm` with the requant fused (above)
  Q8Gather2Fn gather2 = nullptr;           // optional: im2col's stride-2 gather (above)
};

// Registers Conv (conv_q8_gemm_<suffix>), Gemm (gemm_q8_<suffix>) and MatMul
// (matmul_q8_<suffix>) under `isa` for every activation/weight dtype pair the
// table's operand types allow. `table` is copied; call once per (isa, suffix).
// At most 4 tables per isa.
void register_q8_gemm_kernels(KernelRegistry& registry, Isa isa, const Q8Isa& table);

}  // namespace q8
}  // namespace mobrt
