// q8_neon_ukernel_test: the NEON int8 GEMM micro-kernels and requant row
// (runtime/src/cpu/int8/q8_gemm_neon.h) against their scalar definitions, outside the
// runtime, run under qemu-aarch64 by tests/test_int8_neon_kernels.py:
//
//   q8_neon_ukernel_test [neon|neon_dot]...
//
// GEMM: every mr <= MR, nr <= NR, kgroups 0..9 and 33, random panels at the operand
// type's extremes, init values near the int32 limits (the sum must wrap like int32), and a
// sentinel around the tile (rows >= mr and columns >= nr stay unwritten).
// Requant: q8_requant_row_neon vs q8_requant_row_scalar for every shift in [-31, 31],
// multipliers 0, 2^30, 2^31 - 1 and random ones, accumulators at the int32 corners, at
// the rounding ties of the high multiply and of the right shift (and one off), and random
// ones; int8 and uint8 outputs; zero points and clamp ranges at the extremes; both rules;
// row lengths 0..40 (vector body and scalar tail).
// Packers: q8_pack_b_*_nr12_neon vs q8_gemm.h's layout (the driver's interleave) for
// n = 12..96, int8/uint8 activations, every zero point class, a sentinel after the panels.
// Prints the first difference (kernel, sizes, index, expected, got) and exits 1.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/int8/q8_gemm.h"  // Q8BConvert (needs the flatbuffers headers on the include path)
#include "cpu/int8/q8_gemm_neon.h"

using namespace mobrt::q8;

