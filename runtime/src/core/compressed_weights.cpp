// compressed_weights.cpp: check, then expand, a compressed constant tensor.
//
// SPARSE_BITMASK: `mask` holds ceil(numel / 8) bytes; bit (i % 8) of byte i / 8
// (LSB first) set means element i (row-major) is stored; `values` holds the
// stored elements in order, popcount(mask) x itemsize bytes; every other
// element is 0. PALETTE: `palette` holds K elements of the tensor's dtype
// (1 <= K <= 2^index_bits), `values` the packed indices: element i's index is
// bits [i*b, i*b + b) of the stream, LSB first; b is 1, 2, 4 or 8, so an index
// never straddles a byte.
//
// Steps: (1) the kind and the buffer indices; (2) every size rule, computed in
// 64 bits from numel <= 2^48 (so numel x 8 bits cannot overflow) before
// anything the size of the dense tensor is allocated, and the unused trailing
// bits of the last mask / index byte (0); (3) the mask's popcount against the
// stored values (sparse) or the palette size against the index width; (4) the
// file's decode budget (rule C7), the dense size against MOBRT_MAX_TENSOR_BYTES,
// then one 64-byte aligned allocation; (5) the decode, which checks each index
// < K (palette) as it goes and frees the buffer on a failure.
#include "core/compressed_weights.h"

#include <cstdlib>
#include <cstring>

#include "core/infer.h"

