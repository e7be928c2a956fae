// q8_dwconv.h: the int8/uint8 depthwise 3x3 convolution (MobileNet's depthwise layers),
// NCHW, channel multiplier 1, horizontal stride 1 or 2, vertical stride 1 or 2, any pads,
// dilation 1; per-tensor or per-channel weights (int8 or uint8 with zero points), both
// requantization rules. Bit for bit the reference (cpu/reference/quant_ops.cpp run_conv).
//
// Arithmetic: prepare stores each channel's nine taps as int16 (w - zw) and its initial
// accumulator (the bias). A run converts one (batch, channel) plane at a time into int16
// rows (x - zx) with zeros in the padding columns and zero rows for padding rows (a
// padding tap then contributes 0); an instruction set's row kernel forms int32 sums with
// exact int16 x int16 -> int32 multiply-adds (vpmaddwd, vpdpwssd, smlal), and its
// Q8RequantRowFn requantizes them. The buffers' zeros sit at the same places for every
// plane: a thread zeroes its buffer once per run, each plane writes only its values (one
// widen call). Layouts of a plane:
//   flat (equal strides, stride 1 or outputs <= 16 wide; every sh == sw plane when the
//     set has a Q8DwFlatFn): the padded rows back to back with pitch wp, so output
//     (oy, ox) = flat output oy * wp + ox reads row pointers base + r * wp at sw * q + k:
//     ONE row kernel call and one requant call per chunk of rows (the ox >= ow outputs
//     are dropped), no per-row overhead on 7x7 / 14x14 planes;
//   fused flat (AVX2 and AVX-512: q8_dwconv_avx2.cpp, q8_dwconv_avx512.h): one
//     Q8DwFlatFn call per plane, the sums requantized in registers and stored as bytes
//     (no int32 row in memory); stride 2 output row by output row;
//   rows (otherwise): one row kernel call per output row, requantized a chunk of rows
//     at a time.
// The int32 sums wrap only when the true sum leaves
// int32, which supports() excludes: it accepts a node only when
// max_c(|bias[c]| + 255 * sum_k |w[c,k] - zw[c]|) <= 2^31 - 1 (docs: int8 design
// contract); any other node runs the reference (including its overflow error).
//
// Per instruction set (q8_dwconv_<isa>.cpp): a Q8DwIsa table of row kernels and a
// prepare wrapper that records it; register_q8_dw_<isa>.cpp registers
// conv_q8_dw3x3_<isa> under (Conv, {I8|U8, I8|U8}).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/kernel.h"
#include "cpu/int8/q8_requant.h"

namespace mobrt {
namespace q8 {

// Row kernels compute up to kQ8DwBlock outputs per step without a tail loop: the driver
// gives them acc of round_up(n, kQ8DwBlock) entries and rows readable (values ignored)
// up to sw * round_up(n, kQ8DwBlock) + kQ8DwSlack elements.
constexpr size_t kQ8DwBlock = 32;
constexpr size_t kQ8DwSlack = 64;

// acc[j] = init + sum_{r<3, k<3} rows[r][sw * j + k] * w9[3 * r + k], for j < n
// (sw = 1 for row_s1, 2 for row_s2); acc[j] for n <= j < round_up(n, kQ8DwBlock) may be
// written with any value. Every true sum fits in int32 (supports()).
typedef void (*Q8DwRowFn)(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n);

// out[r * pitch + i] = x[r * n + i] - zx as int16 for r < rows, i < n (x int8, or uint8
// when x_u8): a whole plane's rows in one call; nothing else of out is written.
typedef void (*Q8DwWidenFn)(const void* x, bool x_u8, int32_t zx, size_t n, size_t rows, int16_t* out,
                            size_t pitch);

// A whole flat plane (sw = sh = 1 or 2), fused: out[oy * ow + ox] = r.apply(init +
// sum_{r<3, k<3} base[(r + sw * oy) * wp + sw * ox + k] * w9[3 * r + k]) for oy < oh,
// ox < ow. base is readable up to the flat layout's flat_len; stage is scratch of at least
// round_up(oh * wp, 32) + 32 bytes.
typedef void (*Q8DwFlatFn)(const int16_t* base, size_t wp, size_t sw, const int16_t* w9, int32_t init,
                           const Q8Requant& r, size_t oh, size_t ow, void* out, bool out_u8, uint8_t* stage);

struct Q8DwIsa {
  const char* name;  // "conv_q8_dw3x3_avx2"
  Q8DwRowFn row_s1;
  Q8DwRowFn row_s2;
  Q8DwWidenFn widen;
  Q8RequantRowFn requant_row;
  Q8DwFlatFn flat_plane;  // nullptr: the flat layout runs row_s* + requant_row in chunks
};

// Accepts 2-D depthwise nodes (group == C == M, 3x3, strides 1|2, dilation 1) with
// constant weights and bias whose sums provably fit in int32 and that the Conv rules
// (conv_rules) accept; anything else is the reference's.
bool q8_dw_supports(const KernelContext& ctx);
// Packs the taps, initial accumulators and requantization constants into *ctx.state.
Status q8_dw_prepare(KernelContext& ctx, const Q8DwIsa& isa);
void q8_dw_release(void* state);
size_t q8_dw_scratch_bytes(const KernelContext& ctx);
Status q8_dw_run(KernelContext& ctx);

// The portable kernels (the specification of the vector ones; the vector widen's tail).
void q8_dw_row3x3s1_scalar(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n);
void q8_dw_row3x3s2_scalar(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n);
void q8_dw_widen_scalar(const void* x, bool x_u8, int32_t zx, size_t n, int16_t* out);  // one row
void q8_dw_widen_rows_scalar(const void* x, bool x_u8, int32_t zx, size_t n, size_t rows, int16_t* out,
                             size_t pitch);

// Per instruction set (defined in q8_dwconv_<isa>.cpp, only built where the set exists):
// q8_dw_prepare with that set's table.
Status q8_dw_prepare_avx2(KernelContext& ctx);
Status q8_dw_prepare_avx512(KernelContext& ctx);
Status q8_dw_prepare_avx512_vnni(KernelContext& ctx);
Status q8_dw_prepare_neon(KernelContext& ctx);

// The Kernel entry conv_q8_dw3x3_<isa> with `prepare` (for register_q8_dw_<isa>.cpp).
Kernel q8_dw_kernel(const char* name, Status (*prepare)(KernelContext&));
// Registers `k` under (Conv, {X, W}) for X, W in {I8, U8} at `isa`.
void q8_dw_register(KernelRegistry& registry, Isa isa, const Kernel& k);

}  // namespace q8
}  // namespace mobrt
