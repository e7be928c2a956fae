// model.cpp: loading a .mob file and never trusting it.
//
// Steps: (1) get the bytes: mmap the file read-only, or use/copy a caller
// buffer so that the base is 64-byte aligned (weights are then aligned for
// SIMD loads in place); (2) FlatBuffers Verifier (bounds of every offset,
// vector, string; file identifier "MOB1"); (3) semantic validation, which
// also extracts the graph into plain structs: version, tensor dtypes/ranks,
// buffer indices and sizes vs shape x dtype, compressed constants (checked,
// then expanded once into owned dense buffers: compressed_weights.h),
// quantization lengths, operator
// types, input/output counts and indices, attribute kinds, graph
// inputs/outputs, and topological order (which also rules out cycles).
// Every failure is a Status naming the file, the element and the rule.
#include "core/model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <array>
#include <map>

#include <unordered_set>

#include "core/compressed_weights.h"
#include "core/file_structure.h"
#include "core/op_schema.h"

namespace mobrt {

namespace fb = ::mobconv::formats::fb;

static constexpr int64_t kMaxDim = int64_t(1) << 40;
static constexpr size_t kMaxTensors = size_t(1) << 24;
static constexpr size_t kAlign = 64;

Model::~Model() {
  if (mapping_) munmap(mapping_, mapping_size_);
  std::free(owned_);
  for (void* p : widened_) std::free(p);
  for (void* p : decoded_) std::free(p);
}

float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal: normalize
    int e = -1;
    do { ++e; man <<= 1; } while ((man & 0x400) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((man & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// fp16 (and bf16) weights are widened to fp32 once, at load, into storage the
// model owns (shared by all interpreters): a half-precision constant is
// widened when every operator reading it reads it as a weight (input index
// >= 1) of an op whose input 0 is declared float32, i.e. the mixed-precision
// graphs the fp16 weight scheme produces (the numpy reference computes these
// in float32). Half constants read as data (Cast, an all-fp16 graph) stay.
void Model::WidenHalfWeights() {
  std::vector<int> uses(tensors.size(), 0);
  std::vector<char> widen(tensors.size(), 1);
  for (const OpInfo& op : ops) {
    for (size_t i = 0; i < op.inputs.size(); ++i) {
      int t = op.inputs[i];
      if (t < 0) continue;
      ++uses[t];
      int x = op.inputs[0];
      if (i == 0 || x < 0 || tensors[x].dtype != DType::F32) widen[t] = 0;
    }
    for (const AttrValue& a : op.attrs.values)
      if (a.kind == AttrValue::Kind::Tensor) widen[a.tensor] = 0;
  }
  for (int t : outputs) widen[t] = 0;
  for (size_t t = 0; t < tensors.size(); ++t) {
    TensorInfo& ti = tensors[t];
    if (!ti.data || !uses[t] || !widen[t] || (ti.dtype != DType::F16 && ti.dtype != DType::BF16)) continue;
    size_t n = ti.data_size / 2;
    void* p = nullptr;
    if (posix_memalign(&p, kAlign, n ? n * 4 : kAlign) != 0 || !p) continue;  // stays half: kernels refuse it
    widened_.push_back(p);
    float* dst = static_cast<float*>(p);
    for (size_t k = 0; k < n; ++k) {
      uint16_t h;
      std::memcpy(&h, ti.data + 2 * k, 2);
      if (ti.dtype == DType::F16) {
        dst[k] = half_to_float(h);
      } else {
        uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(&dst[k], &bits, 4);
      }
    }
    ti.dtype = DType::F32;
    ti.data = static_cast<const uint8_t*>(p);
    ti.data_size = n * 4;
  }
  // A decoded half copy that every reader now reads widened is freed: the widened
  // copy is the model's only copy of that weight.
  std::unordered_set<const void*> read;
  for (const TensorInfo& ti : tensors) read.insert(ti.data);
  for (void*& p : decoded_) {
    if (read.count(p)) continue;
    std::free(p);
    p = nullptr;
  }
}

Status Model::LoadFile(const std::string& path, std::unique_ptr<Model>* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status::Error(StatusCode::kIoError, path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::Error(StatusCode::kIoError, path + ": not a regular file");
  }
  std::unique_ptr<Model> m(new Model());
  m->source = path;
  size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return Status::Error(StatusCode::kInvalidModel, path + ": file is empty (not a .mob model)");
  }
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED)
    return Status::Error(StatusCode::kIoError, path + ": cannot map: " + std::strerror(errno));
  m->mapping_ = p;
  m->mapping_size_ = size;
  m->base_ = static_cast<const uint8_t*>(p);
  m->size_ = size;
  Status s = m->Parse();
  if (!s.ok()) return s;
  for (const auto& span : m->compressed_spans_) m->ReleaseCompressedPages(span.first, span.second);
  m->compressed_spans_.clear();
  *out = std::move(m);
  return Status::Ok();
}

// The compressed bytes of a mapped file are not read again once decoded: their
// whole pages leave the process's resident set right after each decode
// (MADV_DONTNEED on a read-only private file mapping only drops them; a later
// read would fault them back in from the file), so the dense copy is the
// model's only resident copy, during the load as after it. Once more after the
// load: decoding the next tensor faults its pages in with their neighbours
// (fault-around, large folios), which may map released pages again.
void Model::ReleaseCompressedPages(const uint8_t* data, size_t size) const {
  if (!mapping_ || !size) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t start = (reinterpret_cast<uintptr_t>(data) + page - 1) & ~(page - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size) & ~(page - 1);
  if (end > start) madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED);
}

Status Model::LoadBuffer(const void* data, size_t size, bool copy, std::unique_ptr<Model>* out) {
  std::unique_ptr<Model> m(new Model());
  m->source = "<buffer>";
  if (!data) return Status::Error(StatusCode::kInvalidArgument, "<buffer>: data is NULL or size is 0");
  if (size == 0) return Status::Error(StatusCode::kInvalidModel, "<buffer>: empty file, not a mobconv model");
  if (copy || reinterpret_cast<uintptr_t>(data) % kAlign != 0) {
    void* p = nullptr;
    if (posix_memalign(&p, kAlign, size) != 0 || !p)
      return Status::Error(StatusCode::kOutOfMemory, "<buffer>: cannot allocate " +
                                                          std::to_string(size) + " bytes");
    std::memcpy(p, data, size);
    m->owned_ = p;
    m->base_ = static_cast<const uint8_t*>(p);
  } else {
    m->base_ = static_cast<const uint8_t*>(data);
  }
  m->size_ = size;
  Status s = m->Parse();
  if (!s.ok()) return s;
  *out = std::move(m);
  return Status::Ok();
}

namespace {

// Builds messages like "<file>: tensor 3 ('w'): rule".
struct Checker {
  const std::string& source;
  Status fail(const std::string& what) const {
    return Status::Error(StatusCode::kInvalidModel, source + ": " + what);
  }
};

std::string quoted(const flatbuffers::String* s) {
  return s ? "'" + std::string(s->c_str(), s->size()) + "'" : "''";
}

// Copies a vector's elements with memcpy: a hostile file may misalign 8-byte
// elements (the verifier only checks the length prefix's alignment).
template <typename T>
void copy_vec(const flatbuffers::Vector<T>* v, std::vector<T>* out) {
  out->resize(v ? v->size() : 0);
  if (v && v->size()) std::memcpy(out->data(), v->Data(), v->size() * sizeof(T));
}

std::string str(const flatbuffers::String* s) { return s ? std::string(s->c_str(), s->size()) : ""; }

Status read_attr(const fb::Attribute* a, const Checker& c, const std::string& where,
                 size_t num_tensors, AttrValue* out) {
  out->name = str(a->name());
  if (out->name.empty()) return c.fail(where + " has an attribute without a name");
  std::string at = where + ": attribute '" + out->name + "'";
  switch (a->type()) {
    case fb::AttrType_INT: out->kind = AttrValue::Kind::Int; out->i = a->i(); break;
    case fb::AttrType_FLOAT: out->kind = AttrValue::Kind::Float; out->f = a->f(); break;
    case fb::AttrType_STRING: out->kind = AttrValue::Kind::String; out->s = str(a->s()); break;
    case fb::AttrType_INTS:
      out->kind = AttrValue::Kind::Ints;
      copy_vec(a->ints(), &out->ints);
      break;
    case fb::AttrType_FLOATS:
      out->kind = AttrValue::Kind::Floats;
      copy_vec(a->floats(), &out->floats);
      break;
    case fb::AttrType_STRINGS:
      out->kind = AttrValue::Kind::Strings;
      if (a->strings())
        for (const auto* s : *a->strings()) out->strings.push_back(str(s));
      break;
    case fb::AttrType_TENSOR:
      out->kind = AttrValue::Kind::Tensor;
      out->tensor = a->tensor();
      if (a->tensor() < 0 || static_cast<size_t>(a->tensor()) >= num_tensors)
        return c.fail(at + " refers to tensor " + std::to_string(a->tensor()) + ", but the graph has " +
                      std::to_string(num_tensors));
      break;
    default:
      return c.fail(at + " has unknown attribute type " + std::to_string(static_cast<int>(a->type())));
  }
  return Status::Ok();
}

const char* kind_name(char k) {
  switch (k) {
    case 'i': return "INT"; case 'f': return "FLOAT"; case 's': return "STRING";
    case 'I': return "INTS"; case 'F': return "FLOATS"; case 'S': return "STRINGS";
    case 't': return "TENSOR";
  }
  return "?";
}

// Shape rule T3/T4 for a list of dims (-1: symbolic), or "" if fine.
std::string shape_problem(const std::vector<int64_t>& dims, const std::vector<std::string>* symbols) {
  if (dims.size() > static_cast<size_t>(kMaxRank))
    return "rank " + std::to_string(dims.size()) + " exceeds the maximum " + std::to_string(kMaxRank);
  unsigned __int128 elems = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (symbols && !(*symbols)[d].empty()) continue;
    if (dims[d] < 0 || dims[d] > kMaxDim)
      return "dim " + std::to_string(d) + " has invalid size " + std::to_string(dims[d]) + " (must be in [0, 2^40])";
    if (dims[d] > 0) elems *= static_cast<uint64_t>(dims[d]);
    if (elems > (static_cast<unsigned __int128>(1) << 48)) return "declared shape has more than 2^48 elements";
  }
  return "";
}

// Reads a [Dim] vector into dims (-1 where symbolic) and symbols; "" or the problem.
std::string read_dims(const flatbuffers::Vector<flatbuffers::Offset<fb::Dim>>* shape, std::vector<int64_t>* dims,
                      std::vector<std::string>* symbols) {
  dims->clear();
  symbols->clear();
  size_t rank = shape ? shape->size() : 0;
  if (rank > static_cast<size_t>(kMaxRank))
    return "rank " + std::to_string(rank) + " exceeds the maximum " + std::to_string(kMaxRank);
  for (size_t d = 0; d < rank; ++d) {
    const fb::Dim* dim = shape->Get(static_cast<flatbuffers::uoffset_t>(d));
    if (dim->symbol()) {
      if (dim->symbol()->size() == 0) return "dim " + std::to_string(d) + " has an empty symbol";
      dims->push_back(-1);
      symbols->push_back(str(dim->symbol()));
    } else {
      dims->push_back(dim->value());
      symbols->emplace_back();
    }
  }
  return shape_problem(*dims, symbols);
}

std::string shape_text(const std::vector<int64_t>& dims, const std::vector<std::string>& symbols) {
  std::string r = "[";
  for (size_t d = 0; d < dims.size(); ++d)
    r += (d ? ", " : "") + (symbols[d].empty() ? std::to_string(dims[d]) : "'" + symbols[d] + "'");
  return r + "]";
}

unsigned __int128 num_elements(const std::vector<int64_t>& dims) {
  unsigned __int128 n = 1;
  for (int64_t d : dims) n *= static_cast<uint64_t>(d);  // dims <= 2^40, rank <= 8: no overflow
  return n;
}

std::string u128(unsigned __int128 v) {
  std::string r;
  do { r.insert(r.begin(), static_cast<char>('0' + static_cast<int>(v % 10))); v /= 10; } while (v);
  return r;
}

}  // namespace

