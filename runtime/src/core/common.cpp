// common.cpp: small shared pieces of the kernel contract: dtype helpers,
// attribute getters, fused activation parsing, CPU detection, the kernel
// registry and the instruction-set preference order.
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/kernel.h"
#include "core/thread_pool.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <cpuid.h>
#define MOBRT_X86 1
#endif

namespace mobrt {

size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    case DType::I8: case DType::U8: case DType::BOOL: return 1;
    case DType::I64: return 8;
    default: return 0;
  }
}

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::I8: return "int8";
    case DType::U8: return "uint8";
    case DType::I16: return "int16";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
    case DType::BOOL: return "bool";
    case DType::Any: return "any";
  }
  return "?";
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::AVX2: return "avx2";
    case Isa::AVX512: return "avx512";
    case Isa::NEON: return "neon";
    default: return "?";
  }
}

// ---- attributes ------------------------------------------------------------

const AttrValue* Attrs::find(const char* name) const {
  for (const auto& v : values)
    if (v.name == name) return &v;
  return nullptr;
}

int64_t Attrs::get_int(const char* name, int64_t def) const {
  const AttrValue* v = find(name);
  if (!v) return def;
  if (v->kind == AttrValue::Kind::Float) return static_cast<int64_t>(v->f);
  return v->i;
}

float Attrs::get_float(const char* name, float def) const {
  const AttrValue* v = find(name);
  if (!v) return def;
  if (v->kind == AttrValue::Kind::Int) return static_cast<float>(v->i);
  return v->f;
}

std::string Attrs::get_string(const char* name, const std::string& def) const {
  const AttrValue* v = find(name);
  return v ? v->s : def;
}

std::vector<int64_t> Attrs::get_ints(const char* name) const {
  const AttrValue* v = find(name);
  if (!v) return {};
  if (v->kind == AttrValue::Kind::Floats) {
    std::vector<int64_t> r;
    for (float f : v->floats) r.push_back(static_cast<int64_t>(f));
    return r;
  }
  return v->ints;
}

std::vector<float> Attrs::get_floats(const char* name) const {
  const AttrValue* v = find(name);
  if (!v) return {};
  if (v->kind == AttrValue::Kind::Ints) {
    std::vector<float> r;
    for (int64_t i : v->ints) r.push_back(static_cast<float>(i));
    return r;
  }
  return v->floats;
}

Status Activation::parse(const Attrs& attrs, Activation* out) {
  *out = Activation();
  std::string name = attrs.get_string("activation");
  std::vector<float> p = attrs.get_floats("activation_params");
  struct Entry { const char* name; Kind kind; size_t nparams; };
  static const Entry kTable[] = {
      {"", Kind::None, 0},          {"Relu", Kind::Relu, 0},
      {"Clip", Kind::Clip, 2},      {"LeakyRelu", Kind::LeakyRelu, 1},
      {"HardSigmoid", Kind::HardSigmoid, 2}, {"HardSwish", Kind::HardSwish, 0},
      {"Sigmoid", Kind::Sigmoid, 0}, {"Tanh", Kind::Tanh, 0},
  };
  for (const Entry& e : kTable) {
    if (name != e.name) continue;
    if (p.size() != e.nparams)
      return Status::Error(StatusCode::kInvalidModel,
                           "fused activation '" + name + "' takes " + std::to_string(e.nparams) +
                               " activation_params, got " + std::to_string(p.size()));
    out->kind = e.kind;
    if (e.nparams > 0) out->a = p[0];
    if (e.nparams > 1) out->b = p[1];
    return Status::Ok();
  }
  return Status::Error(StatusCode::kUnsupported,
                       "unknown fused activation '" + name +
                           "' (known: Relu, Clip, LeakyRelu, HardSigmoid, HardSwish, Sigmoid, Tanh)");
}

// ---- kernel context ----------------------------------------------------------

int KernelContext::num_threads() const { return pool ? pool->num_threads() : 1; }

void KernelContext::parallel_for(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn) const {
  if (n <= 0) return;
  if (!pool || pool->num_threads() <= 1 || n == 1) {
    fn(0, n, 0);
    return;
  }
  pool->parallel_for(n, fn);
}

