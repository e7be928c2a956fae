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
// 64 bits from numel <= 2^48 (so numel x 8 bits cannot overflow) before reading
// any data byte; (3) the mask's popcount against the stored values (sparse) or
// the palette size against the index width; (4) the dense size against
// MOBRT_MAX_TENSOR_BYTES, then one 64-byte aligned allocation; (5) the decode,
// which checks each index < K (palette) and the unused trailing bits of the
// last mask / index byte (0) as it goes, and frees the buffer on a failure.
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

// Copies one element of `esize` bytes (a switch, so the common sizes compile to a move).
inline void put(uint8_t* dst, const uint8_t* src, size_t esize) {
  switch (esize) {
    case 1: *dst = *src; break;
    case 2: std::memcpy(dst, src, 2); break;
    case 4: std::memcpy(dst, src, 4); break;
    case 8: std::memcpy(dst, src, 8); break;
    default: std::memcpy(dst, src, esize); break;
  }
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

// Expands the sparse elements into the zeroed `dst`.
void expand_sparse(const uint8_t* mask, uint64_t mask_bytes, const uint8_t* values, size_t esize, uint8_t* dst) {
  const uint8_t* v = values;
  for (uint64_t byte = 0; byte < mask_bytes; ++byte) {
    unsigned bits = mask[byte];
    while (bits) {
      unsigned bit = static_cast<unsigned>(__builtin_ctz(bits));
      put(dst + (byte * 8 + bit) * esize, v, esize);
      v += esize;
      bits &= bits - 1;
    }
  }
}

// Expands palette indices of `b` bits; returns the first element whose index is
// >= k (its position in *bad), or true when all are in range.
bool expand_palette(const uint8_t* idx, uint64_t numel, unsigned b, const uint8_t* palette, uint64_t k,
                    size_t esize, uint8_t* dst, uint64_t* bad) {
  const unsigned per_byte = 8 / b, low = (1u << b) - 1;
  for (uint64_t i = 0; i < numel; ++i) {
    unsigned shift = static_cast<unsigned>(i % per_byte) * b;
    uint64_t j = (idx[i / per_byte] >> shift) & low;
    if (j >= k) {
      *bad = i;
      return false;
    }
    put(dst + i * esize, palette + j * esize, esize);
  }
  return true;
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
    expand_sparse(side.data, side.size, values.data, static_cast<size_t>(esize), dst);
  } else {
    uint64_t bad = 0;
    if (!expand_palette(values.data, numel, bits, side.data, k, static_cast<size_t>(esize), dst, &bad)) {
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