Status Model::Parse() {
  Checker c{source};
  // ---- structure (rules S1-S8): the same walk as formats/reader.py
  Status s = check_file_structure(base_, size_, source);
  if (!s.ok()) return s;
  flatbuffers::Verifier::Options vopts;
  vopts.max_depth = 32;
  vopts.max_tables = 0xffffffffu;  // the walk above bounds the work by the file size
  flatbuffers::Verifier verifier(base_, size_, vopts);
  if (!fb::VerifyModelBuffer(verifier))
    return c.fail("FlatBuffers verification failed (truncated or corrupted file)");
  const fb::Model* model = fb::GetModel(base_);
  const fb::Graph* g = model->graph();
  if (!g) return c.fail("model has no graph");
  const auto* fbufs = model->buffers();
  size_t nbuf = fbufs ? fbufs->size() : 0;
  if (nbuf && fbufs->Get(0)->data() && fbufs->Get(0)->data()->size())
    return c.fail("buffer 0 must be empty, has " + std::to_string(fbufs->Get(0)->data()->size()) + " bytes");
  const auto* ftensors = g->tensors();
  size_t nt = ftensors ? ftensors->size() : 0;
  if (nt > kMaxTensors) return c.fail("too many tensors (" + std::to_string(nt) + ", at most 2^24)");

  // ---- tensors (rules T1-T7)
  tensors.resize(nt);
  std::unordered_set<std::string> names;
  std::map<std::array<uint64_t, 4>, void*> decoded;  // compressed data -> its dense copy
  DecodeBudget decode_budget{size_, kDecodeRatio * size_};  // rule C7
  for (size_t i = 0; i < nt; ++i) {
    const fb::Tensor* t = ftensors->Get(static_cast<flatbuffers::uoffset_t>(i));
    TensorInfo& ti = tensors[i];
    ti.name = str(t->name());
    std::string where = "tensor " + std::to_string(i) + " (" + quoted(t->name()) + ")";
    if (ti.name.empty()) return c.fail("tensor " + std::to_string(i) + " has no name");
    if (!names.insert(ti.name).second) return c.fail("tensor name '" + ti.name + "' is used twice");
    int dt = static_cast<int>(t->dtype());
    if (dt < 0 || dt > static_cast<int>(fb::DType_MAX))
      return c.fail(where + " has unknown dtype code " + std::to_string(dt));
    ti.dtype = static_cast<DType>(dt);
    std::string problem = read_dims(t->shape(), &ti.dims, &ti.symbols);
    if (!problem.empty()) return c.fail(where + ": " + problem);
    size_t rank = ti.dims.size();
    bool symbolic = false;
    for (int64_t d : ti.dims) symbolic = symbolic || d < 0;
    uint32_t b = t->buffer();
    if (b >= nbuf && b != 0)
      return c.fail(where + " refers to buffer " + std::to_string(b) + ", but the file has " + std::to_string(nbuf));
    if (b != 0) {
      const fb::Buffer* buf = fbufs->Get(b);
      if (symbolic || !t->shape()) return c.fail(where + ": a constant tensor needs a fully known shape");
      size_t esize = dtype_size(ti.dtype);
      unsigned __int128 need = num_elements(ti.dims) * esize;
      size_t have = (buf && buf->data()) ? buf->data()->size() : 0;
      if (need != have)
        return c.fail(where + " has " + std::to_string(have) + " bytes of data, expected " + u128(need) + " for " +
                      dtype_name(ti.dtype) + shape_text(ti.dims, ti.symbols));
      ti.data = have ? buf->data()->data() : base_;  // empty tensor: any non-null pointer
      ti.data_size = have;
      if (have && reinterpret_cast<uintptr_t>(ti.data) % esize != 0)
        return c.fail(where + ": buffer " + std::to_string(b) + " data is not aligned to its element size");
    }
    if (const fb::CompressedData* cd = t->compressed()) {  // format 1.1: expanded once, here
      if (b != 0)
        return c.fail(where + ": a compressed tensor must have buffer 0, has buffer " + std::to_string(b));
      if (symbolic || !t->shape()) return c.fail(where + ": a constant tensor needs a fully known shape");
      // tensors with the same compressed data (kind, buffers, index bits), dtype and size
      // share one dense copy, as tensors sharing a buffer share its bytes
      uint64_t numel = static_cast<uint64_t>(num_elements(ti.dims));
      bool sparse = cd->kind() == fb::StorageKind_SPARSE_BITMASK;
      std::array<uint64_t, 4> key = {
          (static_cast<uint64_t>(static_cast<uint8_t>(cd->kind())) << 16) |
              (static_cast<uint64_t>(sparse ? 0 : cd->index_bits()) << 8) | static_cast<uint64_t>(ti.dtype),
          cd->values(), sparse ? cd->mask() : cd->palette(), numel};
      void*& dense = decoded[key];
      if (!dense) {
        DenseCopy copy;
        s = decode_compressed(*cd, fbufs, ti.dtype, numel, source + ": " + where, &copy, &decode_budget);
        if (!s.ok()) return s;
        decoded_.push_back(copy.data);
        dense = copy.data;
        for (uint32_t index : {cd->values(), sparse ? cd->mask() : cd->palette()}) {
          const fb::Buffer* cb = mapping_ && index < nbuf ? fbufs->Get(index) : nullptr;  // decode checked it
          if (!cb || !cb->data()) continue;
          ReleaseCompressedPages(cb->data()->data(), cb->data()->size());
          compressed_spans_.emplace_back(cb->data()->data(), cb->data()->size());
        }
      }
      ti.data = static_cast<const uint8_t*>(dense);
      ti.data_size = static_cast<size_t>(numel * dtype_size(ti.dtype));
    }
    if (const fb::Quantization* q = t->quantization()) {
      size_t ns = q->scales() ? q->scales()->size() : 0;
      size_t nz = q->zero_points() ? q->zero_points()->size() : 0;
      int axis = q->axis();
      if (ns == 0) return c.fail(where + ": quantization has no scales");
      if (nz != 0 && nz != ns)
        return c.fail(where + ": quantization has " + std::to_string(ns) + " scales but " + std::to_string(nz) +
                      " zero points");
      if (axis == -1) {
        if (ns != 1) return c.fail(where + ": per-tensor quantization has " + std::to_string(ns) + " scales");
      } else {
        if (!t->shape()) return c.fail(where + ": per-axis quantization needs a shape");
        if (axis < 0 || static_cast<size_t>(axis) >= rank)
          return c.fail(where + ": quantization axis " + std::to_string(axis) + " is out of range for rank " +
                        std::to_string(rank));
        if (ti.dims[axis] >= 0 && static_cast<size_t>(ti.dims[axis]) != ns)
          return c.fail(where + ": per-axis quantization has " + std::to_string(ns) + " scales for axis " +
                        std::to_string(axis) + " of size " + std::to_string(ti.dims[axis]));
      }
      ti.has_quant = true;
      copy_vec(q->scales(), &ti.scales);
      if (nz) copy_vec(q->zero_points(), &ti.zero_points);
      ti.quant.count = static_cast<int>(ns);
      ti.quant.axis = ns > 1 ? axis : -1;
    }
  }
  for (auto& ti : tensors) {
    if (!ti.has_quant) continue;
    ti.quant.scales = ti.scales.data();
    ti.quant.zero_points = ti.zero_points.empty() ? nullptr : ti.zero_points.data();
  }

  // ---- graph inputs / outputs (rules G1, G2)
  std::vector<int> state(nt, 0);  // 0 undefined, 1 defined (input / constant / produced)
  for (size_t i = 0; i < nt; ++i)
    if (tensors[i].data) state[i] = 1;
  auto read_io = [&](const flatbuffers::Vector<int32_t>* v, const char* what, std::vector<int>* out) -> Status {
    if (!v) return Status::Ok();
    for (size_t k = 0; k < v->size(); ++k) {
      int idx = v->Get(static_cast<flatbuffers::uoffset_t>(k));
      if (idx < 0 || static_cast<size_t>(idx) >= nt)
        return c.fail(std::string("graph ") + what + " refers to tensor " + std::to_string(idx) + ", but the graph has " +
                      std::to_string(nt));
      out->push_back(idx);
    }
    return Status::Ok();
  };
  s = read_io(g->inputs(), "input", &inputs);
  if (!s.ok()) return s;
  s = read_io(g->outputs(), "output", &outputs);
  if (!s.ok()) return s;
  for (int idx : inputs) {
    if (tensors[idx].data)
      return c.fail("graph input tensor " + std::to_string(idx) + " ('" + tensors[idx].name + "') has constant data");
    if (state[idx]) return c.fail("graph input tensor " + std::to_string(idx) + " ('" + tensors[idx].name + "') is listed twice");
    state[idx] = 1;
  }

  // ---- operators (rules O1-O6)
  const auto* fops = g->operators();
  size_t nops = fops ? fops->size() : 0;
  ops.resize(nops);
  for (size_t k = 0; k < nops; ++k) {
    const fb::Operator* o = fops->Get(static_cast<flatbuffers::uoffset_t>(k));
    std::string where = "operator " + std::to_string(k);
    OpInfo& op = ops[k];
    op.name = str(o->name());
    uint32_t type = static_cast<uint32_t>(o->type());
    const OpSchema* schema = op_schema(type);
    if (!schema)
      return c.fail(where + " (" + quoted(o->name()) + ") has unknown op type " + std::to_string(type) +
                    " (this runtime knows " + std::to_string(num_op_types()) + " op types); upgrade the runtime");
    op.type = static_cast<OpType>(type);
    where += " (" + quoted(o->name()) + ", " + schema->name + ")";
    if (o->version() < 1)
      return c.fail(where + ": version " + std::to_string(o->version()) + " is invalid (versions start at 1)");
    if (o->version() > schema->version)
      return c.fail(where + " uses " + schema->name + " version " + std::to_string(o->version()) +
                    ", this runtime implements up to " + std::to_string(schema->version) + "; upgrade the runtime");
    int nin = o->inputs() ? static_cast<int>(o->inputs()->size()) : 0;
    int nout = o->outputs() ? static_cast<int>(o->outputs()->size()) : 0;
    auto arity = [](int lo, int hi) {
      return hi < 0 ? "at least " + std::to_string(lo)
                    : (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi));
    };
    if (nin < schema->min_inputs || (schema->max_inputs >= 0 && nin > schema->max_inputs))
      return c.fail(where + ": takes " + arity(schema->min_inputs, schema->max_inputs) + " input(s), got " + std::to_string(nin));
    if (nout < schema->min_outputs || (schema->max_outputs >= 0 && nout > schema->max_outputs))
      return c.fail(where + ": has " + arity(schema->min_outputs, schema->max_outputs) + " output(s), got " + std::to_string(nout));
    for (int i = 0; i < nin; ++i) {
      int idx = o->inputs()->Get(i);
      if (idx < -1 || idx >= static_cast<int>(nt))
        return c.fail(where + " input refers to tensor " + std::to_string(idx) + ", but the graph has " + std::to_string(nt));
      if (idx == -1 && i < schema->min_inputs)
        return c.fail(where + ": required input " + std::to_string(i) + " is absent");
      if (idx >= 0 && !state[idx])
        return c.fail(where + ": input " + std::to_string(i) + " reads tensor " + std::to_string(idx) + " ('" +
                      tensors[idx].name + "') before anything defines it (operators must be in topological "
                      "order; a cycle or a missing producer)");
      op.inputs.push_back(idx);
    }
    for (int i = 0; i < nout; ++i) {
      int idx = o->outputs()->Get(i);
      if (idx < -1 || idx >= static_cast<int>(nt))
        return c.fail(where + " output refers to tensor " + std::to_string(idx) + ", but the graph has " + std::to_string(nt));
      if (idx == -1 && i < schema->min_outputs)
        return c.fail(where + ": required output " + std::to_string(i) + " is absent");
      if (idx >= 0 && state[idx])
        return c.fail(where + ": output " + std::to_string(i) + " writes tensor " + std::to_string(idx) + " ('" +
                      tensors[idx].name + "'), which is already defined (a constant, graph input or another "
                      "operator's output)");
      if (idx >= 0) state[idx] = 1;
      op.outputs.push_back(idx);
    }
    if (const auto* attrs = o->attributes()) {
      for (size_t a = 0; a < attrs->size(); ++a) {
        AttrValue v;
        s = read_attr(attrs->Get(static_cast<flatbuffers::uoffset_t>(a)), c, where, nt, &v);
        if (!s.ok()) return s;
        for (const auto& prev : op.attrs.values)
          if (prev.name == v.name) return c.fail(where + ": attribute '" + v.name + "' appears twice");
        const AttrDecl* decl = schema->find(v.name);
        if (decl && !attr_kind_compatible(decl->kind, v.kind, v))
          return c.fail(where + ": attribute '" + v.name + "' must be " + kind_name(decl->kind));
        if (v.kind == AttrValue::Kind::Tensor) {
          const TensorInfo& tt = tensors[v.tensor];
          if (!tt.data)
            return c.fail(where + ": attribute '" + v.name + "' refers to tensor " + std::to_string(v.tensor) +
                          ", which has no constant data");
          v.tensor_data = tt.data;
          v.tensor_dtype = tt.dtype;
          v.tensor_numel = static_cast<int64_t>(tt.data_size / std::max<size_t>(1, dtype_size(tt.dtype)));
        }
        op.attrs.values.push_back(std::move(v));
      }
    }
    // Absent attributes: required ones are an error, declared defaults are
    // filled in (so kernels see the registry's defaults).
    for (const AttrDecl& decl : schema->attrs) {
      if (op.attrs.find(decl.name.c_str())) continue;
      if (decl.presence == AttrDecl::kRequired)
        return c.fail(where + ": required attribute '" + decl.name + "' is missing");
      if (decl.presence == AttrDecl::kDefault) op.attrs.values.push_back(decl.def);
    }
  }
  if (outputs.empty()) return c.fail("graph has no outputs");
  for (size_t k = 0; k < outputs.size(); ++k)
    if (!state[outputs[k]])
      return c.fail("graph output " + std::to_string(k) + " ('" + tensors[outputs[k]].name +
                    "') is not produced by any operator");

  // ---- signature (rule G3) and test vectors (rule V1)
  if (const fb::Signature* sig = model->signature()) {
    s = CheckSignature(sig->inputs(), inputs, "input");
    if (!s.ok()) return s;
    s = CheckSignature(sig->outputs(), outputs, "output");
    if (!s.ok()) return s;
    auto layouts = [](const flatbuffers::Vector<flatbuffers::Offset<fb::SignatureTensor>>* v, size_t n) {
      std::vector<std::string> r(n);
      for (size_t k = 0; v && k < v->size() && k < n; ++k) {
        const fb::SignatureTensor* st = v->Get(static_cast<flatbuffers::uoffset_t>(k));
        if (st && st->layout()) r[k] = st->layout()->str();
      }
      return r;
    };
    input_layouts = layouts(sig->inputs(), inputs.size());
    output_layouts = layouts(sig->outputs(), outputs.size());
    if (const fb::Preprocessing* p = sig->preprocessing()) {
      if (p->mean()) pre_mean.assign(p->mean()->begin(), p->mean()->end());
      if (p->scale()) pre_scale.assign(p->scale()->begin(), p->scale()->end());
      if (p->channel_order()) channel_order = p->channel_order()->str();
    }
  }
  input_layouts.resize(inputs.size());
  output_layouts.resize(outputs.size());
  if (const auto* tvs = model->test_vectors()) {
    for (size_t i = 0; i < tvs->size(); ++i) {
      const fb::TestVector* tv = tvs->Get(static_cast<flatbuffers::uoffset_t>(i));
      s = CheckNamedArrays(tv->inputs(), "test vector " + std::to_string(i) + " input");
      if (!s.ok()) return s;
      s = CheckNamedArrays(tv->outputs(), "test vector " + std::to_string(i) + " output");
      if (!s.ok()) return s;
    }
  }
  WidenHalfWeights();

  if (const fb::Metadata* md = model->metadata()) {
    metadata["producer"] = str(md->producer());
    metadata["converter_version"] = str(md->converter_version());
    metadata["source_framework"] = str(md->source_framework());
    metadata["source_sha256"] = str(md->source_sha256());
    metadata["min_runtime_version"] = str(md->min_runtime_version());
    // the requantization rule of int8 ops (docs/quantization.md section 2)
    for (size_t i = 0; md->extra() && i < md->extra()->size(); ++i) {
      const fb::KeyValue* kv = md->extra()->Get(static_cast<flatbuffers::uoffset_t>(i));
      if (str(kv->key()) == "quantization.fp16_compute") {  // docs/quantization.md "fp16 compute"
        std::string v = str(kv->value());
        if (v != "allow" && v != "float32")
          return Checker{source}.fail("metadata quantization.fp16_compute must be allow or float32, got '" + v + "'");
        metadata["quantization.fp16_compute"] = v;
        fp16_compute = v == "allow";
        continue;
      }
      if (str(kv->key()) != "quantization.requantize") continue;
      std::string v = str(kv->value());
      if (v != "fixed_point" && v != "float32")
        return Checker{source}.fail("metadata quantization.requantize must be fixed_point or float32, got '" + v +
                                    "'");
      metadata["quantization.requantize"] = v;
      requantize_float32 = v == "float32";
    }
  }
  return Status::Ok();
}

