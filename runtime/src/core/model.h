// model.h: a loaded, verified .mob file. Immutable after load, so one Model
// is shared by many interpreters on many threads.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/kernel.h"

namespace mobrt {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> dims;          // -1: symbolic
  std::vector<std::string> symbols;   // per dim, "" when fixed
  const uint8_t* data = nullptr;      // constant data in the mapping, or null
  size_t data_size = 0;
  bool has_quant = false;
  std::vector<float> scales;
  std::vector<int64_t> zero_points;
  QuantParams quant;                  // points into scales/zero_points
};

struct OpInfo {
  OpType type;
  std::string name;
  std::vector<int> inputs;   // -1: absent
  std::vector<int> outputs;  // -1: absent
  Attrs attrs;
};

float half_to_float(uint16_t h);  // IEEE binary16 -> binary32 (exact)

class Model {
 public:
  ~Model();
  static Status LoadFile(const std::string& path, std::unique_ptr<Model>* out);
  static Status LoadBuffer(const void* data, size_t size, bool copy, std::unique_ptr<Model>* out);

  std::vector<TensorInfo> tensors;
  std::vector<OpInfo> ops;
  std::vector<int> inputs, outputs;
  std::map<std::string, std::string> metadata;
  bool requantize_float32 = false;   // metadata quantization.requantize == "float32"
  bool fp16_compute = false;         // metadata quantization.fp16_compute == "allow"
  // signature the file records (empty strings / vectors when absent)
  std::vector<std::string> input_layouts, output_layouts;  // "NCHW", "NHWC" or ""
  std::vector<float> pre_mean, pre_scale;                   // preprocessing of input 0
  std::string channel_order;                                // "RGB", "BGR" or ""
  std::string source;                // file path or "<buffer>", for messages
  mutable std::string last_error;

 private:
  Status Parse();  // verify + semantic validation + extraction
  Status CheckSignature(const void* list, const std::vector<int>& io, const char* what) const;
  Status CheckNamedArrays(const void* list, const std::string& what) const;
  void WidenHalfWeights();
  void ReleaseCompressedPages(const uint8_t* data, size_t size) const;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;          // mmap'ed region (munmap at destruction)
  size_t mapping_size_ = 0;
  void* owned_ = nullptr;            // aligned copy (free at destruction)
  std::vector<void*> widened_;       // fp32 copies of half-precision weights
  std::vector<void*> decoded_;       // dense copies of compressed constants
  std::vector<std::pair<const uint8_t*, size_t>> compressed_spans_;  // their bytes in the mapping
};

}  // namespace mobrt
