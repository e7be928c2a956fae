// compressed_weights.h: constant tensors stored compressed in a .mob file
// (format 1.1, Tensor.compressed: a sparse bitmask or a palette of packed
// indices; formats/mobconv.fbs CompressedData), checked and expanded once at
// load into dense buffers the Model owns, so every kernel sees plain dense
// constants. The rules are docs/format-rules.md's C rules, the same the Python
// reader (formats/reader.py) applies, with the same messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/generated/mobconv_generated.h"
#include "core/kernel.h"

namespace mobrt {

// The decoded tensor: a 64-byte aligned buffer of `size` bytes (never null, even
// for an empty tensor) that the caller releases with std::free.
struct DenseCopy {
  void* data = nullptr;
  size_t size = 0;
};

// Checks the compressed data of a constant tensor of `dtype` and `numel`
// elements (its shape already passed rules T3/T4, so numel <= 2^48) against the
// file's buffers, then decodes it into *out. `where` names the tensor
// ("<file>: tensor 3 ('w')"). A broken rule is kInvalidModel with the rule's
// message; a dense size over MOBRT_MAX_TENSOR_BYTES is kShapeError and a failed
// allocation kOutOfMemory (both depend on the machine, not on the file). Nothing
// is allocated unless every size rule holds; on failure *out is left empty.
//
// Rule C7: `budget` is what the file's compressed constants may still decode to
// (the model starts it at kDecodeRatio x the file size; each decode spends its
// dense size before allocating), so a crafted file whose tensors all point at one
// big mask cannot make the loader allocate unboundedly. nullptr: no bound (tools).
constexpr uint64_t kDecodeRatio = 64;
struct DecodeBudget {
  uint64_t file_size = 0;
  uint64_t left = 0;
};
Status decode_compressed(const ::mobconv::formats::fb::CompressedData& cd,
                         const ::flatbuffers::Vector<::flatbuffers::Offset<::mobconv::formats::fb::Buffer>>* buffers,
                         DType dtype, uint64_t numel, const std::string& where, DenseCopy* out,
                         DecodeBudget* budget = nullptr);

}  // namespace mobrt