Status KernelContext::error(const std::string& rule) const {
  return Status::Error(StatusCode::kShapeError, std::string("op '") + op_name + "' (" +
                                                    ::mobconv::formats::fb::EnumNameOpType(op_type) +
                                                    "): " + rule);
}

// ---- CPU detection -------------------------------------------------------------

static CpuFeatures detect_cpu() {
  CpuFeatures f;
#if defined(MOBRT_X86)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    uint64_t xcr0 = 0;
    if (osxsave) {
      unsigned lo, hi;
      __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      xcr0 = (static_cast<uint64_t>(hi) << 32) | lo;
    }
    bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
    unsigned a7 = 0, b7 = 0, c7 = 0, d7 = 0;
    if (__get_cpuid_count(7, 0, &a7, &b7, &c7, &d7)) {
      bool avx2 = (b7 >> 5) & 1, avx512f = (b7 >> 16) & 1;
      f.avx2_fma = avx && avx2 && fma && ymm;
      f.avx512f = f.avx2_fma && avx512f && zmm;
    }
  }
#elif defined(__aarch64__)
  f.neon = true;
#endif
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect_cpu();
  return f;
}

std::vector<Isa> isa_preference(Isa max_isa) {
  const CpuFeatures& f = cpu_features();
  if (max_isa == Isa::Count) {
    const char* env = std::getenv("MOBRT_MAX_ISA");
    if (env && *env) {
      for (int i = 0; i < static_cast<int>(Isa::Count); ++i)
        if (std::strcmp(env, isa_name(static_cast<Isa>(i))) == 0) max_isa = static_cast<Isa>(i);
    }
  }
  struct Option { Isa isa; bool available; int rank; };
  // rank: how "high" an isa is for the cap (scalar < avx2 < avx512; neon alone).
  const Option options[] = {
      {Isa::AVX512, f.avx512f, 2}, {Isa::AVX2, f.avx2_fma, 1}, {Isa::NEON, f.neon, 1}};
  auto rank_of = [](Isa isa) { return isa == Isa::AVX512 ? 2 : (isa == Isa::Scalar ? 0 : 1); };
  std::vector<Isa> out;
  for (const Option& o : options) {
    if (!o.available) continue;
    if (max_isa != Isa::Count) {
      if (rank_of(max_isa) < o.rank) continue;
      if (max_isa == Isa::NEON && o.isa != Isa::NEON) continue;
      if ((max_isa == Isa::AVX2 || max_isa == Isa::AVX512) && o.isa == Isa::NEON) continue;
    }
    out.push_back(o.isa);
  }
  out.push_back(Isa::Scalar);
  return out;
}

// ---- registry ---------------------------------------------------------------------

void KernelRegistry::add(OpType op, DType dtype, Isa isa, const Kernel& kernel) {
  for (auto& e : entries_) {
    if (e.op == op && e.dtype == dtype && e.isa == isa) {
      e.kernel = kernel;  // a later registration replaces an earlier one
      return;
    }
  }
  entries_.push_back({op, dtype, isa, kernel});
}

const Kernel* KernelRegistry::find(OpType op, DType dtype, Isa isa) const {
  const Kernel* any = nullptr;
  for (const auto& e : entries_) {
    if (e.op != op || e.isa != isa) continue;
    if (e.dtype == dtype) return &e.kernel;
    if (e.dtype == DType::Any) any = &e.kernel;
  }
  return any;
}

// Generated by CMake from the register_*.cpp files present (kernel_sets.gen.cpp).
struct KernelSet { const char* name; Isa isa; void (*register_fn)(KernelRegistry&); };
extern const KernelSet kKernelSets[];
extern const int kNumKernelSets;

const KernelRegistry& kernel_registry() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry();
    register_reference_kernels(*r);
    const CpuFeatures& f = cpu_features();
    for (int i = 0; i < kNumKernelSets; ++i) {
      const KernelSet& set = kKernelSets[i];
      bool ok = (set.isa == Isa::AVX2 && f.avx2_fma) || (set.isa == Isa::AVX512 && f.avx512f) ||
                (set.isa == Isa::NEON && f.neon) || set.isa == Isa::Scalar;
      if (ok) set.register_fn(*r);
    }
    return r;
  }();
  return *registry;
}

}  // namespace mobrt