// Rule G3: an empty list, or one entry per graph input (output), in order,
// with the tensor's name, dtype and shape (same rank; each dim the same size
// or the same symbol).
Status Model::CheckSignature(const void* list, const std::vector<int>& io, const char* what) const {
  Checker c{source};
  const auto* v = static_cast<const flatbuffers::Vector<flatbuffers::Offset<fb::SignatureTensor>>*>(list);
  size_t n = v ? v->size() : 0;
  if (n == 0) return Status::Ok();
  if (n != io.size())
    return c.fail(std::string("signature lists ") + std::to_string(n) + " " + what + "(s), but the graph has " +
                  std::to_string(io.size()));
  for (size_t k = 0; k < n; ++k) {
    const fb::SignatureTensor* st = v->Get(static_cast<flatbuffers::uoffset_t>(k));
    std::string name = str(st->name());
    std::string where = std::string("signature ") + what + " " + std::to_string(k) + " ('" + name + "')";
    int dt = static_cast<int>(st->dtype());
    if (dt < 0 || dt > static_cast<int>(fb::DType_MAX))
      return c.fail(where + " has unknown dtype code " + std::to_string(dt));
    std::vector<int64_t> dims;
    std::vector<std::string> symbols;
    std::string problem = read_dims(st->shape(), &dims, &symbols);
    if (!problem.empty()) return c.fail(where + ": " + problem);
    const TensorInfo& t = tensors[io[k]];
    if (name != t.name)
      return c.fail(where + " does not match graph " + what + " " + std::to_string(k) + " ('" + t.name + "')");
    if (static_cast<DType>(dt) != t.dtype)
      return c.fail(where + " is " + dtype_name(static_cast<DType>(dt)) + " but the graph's tensor is " +
                    dtype_name(t.dtype));
    if (dims != t.dims || symbols != t.symbols)
      return c.fail(where + " has shape " + shape_text(dims, symbols) + " but the graph's tensor has " +
                    shape_text(t.dims, t.symbols));
  }
  return Status::Ok();
}

