// common.cpp: small shared pieces of the kernel contract: dtype helpers,
// attribute getters, fused activation parsing, CPU detection, the kernel
// registry and the instruction-set preference order.
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

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

static const char* const kIsaNames[] = {"scalar", "avx2", "avx512", "neon", "any",
                                        "avx_vnni", "avx512_vnni", "neon_dot", "neon_fp16"};
static_assert(sizeof(kIsaNames) / sizeof(kIsaNames[0]) == static_cast<size_t>(Isa::Count), "one name per Isa");

const char* isa_name(Isa isa) {
  return static_cast<size_t>(isa) < static_cast<size_t>(Isa::Count) ? kIsaNames[static_cast<size_t>(isa)] : "?";
}

bool isa_from_name(const char* name, Isa* out) {
  if (!name) return false;
  for (size_t i = 0; i < static_cast<size_t>(Isa::Count); ++i)
    if (std::strcmp(name, kIsaNames[i]) == 0) {
      *out = static_cast<Isa>(i);
      return true;
    }
  return false;
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
// The runtime's only CPU detection: x86 cpuid (+ xgetbv: the OS must save the wider
// registers), aarch64 getauxval hardware capabilities.

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
      bool avx512bw = (b7 >> 30) & 1, avx512vl = (b7 >> 31) & 1, avx512vnni = (c7 >> 11) & 1;
      f.avx2_fma = avx && avx2 && fma && ymm;
      f.avx512f = f.avx2_fma && avx512f && zmm;
      f.avx512bw = f.avx512f && avx512bw && avx512vl;
      f.avx512vnni = f.avx512bw && avx512vnni;
      unsigned a71 = 0, b71 = 0, c71 = 0, d71 = 0;
      if (a7 >= 1 && __get_cpuid_count(7, 1, &a71, &b71, &c71, &d71)) f.avxvnni = f.avx2_fma && ((a71 >> 4) & 1);
    }
  }
#elif defined(__aarch64__)
  f.neon = true;
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  f.neon_dotprod = (hw >> 20) & 1;                      // HWCAP_ASIMDDP
  f.neon_fp16 = ((hw >> 9) & 1) && ((hw >> 10) & 1);    // HWCAP_FPHP, HWCAP_ASIMDHP
  f.neon_i8mm = (hw2 >> 13) & 1;                        // HWCAP2_I8MM
#elif defined(__APPLE__)
  f.neon_dotprod = f.neon_fp16 = true;  // every arm64 Apple CPU (A11 and later) has both
#endif
#endif
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect_cpu();
  return f;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::AVX2: return f.avx2_fma;
    case Isa::AVXVNNI: return f.avx2_fma && f.avxvnni;
    case Isa::AVX512: return f.avx512bw;
    case Isa::AVX512VNNI: return f.avx512vnni;
    case Isa::NEON: return f.neon;
    case Isa::NEONDOT: return f.neon && f.neon_dotprod;
    case Isa::NEONFP16: return f.neon && f.neon_dotprod && f.neon_fp16;
    default: return false;
  }
}

// The chains of kernel.h, best first.
static const Isa kX86Chain[] = {Isa::AVX512VNNI, Isa::AVX512, Isa::AVXVNNI, Isa::AVX2};
static const Isa kArmChain[] = {Isa::NEONFP16, Isa::NEONDOT, Isa::NEON};

std::vector<Isa> isa_preference(Isa max_isa) {
  if (max_isa == Isa::Any || max_isa == Isa::Count) {
    const char* env = std::getenv("MOBRT_MAX_ISA");
    Isa from_env;
    if (env && *env && isa_from_name(env, &from_env)) max_isa = from_env;
  }
  std::vector<Isa> out;
  for (const auto& chain : {std::vector<Isa>(std::begin(kX86Chain), std::end(kX86Chain)),
                            std::vector<Isa>(std::begin(kArmChain), std::end(kArmChain))}) {
    bool admitted = max_isa == Isa::Any || max_isa == Isa::Count;  // below the cap once it is passed
    bool in_chain = false;
    for (Isa isa : chain) in_chain = in_chain || isa == max_isa;
    if (!admitted && !in_chain) continue;  // a cap of the other architecture (or scalar): none of these
    for (Isa isa : chain) {
      if (isa == max_isa) admitted = true;
      if (admitted && isa_supported(isa)) out.push_back(isa);
    }
  }
  out.push_back(Isa::Scalar);
  return out;
}

// ---- registry ---------------------------------------------------------------------

KernelKey key_of(const TensorView* inputs, int num_inputs) {
  KernelKey k;
  if (num_inputs > 0 && inputs[0].present()) k.in0 = inputs[0].dtype;
  if (num_inputs > 1 && inputs[1].present()) k.in1 = inputs[1].dtype;
  return k;
}

void KernelRegistry::add(OpType op, KernelKey key, Isa isa, const Kernel& kernel) {
  for (auto& e : entries_) {
    if (e.op == op && e.key.in0 == key.in0 && e.key.in1 == key.in1 && e.isa == isa &&
        std::strcmp(e.kernel.name, kernel.name) == 0) {
      e.kernel = kernel;  // a later registration of the same kernel replaces the earlier one
      return;
    }
  }
  entries_.push_back({op, key, isa, kernel});
}

void KernelRegistry::add_first(OpType op, KernelKey key, Isa isa, const Kernel& kernel) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (e.op == op && e.key.in0 == key.in0 && e.key.in1 == key.in1 && e.isa == isa &&
        std::strcmp(e.kernel.name, kernel.name) == 0) {
      entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }
  entries_.insert(entries_.begin(), Entry{op, key, isa, kernel});
}

std::vector<const Kernel*> KernelRegistry::candidates(OpType op, KernelKey key, Isa isa) const {
  std::vector<const Kernel*> out;
  for (int rank = 3; rank >= 1; --rank)  // 3: {in0, in1}, 2: {in0, Any}, 1: {Any, Any}
    for (const auto& e : entries_) {
      if (e.op != op || e.isa != isa) continue;
      int r = 0;
      if (e.key.in0 == key.in0 && e.key.in1 == key.in1) r = 3;
      else if (e.key.in0 == key.in0 && e.key.in1 == DType::Any) r = 2;
      else if (e.key.in0 == DType::Any && e.key.in1 == DType::Any) r = 1;
      if (r == rank) out.push_back(&e.kernel);
    }
  return out;
}

const Kernel* KernelRegistry::find(OpType op, KernelKey key, Isa isa) const {
  std::vector<const Kernel*> c = candidates(op, key, isa);
  return c.empty() ? nullptr : c.front();
}

// Generated by CMake from the register_*.cpp files present (kernel_sets.gen.cpp).
struct KernelSet { const char* name; Isa isa; void (*register_fn)(KernelRegistry&); };
extern const KernelSet kKernelSets[];
extern const int kNumKernelSets;

const KernelRegistry& kernel_registry() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry();
    register_reference_kernels(*r);
    for (int i = 0; i < kNumKernelSets; ++i) {
      const KernelSet& set = kKernelSets[i];
      if (isa_supported(set.isa)) set.register_fn(*r);
    }
    return r;
  }();
  return *registry;
}

}  // namespace mobrt