namespace mobrt {

namespace fb = ::mobconv::formats::fb;

namespace {

constexpr size_t kAlign = 64;

using Buffers = ::flatbuffers::Vector<::flatbuffers::Offset<fb::Buffer>>;

struct Bytes {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
};

Status fail(const std::string& where, const std::string& problem) {
  return Status::Error(StatusCode::kInvalidModel, where + ": " + problem);
}

// Buffer `index` of the file (0 is the empty buffer), or false if out of range.
bool buffer_bytes(const Buffers* buffers, uint32_t index, Bytes* out) {
  size_t n = buffers ? buffers->size() : 0;
  if (index == 0) return true;
  if (index >= n) return false;
  const fb::Buffer* b = buffers->Get(index);
  if (b && b->data()) {
    out->data = b->data()->data();
    out->size = b->data()->size();
  }
  return true;
}

uint64_t popcount(const uint8_t* p, uint64_t n) {
  uint64_t count = 0, k = 0;
  for (; k + 8 <= n; k += 8) {
    uint64_t w;
    std::memcpy(&w, p + k, 8);
    count += static_cast<uint64_t>(__builtin_popcountll(w));
  }
  for (; k < n; ++k) count += static_cast<uint64_t>(__builtin_popcount(p[k]));
  return count;
}

// Expands the sparse elements (E bytes each) into the zeroed `dst`: a full mask
// byte is one 8-element copy, an empty one is skipped, others go bit by bit.
template <size_t E>
void expand_sparse(const uint8_t* mask, uint64_t mask_bytes, const uint8_t* values, uint8_t* dst) {
  const uint8_t* v = values;
  for (uint64_t byte = 0; byte < mask_bytes; ++byte, dst += 8 * E) {
    unsigned bits = mask[byte];
    if (bits == 0xFF) {
      std::memcpy(dst, v, 8 * E);
      v += 8 * E;
      continue;
    }
    while (bits) {
      std::memcpy(dst + static_cast<unsigned>(__builtin_ctz(bits)) * E, v, E);
      v += E;
      bits &= bits - 1;
    }
  }
}

// Expands B-bit palette indices to E-byte elements; returns false (the first
// element whose index is >= k in *bad) when an index is out of range. The range
// check is folded into a flag per index byte (no branch per element) and is
// skipped when k = 2^B (every index is valid).
template <unsigned B, size_t E>
bool expand_palette(const uint8_t* idx, uint64_t numel, const uint8_t* palette, uint64_t k, uint8_t* dst,
                    uint64_t* bad) {
  constexpr unsigned kPer = 8 / B, kLow = (1u << B) - 1;
  const bool check = k < (uint64_t(1) << B);
  uint8_t entries[256 * E];  // the palette padded to 2^B entries: every index reads inside it
  std::memset(entries, 0, sizeof entries);
  std::memcpy(entries, palette, static_cast<size_t>(k) * E);
  const uint64_t nbytes = (numel + kPer - 1) / kPer;
  for (uint64_t byte = 0; byte < nbytes; ++byte) {
    const unsigned v = idx[byte];
    const unsigned n = byte + 1 < nbytes || numel % kPer == 0 ? kPer : static_cast<unsigned>(numel % kPer);
    bool out = false;
    uint8_t* d = dst + byte * kPer * E;
    for (unsigned j = 0; j < n; ++j) {
      unsigned q = (v >> (j * B)) & kLow;
      out |= q >= k;
      std::memcpy(d + j * E, entries + q * E, E);
    }
    if (check && out) {
      for (unsigned j = 0; j < n; ++j)
        if (((v >> (j * B)) & kLow) >= k) {
          *bad = byte * kPer + j;
          return false;
        }
    }
  }
  return true;
}

template <size_t E>
bool expand_palette_bits(unsigned b, const uint8_t* idx, uint64_t numel, const uint8_t* palette, uint64_t k,
                         uint8_t* dst, uint64_t* bad) {
  switch (b) {
    case 1: return expand_palette<1, E>(idx, numel, palette, k, dst, bad);
    case 2: return expand_palette<2, E>(idx, numel, palette, k, dst, bad);
    case 4: return expand_palette<4, E>(idx, numel, palette, k, dst, bad);
    default: return expand_palette<8, E>(idx, numel, palette, k, dst, bad);
  }
}

// The element sizes of DType: 1, 2, 4, 8.
void expand_sparse_any(size_t esize, const uint8_t* mask, uint64_t mask_bytes, const uint8_t* values, uint8_t* dst) {
  switch (esize) {
    case 1: expand_sparse<1>(mask, mask_bytes, values, dst); break;
    case 2: expand_sparse<2>(mask, mask_bytes, values, dst); break;
    case 4: expand_sparse<4>(mask, mask_bytes, values, dst); break;
    default: expand_sparse<8>(mask, mask_bytes, values, dst); break;
  }
}

bool expand_palette_any(size_t esize, unsigned b, const uint8_t* idx, uint64_t numel, const uint8_t* palette,
                        uint64_t k, uint8_t* dst, uint64_t* bad) {
  switch (esize) {
    case 1: return expand_palette_bits<1>(b, idx, numel, palette, k, dst, bad);
    case 2: return expand_palette_bits<2>(b, idx, numel, palette, k, dst, bad);
    case 4: return expand_palette_bits<4>(b, idx, numel, palette, k, dst, bad);
    default: return expand_palette_bits<8>(b, idx, numel, palette, k, dst, bad);
  }
}

std::string n(uint64_t v) { return std::to_string(v); }

}  // namespace

Status decode_compressed(const fb::CompressedData& cd, const Buffers* buffers, DType dtype, uint64_t numel,
                         const std::string& where, DenseCopy* out, DecodeBudget* budget) {
  *out = DenseCopy();
  const size_t nbuf = buffers ? buffers->size() : 0;
  const uint64_t esize = dtype_size(dtype);
  const int kind = static_cast<int>(cd.kind());
  if (kind != fb::StorageKind_SPARSE_BITMASK && kind != fb::StorageKind_PALETTE)
    return fail(where, "compressed data has unknown storage kind " + std::to_string(kind));
  const bool sparse = kind == fb::StorageKind_SPARSE_BITMASK;
  const char* kname = sparse ? "SPARSE_BITMASK" : "PALETTE";

  // (1) buffer indices
  Bytes values, side;  // side: the mask (sparse) or the palette
  uint32_t side_index = sparse ? cd.mask() : cd.palette();
  if (!buffer_bytes(buffers, cd.values(), &values))
    return fail(where, std::string("compressed values refer to buffer ") + n(cd.values()) + ", but the file has " +
                           n(nbuf));
  if (!buffer_bytes(buffers, side_index, &side))
    return fail(where, std::string("compressed ") + (sparse ? "mask" : "palette") + " refers to buffer " +
                           n(side_index) + ", but the file has " + n(nbuf));

  // (2)-(3) sizes; numel <= 2^48, so numel * 8 and numel * esize fit in 64 bits
  const uint64_t dense = numel * esize;
  unsigned bits = 0;
  uint64_t k = 0;
  if (sparse) {
    uint64_t need_mask = (numel + 7) / 8;
    if (side.size != need_mask)
      return fail(where, std::string(kname) + " mask has " + n(side.size) + " bytes, expected " + n(need_mask) +
                             " for " + n(numel) + " elements");
    if (numel % 8 && (side.data[need_mask - 1] >> (numel % 8)))
      return fail(where, std::string(kname) + " mask has bits set past element " + n(numel));
    uint64_t stored = popcount(side.data, side.size);
    if (values.size != stored * esize)
      return fail(where, std::string(kname) + " has " + n(values.size) + " bytes of values, expected " +
                             n(stored * esize) + " for the mask's " + n(stored) + " " + dtype_name(dtype) +
                             " elements");
  } else {
    bits = cd.index_bits();
    if (bits != 1 && bits != 2 && bits != 4 && bits != 8)
      return fail(where, std::string(kname) + " index_bits is " + n(bits) + ", must be 1, 2, 4 or 8");
    if (side.size % esize)
      return fail(where, std::string(kname) + " palette has " + n(side.size) + " bytes, not a whole number of " +
                             dtype_name(dtype) + " elements");
    k = side.size / esize;
    if (k < 1 || k > (uint64_t(1) << bits))
      return fail(where, std::string(kname) + " palette has " + n(k) + " entries, must be 1 to " +
                             n(uint64_t(1) << bits) + " for " + n(bits) + "-bit indices");
    uint64_t need = (numel * bits + 7) / 8;
    if (values.size != need)
      return fail(where, std::string(kname) + " indices have " + n(values.size) + " bytes, expected " + n(need) +
                             " for " + n(numel) + " " + n(bits) + "-bit indices");
    uint64_t tail = (numel * bits) % 8;
    if (tail && (values.data[need - 1] >> tail))
      return fail(where, std::string(kname) + " indices have bits set past element " + n(numel));
  }

  // (4) the dense copy: rule C7, then the machine's tensor limit
  if (budget && dense > budget->left)
    return fail(where, "compressed constants decode to more than " + n(kDecodeRatio) + " times the file size (" +
                           n(budget->file_size) + " bytes)");
  if (budget) budget->left -= dense;
  if (dense > max_tensor_bytes())
    return Status::Error(StatusCode::kShapeError, where + " decodes to " + n(dense) +
                                                      " bytes, over the runtime's tensor limit of " +
                                                      n(max_tensor_bytes()) + " (MOBRT_MAX_TENSOR_BYTES)");
  void* p = nullptr;
  if (posix_memalign(&p, kAlign, dense ? static_cast<size_t>(dense) : kAlign) != 0 || !p)
    return Status::Error(StatusCode::kOutOfMemory, where + ": cannot allocate " + n(dense) +
                                                       " bytes to decode its compressed data");
  uint8_t* dst = static_cast<uint8_t*>(p);

  // (5) decode
  if (sparse) {
    if (dense) std::memset(dst, 0, static_cast<size_t>(dense));
    expand_sparse_any(static_cast<size_t>(esize), side.data, side.size, values.data, dst);
  } else {
    uint64_t bad = 0;
    if (!expand_palette_any(static_cast<size_t>(esize), bits, values.data, numel, side.data, k, dst, &bad)) {
      std::free(p);
      return fail(where, std::string(kname) + " index of element " + n(bad) + " is out of range for a palette of " +
                             n(k) + " entries");
    }
  }
  out->data = p;
  out->size = static_cast<size_t>(dense);
  return Status::Ok();
}

}  // namespace mobrt