// Rule V1: each embedded array has a unique name in its list, a known dtype,
// a shape within the shape rules and exactly prod(shape) * itemsize bytes.
Status Model::CheckNamedArrays(const void* list, const std::string& what) const {
  Checker c{source};
  const auto* v = static_cast<const flatbuffers::Vector<flatbuffers::Offset<fb::NamedArray>>*>(list);
  std::unordered_set<std::string> seen;
  for (size_t k = 0; v && k < v->size(); ++k) {
    const fb::NamedArray* a = v->Get(static_cast<flatbuffers::uoffset_t>(k));
    std::string name = str(a->name());
    std::string where = what + " " + std::to_string(k) + " ('" + name + "')";
    int dt = static_cast<int>(a->dtype());
    if (dt < 0 || dt > static_cast<int>(fb::DType_MAX))
      return c.fail(where + " has unknown dtype code " + std::to_string(dt));
    std::vector<int64_t> dims;
    copy_vec(a->shape(), &dims);
    std::string problem = shape_problem(dims, nullptr);
    if (!problem.empty()) return c.fail(where + ": " + problem);
    unsigned __int128 need = num_elements(dims) * dtype_size(static_cast<DType>(dt));
    size_t have = a->data() ? a->data()->size() : 0;
    if (need != have)
      return c.fail(where + " has " + std::to_string(have) + " bytes of data, expected " + u128(need));
    if (!seen.insert(name).second) return c.fail(what + " " + std::to_string(k) + " repeats the name '" + name + "'");
  }
  return Status::Ok();
}

}  // namespace mobrt