namespace {

typedef void (*Ukernel)(size_t, const void*, const void*, int32_t*, size_t, size_t, size_t, const int32_t*);

struct Kernel {
  const char* name;
  Ukernel fn;
  int mr, nr, kr;
  bool s16;  // S16 operands in [-255, 255]; else S8
};

std::mt19937_64 rng(20261206);

int64_t uniform(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

int64_t operand(bool s16) {
  const int64_t lo = s16 ? -255 : -128, hi = s16 ? 255 : 127;
  const int64_t r = uniform(0, 9);
  return r == 0 ? lo : (r == 1 ? hi : uniform(lo, hi));  // the extremes often
}

int check_gemm(const Kernel& k) {
  const size_t esize = k.s16 ? 2 : 1;
  int checks = 0;
  for (size_t kgroups : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 33}) {
    for (int mr = 1; mr <= k.mr; ++mr) {
      for (int nr = 1; nr <= k.nr; ++nr) {
        // A panel: zero beyond the live rows, as the driver packs it; B panel: any value.
        std::vector<int64_t> a(kgroups * k.mr * k.kr), b(kgroups * k.nr * k.kr);
        for (size_t g = 0; g < kgroups; ++g)
          for (int r = 0; r < k.mr; ++r)
            for (int j = 0; j < k.kr; ++j) a[(g * k.mr + r) * k.kr + j] = r < mr ? operand(k.s16) : 0;
        for (auto& v : b) v = operand(k.s16);
        std::vector<unsigned char> ap(a.size() * esize + 64), bp(b.size() * esize + 64);
        for (size_t i = 0; i < a.size(); ++i) {
          if (k.s16) { int16_t v = int16_t(a[i]); std::memcpy(&ap[2 * i], &v, 2); } else ap[i] = uint8_t(int8_t(a[i]));
        }
        for (size_t i = 0; i < b.size(); ++i) {
          if (k.s16) { int16_t v = int16_t(b[i]); std::memcpy(&bp[2 * i], &v, 2); } else bp[i] = uint8_t(int8_t(b[i]));
        }
        std::vector<int32_t> init(mr);
        for (auto& v : init) {
          const int64_t r = uniform(0, 3);
          v = int32_t(r == 0 ? uniform(INT32_MAX - 40000, INT32_MAX) : r == 1 ? uniform(INT32_MIN, INT32_MIN + 40000)
                                                                          : uniform(-100000, 100000));
        }
        const size_t ldc = nr + 3, rows = k.mr + 1;
        const int32_t sentinel = 0x5a5a5a5a;
        std::vector<int32_t> c(rows * ldc, sentinel);
        k.fn(kgroups, ap.data(), bp.data(), c.data(), ldc, mr, nr, init.data());
        ++checks;
        for (size_t r = 0; r < rows; ++r) {
          for (size_t col = 0; col < ldc; ++col) {
            int32_t want = sentinel;
            if (r < size_t(mr) && col < size_t(nr)) {
              uint32_t s = uint32_t(init[r]);  // wrapping int32 sum
              for (size_t g = 0; g < kgroups; ++g)
                for (int j = 0; j < k.kr; ++j)
                  s += uint32_t(int32_t(a[(g * k.mr + r) * k.kr + j] * b[(g * k.nr + col) * k.kr + j]));
              want = int32_t(s);
            }
            if (c[r * ldc + col] != want) {
              std::printf("FAIL %s kgroups=%zu mr=%d nr=%d: c[%zu][%zu] expected %d got %d\n", k.name, kgroups, mr,
                          nr, r, col, want, c[r * ldc + col]);
              return -1;
            }
          }
        }
      }
    }
  }
  return checks;
}

// Accumulators that reach every rounding corner of multiplier (q, shift).
std::vector<int32_t> accumulators(const Q8Requant& r) {
  std::vector<int32_t> acc = {0, 1, -1, 2, -2, 3, -3, INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1};
  for (int e = 0; e < 31; ++e) {
    const int64_t p = int64_t(1) << e;
    for (int64_t v : {p, p - 1, p + 1, -p, -p + 1, -p - 1, 3 * p, -3 * p}) {
      if (v >= INT32_MIN && v <= INT32_MAX) acc.push_back(int32_t(v));
    }
  }
  // Ties of the right shift: the high product equals (2m + 1) * 2^(e-1) for e = -shift.
  // With q = 2^30 the high product of x (shift <= 0) is round(x / 2), so x = (2m + 1) * 2^e
  // lands on such a tie; neighbours one away from it.
  const int right = r.shift < 0 ? -r.shift : 0;
  for (int m = -6; m <= 6; ++m) {
    for (int d = -2; d <= 2; ++d) {
      const int64_t v = (2 * int64_t(m) + 1) * (int64_t(1) << right) + d;
      if (v >= INT32_MIN && v <= INT32_MAX) acc.push_back(int32_t(v));
    }
  }
  for (int i = 0; i < 200; ++i) acc.push_back(int32_t(uniform(INT32_MIN, INT32_MAX) >> uniform(0, 31)));
  return acc;
}

// Packed element of raw activation byte `raw` (Q8BConvert's rule).
int32_t convert(uint8_t raw, const Q8BConvert& cv, bool s16) {
  if (s16) return (cv.x_u8 ? int32_t(raw) : int32_t(int8_t(raw))) - cv.zx;
  return int8_t(uint8_t(raw ^ cv.xor_mask));
}

int check_pack(const char* name, Q8PackBFn fn, int kr, bool s16) {
  int checks = 0;
  const size_t nr = 12, esize = s16 ? 2 : 1;
  for (size_t n = 12; n <= 96; n += 12) {
    for (int variant = 0; variant < 4; ++variant) {
      Q8BConvert cv;
      cv.x_u8 = variant % 2 == 1;
      cv.zx = int32_t(variant < 2 ? (cv.x_u8 ? 255 : -128) : uniform(cv.x_u8 ? 0 : -128, cv.x_u8 ? 255 : 127));
      cv.xor_mask = cv.x_u8 ? 0x80 : 0;  // S8: uint8 activations shift to int8
      std::vector<std::vector<uint8_t>> raw(kr, std::vector<uint8_t>(n));
      const uint8_t* rows[4];
      for (int j = 0; j < kr; ++j) {
        for (auto& v : raw[j]) v = uint8_t(uniform(0, 255));
        rows[j] = raw[j].data();
      }
      const size_t panel_stride = (nr * kr + 7) * esize;  // > one k-group's panel: gaps stay untouched
      const size_t panels = n / nr;
      std::vector<uint8_t> dst(panels * panel_stride + 64, 0xa5);
      fn(rows, n, cv, dst.data(), panel_stride);
      ++checks;
      for (size_t i = 0; i < dst.size(); i += esize) {
        const size_t panel = i / panel_stride, off = (i % panel_stride) / esize;
        int32_t want, got;
        if (panel < panels && off < nr * kr) {
          const size_t c = panel * nr + off / kr, j = off % kr;
          want = convert(raw[j][c], cv, s16);
        } else {
          want = s16 ? int16_t(0xa5a5) : int8_t(0xa5);
        }
        if (s16) { int16_t v; std::memcpy(&v, &dst[i], 2); got = v; } else got = int8_t(dst[i]);
        if (got != want) {
          std::printf("FAIL %s n=%zu x_u8=%d zx=%d: byte %zu (panel %zu, element %zu) expected %d got %d\n", name, n,
                      int(cv.x_u8), cv.zx, i, panel, off, want, got);
          return -1;
        }
      }
    }
  }
  return checks;
}

int check_requant() {
  int checks = 0;
  std::vector<Q8Requant> params;
  for (int shift = -31; shift <= 31; ++shift) {
    const int64_t q_min = int64_t(1) << 30, q_max = (int64_t(1) << 31) - 1;
    for (int64_t q : {int64_t(0), q_min, q_max, uniform(q_min, q_max)}) {
      Q8Requant r;
      r.q = int32_t(q);
      r.shift = shift;
      params.push_back(r);
    }
  }
  for (float s : {1.0f, 0.5f, 0.25f, 0.125f, 1e-3f, 3.7e-5f, 1e-9f, 2.0f, 1000.0f}) {
    Q8Requant r;
    r.float32 = true;
    r.fscale = s;
    params.push_back(r);
  }
  for (int i = 0; i < 20; ++i) {
    Q8Requant r;
    r.float32 = true;
    r.fscale = std::ldexp(float(uniform(1 << 23, (1 << 24) - 1)), int(uniform(-50, -10)));
    params.push_back(r);
  }
  std::vector<int32_t> acc;
  std::vector<uint8_t> got(64), want(64);
  for (Q8Requant r : params) {
    for (int out_u8 = 0; out_u8 < 2; ++out_u8) {
      const int dlo = out_u8 ? 0 : -128, dhi = out_u8 ? 255 : 127;
      // full range, extreme zero point, a narrow (Relu-like) clamp, an inverted one (lo > hi: hi)
      for (int variant = 0; variant < 4; ++variant) {
        r.zp = variant == 0 ? int32_t(uniform(dlo, dhi)) : (variant == 1 ? (uniform(0, 1) ? dlo : dhi) : dlo + 3);
        r.lo = variant == 2 ? r.zp : (variant == 3 ? r.zp + 60 : dlo);
        r.hi = variant == 2 ? r.zp + 100 : (variant == 3 ? r.zp + 10 : dhi);
        acc = accumulators(r);
        for (size_t start = 0; start < acc.size(); start += 37) {
          const size_t n = std::min<size_t>(acc.size() - start, size_t(uniform(0, 40)));
          std::memset(got.data(), 0xa5, got.size());
          std::memset(want.data(), 0xa5, want.size());
          q8_requant_row_neon(acc.data() + start, n, r, got.data(), out_u8);
          q8_requant_row_scalar(acc.data() + start, n, r, want.data(), out_u8);
          ++checks;
          for (size_t i = 0; i < got.size(); ++i) {
            if (got[i] != want[i]) {
              std::printf("FAIL q8_requant_row_neon %s q=%d shift=%d float32=%d fscale=%a zp=%d lo=%d hi=%d n=%zu: "
                          "acc %d at %zu expected %d got %d\n", out_u8 ? "uint8" : "int8", r.q, r.shift,
                          int(r.float32), r.fscale, r.zp, r.lo, r.hi, n, i < n ? acc[start + i] : 0, i,
                          out_u8 ? int(want[i]) : int(int8_t(want[i])), out_u8 ? int(got[i]) : int(int8_t(got[i])));
              return -1;
            }
          }
        }
      }
    }
  }
  return checks;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> sets(argv + 1, argv + argc);
  if (sets.empty()) sets = {"neon", "neon_dot"};
  const Kernel neon[] = {{"q8_gemm_ukernel_8x12__neon", &q8_gemm_ukernel_8x12__neon, 8, 12, 1, true},
                         {"q8_gemm_ukernel_8x4__neon", &q8_gemm_ukernel_8x4__neon, 8, 4, 1, true}};
  const Kernel dot[] = {{"q8_gemm_ukernel_8x12c4__neon_dot", &q8_gemm_ukernel_8x12c4__neon_dot, 8, 12, 4, false},
                        {"q8_gemm_ukernel_8x4c4__neon_dot", &q8_gemm_ukernel_8x4c4__neon_dot, 8, 4, 4, false}};
  for (const std::string& set : sets) {
    if (set != "neon" && set != "neon_dot") {
      std::printf("unknown set '%s' (neon, neon_dot)\n", set.c_str());
      return 2;
    }
    for (const Kernel& k : set == "neon" ? neon : dot) {
      const int n = check_gemm(k);
      if (n < 0) return 1;
      std::printf("ok %s %d tiles\n", k.name, n);
    }
    const int np = set == "neon" ? check_pack("q8_pack_b_s16_kr1_nr12_neon", &q8_pack_b_s16_kr1_nr12_neon, 1, true)
                                 : check_pack("q8_pack_b_s8_kr4_nr12_neon", &q8_pack_b_s8_kr4_nr12_neon, 4, false);
    if (np < 0) return 1;
    std::printf("ok %s packer %d blocks\n", set.c_str(), np);
    if (set == "neon") {
      const int n = check_requant();
      if (n < 0) return 1;
      std::printf("ok q8_requant_row_neon %d rows\n", n);
    }
  }
  return 0;
}
