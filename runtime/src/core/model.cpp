// model.cpp: loading a .mob file and never trusting it.
//
// Steps: (1) get the bytes: mmap the file read-only, or use/copy a caller
// buffer so that the base is 64-byte aligned (weights are then aligned for
// SIMD loads in place); (2) FlatBuffers Verifier (bounds of every offset,
// vector, string; file identifier "MOB1"); (3) semantic validation, which
// also extracts the graph into plain structs: version, tensor dtypes/ranks,
// buffer indices and sizes vs shape x dtype, quantization lengths, operator
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

#include "core/op_schema.h"

namespace mobrt {

namespace fb = ::mobconv::formats::fb;

static constexpr uint32_t kFormatMajor = 1;
static constexpr size_t kAlign = 64;

Model::~Model() {
  if (mapping_) munmap(mapping_, mapping_size_);
  std::free(owned_);
  for (void* p : widened_) std::free(p);
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
  *out = std::move(m);
  return Status::Ok();
}

Status Model::LoadBuffer(const void* data, size_t size, bool copy, std::unique_ptr<Model>* out) {
  std::unique_ptr<Model> m(new Model());
  m->source = "<buffer>";
  if (!data || size == 0)
    return Status::Error(StatusCode::kInvalidArgument, "<buffer>: data is NULL or size is 0");
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
  if (!a) return c.fail(where + ": attribute entry is null");
  out->name = str(a->name());
  if (out->name.empty()) return c.fail(where + ": attribute without a name");
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
        return c.fail(at + " refers to tensor " + std::to_string(a->tensor()) + ", out of range [0, " +
                      std::to_string(num_tensors) + ")");
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

}  // namespace

Status Model::Parse() {
  Checker c{source};
  if (size_ < 8) return c.fail("file is too small (" + std::to_string(size_) + " bytes) to be a .mob model");
  if (size_ >= FLATBUFFERS_MAX_BUFFER_SIZE) return c.fail("file is larger than 2 GiB");
  if (!fb::ModelBufferHasIdentifier(base_))
    return c.fail("not a .mob model (file identifier is not \"MOB1\")");
  flatbuffers::Verifier::Options vopts;
  vopts.max_depth = 32;
  vopts.max_tables = 4000000;
  flatbuffers::Verifier verifier(base_, size_, vopts);
  if (!fb::VerifyModelBuffer(verifier))
    return c.fail("FlatBuffers verification failed (truncated or corrupted file)");
  const fb::Model* model = fb::GetModel(base_);
  if (model->version_major() > kFormatMajor || model->version_major() < 1)
    return c.fail("model format version " + std::to_string(model->version_major()) + "." +
                  std::to_string(model->version_minor()) + " is not supported (this runtime reads 1.x)");
  const fb::Graph* g = model->graph();
  if (!g) return c.fail("model has no graph");
  const auto* fbufs = model->buffers();
  size_t nbuf = fbufs ? fbufs->size() : 0;
  const auto* ftensors = g->tensors();
  size_t nt = ftensors ? ftensors->size() : 0;
  if (nt > (1u << 24)) return c.fail("too many tensors (" + std::to_string(nt) + ")");

  // ---- tensors
  tensors.resize(nt);
  for (size_t i = 0; i < nt; ++i) {
    const fb::Tensor* t = ftensors->Get(static_cast<flatbuffers::uoffset_t>(i));
    std::string where = "tensor " + std::to_string(i);
    if (!t) return c.fail(where + " is null");
    TensorInfo& ti = tensors[i];
    ti.name = str(t->name());
    where += " (" + quoted(t->name()) + ")";
    int dt = static_cast<int>(t->dtype());
    if (dt < 0 || dt > static_cast<int>(fb::DType_MAX))
      return c.fail(where + ": unknown dtype " + std::to_string(dt));
    ti.dtype = static_cast<DType>(dt);
    size_t rank = t->shape() ? t->shape()->size() : 0;
    if (rank > static_cast<size_t>(kMaxRank))
      return c.fail(where + ": rank " + std::to_string(rank) + " exceeds the maximum " + std::to_string(kMaxRank));
    bool symbolic = false;
    for (size_t d = 0; d < rank; ++d) {
      const fb::Dim* dim = t->shape()->Get(static_cast<flatbuffers::uoffset_t>(d));
      if (!dim) return c.fail(where + ": dim " + std::to_string(d) + " is null");
      if (dim->symbol() && dim->symbol()->size() > 0) {
        ti.dims.push_back(-1);
        ti.symbols.push_back(str(dim->symbol()));
        symbolic = true;
      } else {
        if (dim->value() < 0 || dim->value() > (int64_t(1) << 40))
          return c.fail(where + ": dim " + std::to_string(d) + " has invalid size " + std::to_string(dim->value()));
        ti.dims.push_back(dim->value());
        ti.symbols.emplace_back();
      }
    }
    {
      unsigned __int128 elems = 1;
      for (int64_t d : ti.dims)
        if (d > 0) elems *= static_cast<uint64_t>(d);
      if (elems > (static_cast<unsigned __int128>(1) << 48))
        return c.fail(where + ": declared shape has more than 2^48 elements");
    }
    uint32_t b = t->buffer();
    if (b >= nbuf && b != 0)
      return c.fail(where + ": buffer index " + std::to_string(b) + " out of range [0, " + std::to_string(nbuf) + ")");
    if (b != 0) {
      const fb::Buffer* buf = fbufs->Get(b);
      if (symbolic) return c.fail(where + ": a constant tensor must have a fixed shape");
      size_t esize = dtype_size(ti.dtype);
      unsigned __int128 need = esize;
      for (int64_t d : ti.dims) need *= static_cast<uint64_t>(d);
      size_t have = (buf && buf->data()) ? buf->data()->size() : 0;
      if (need != have) {
        std::string shape = "(";
        for (size_t d = 0; d < ti.dims.size(); ++d) shape += (d ? "," : "") + std::to_string(ti.dims[d]);
        shape += ti.dims.size() == 1 ? ",)" : ")";
        return c.fail(where + ": buffer " + std::to_string(b) + " has " + std::to_string(have) +
                      " bytes, but shape " + shape + " x " + dtype_name(ti.dtype) + " needs " +
                      std::to_string(static_cast<uint64_t>(need > (unsigned __int128)UINT64_MAX ? UINT64_MAX : (uint64_t)need)));
      }
      ti.data = have ? buf->data()->data() : base_;  // empty tensor: any non-null pointer
      ti.data_size = have;
      if (have && reinterpret_cast<uintptr_t>(ti.data) % esize != 0)
        return c.fail(where + ": buffer " + std::to_string(b) + " data is not aligned to its element size");
    }
    if (const fb::Quantization* q = t->quantization()) {
      size_t ns = q->scales() ? q->scales()->size() : 0;
      size_t nz = q->zero_points() ? q->zero_points()->size() : 0;
      if (ns == 0) return c.fail(where + ": quantization has no scales");
      if (nz != 0 && nz != ns)
        return c.fail(where + ": quantization has " + std::to_string(ns) + " scales but " +
                      std::to_string(nz) + " zero points");
      if (ns > 1) {
        int axis = q->axis();
        if (axis < 0 || static_cast<size_t>(axis) >= rank)
          return c.fail(where + ": per-axis quantization axis " + std::to_string(axis) +
                        " out of range for rank " + std::to_string(rank));
        if (ti.dims[axis] >= 0 && static_cast<size_t>(ti.dims[axis]) != ns)
          return c.fail(where + ": per-axis quantization has " + std::to_string(ns) + " scales but dim " +
                        std::to_string(axis) + " is " + std::to_string(ti.dims[axis]));
      }
      ti.has_quant = true;
      copy_vec(q->scales(), &ti.scales);
      if (nz) copy_vec(q->zero_points(), &ti.zero_points);
      ti.quant.count = static_cast<int>(ns);
      ti.quant.axis = ns > 1 ? q->axis() : -1;
    }
  }
  for (auto& ti : tensors) {
    if (!ti.has_quant) continue;
    ti.quant.scales = ti.scales.data();
    ti.quant.zero_points = ti.zero_points.empty() ? nullptr : ti.zero_points.data();
  }

  // ---- graph inputs / outputs
  std::vector<int> state(nt, 0);  // 0 undefined, 1 defined (input / constant / produced)
  for (size_t i = 0; i < nt; ++i)
    if (tensors[i].data) state[i] = 1;
  auto read_io = [&](const flatbuffers::Vector<int32_t>* v, const char* what, std::vector<int>* out) -> Status {
    if (!v) return Status::Ok();
    for (size_t k = 0; k < v->size(); ++k) {
      int idx = v->Get(static_cast<flatbuffers::uoffset_t>(k));
      if (idx < 0 || static_cast<size_t>(idx) >= nt)
        return c.fail(std::string("graph ") + what + " " + std::to_string(k) + " refers to tensor " +
                      std::to_string(idx) + ", out of range [0, " + std::to_string(nt) + ")");
      out->push_back(idx);
    }
    return Status::Ok();
  };
  Status s = read_io(g->inputs(), "input", &inputs);
  if (!s.ok()) return s;
  s = read_io(g->outputs(), "output", &outputs);
  if (!s.ok()) return s;
  if (outputs.empty()) return c.fail("graph has no outputs");
  for (int idx : inputs) {
    if (tensors[idx].data)
      return c.fail("graph input tensor " + std::to_string(idx) + " ('" + tensors[idx].name + "') has constant data");
    if (state[idx]) return c.fail("graph input tensor " + std::to_string(idx) + " ('" + tensors[idx].name + "') is listed twice");
    state[idx] = 1;
  }

  // ---- operators
  const auto* fops = g->operators();
  size_t nops = fops ? fops->size() : 0;
  ops.resize(nops);
  for (size_t k = 0; k < nops; ++k) {
    const fb::Operator* o = fops->Get(static_cast<flatbuffers::uoffset_t>(k));
    std::string where = "operator " + std::to_string(k);
    if (!o) return c.fail(where + " is null");
    OpInfo& op = ops[k];
    op.name = str(o->name());
    uint32_t type = static_cast<uint32_t>(o->type());
    const OpSchema* schema = op_schema(type);
    if (!schema)
      return c.fail(where + " (" + quoted(o->name()) + "): unknown op type " + std::to_string(type) +
                    " (this runtime knows " + std::to_string(num_op_types()) + " op types; upgrade the runtime)");
    op.type = static_cast<OpType>(type);
    where += " (" + quoted(o->name()) + ", " + schema->name + ")";
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
        return c.fail(where + ": input " + std::to_string(i) + " refers to tensor " + std::to_string(idx) +
                      ", out of range [0, " + std::to_string(nt) + ")");
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
        return c.fail(where + ": output " + std::to_string(i) + " refers to tensor " + std::to_string(idx) +
                      ", out of range [0, " + std::to_string(nt) + ")");
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
        for (const auto& prev : op.attrs.values)
          if (prev.name == v.name) return c.fail(where + ": attribute '" + v.name + "' appears twice");
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
  WidenHalfWeights();
  for (size_t k = 0; k < outputs.size(); ++k)
    if (!state[outputs[k]])
      return c.fail("graph output " + std::to_string(k) + " ('" + tensors[outputs[k]].name +
                    "') is not produced by any operator");

  if (const fb::Metadata* md = model->metadata()) {
    metadata["producer"] = str(md->producer());
    metadata["converter_version"] = str(md->converter_version());
    metadata["source_framework"] = str(md->source_framework());
    metadata["source_sha256"] = str(md->source_sha256());
    metadata["min_runtime_version"] = str(md->min_runtime_version());
  }
  return Status::Ok();
}

}  // namespace mobrt
