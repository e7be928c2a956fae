// kernel.h: the contract between the runtime core and every kernel.
//
// What: a kernel is a table entry (Kernel) registered under a key
// (op type, the dtypes it consumes, instruction set). The dtypes are those of
// input 0 (the activation) and input 1 (weights / second operand), so "int8
// weights with float activations" (F32, I8) and full int8 (I8, I8) are different
// keys; DType::Any is a wildcard. The interpreter picks, per
// operator, the best registered kernel the running CPU can execute and falls
// back to the scalar reference (Isa::Scalar), which exists for every op.
//
// Lifecycle of one operator's kernel inside one interpreter:
//   1. selection (interpreter creation): for isa in the CPU's preference order
//      (e.g. AVX512 > AVX2 > Scalar), the first entry whose `supports` returns
//      true (or is null) wins. `supports` sees attributes, dtypes and the
//      constant inputs (weights); activation shapes are not known yet.
//   2. prepare (once, interpreter creation): may pre-pack constant inputs
//      (GEMM panels, depthwise layout) into `*ctx.state`, freed by `release`.
//      Never repack per run.
//   3. scratch_bytes (after every shape inference: prepare/resize): temporary
//      bytes the run needs (im2col columns...). The core gives every op the
//      same scratch region (ops run one at a time), 64-byte aligned.
//   4. run (every invoke): reads ctx.inputs, writes ctx.outputs (already sized
//      and allocated by the core), may call ctx.parallel_for.
//
// Dispatch is a table built at run time from CPU detection (cpu_features());
// optimized kernel sets register themselves through one function per set
// (see runtime/KERNELS.md), no #if ladders in the core.
//
// This header is stable: optimized kernels are coded against it.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "activation.h"
#include "generated/mobconv_generated.h"

namespace mobrt {

using OpType = ::mobconv::formats::fb::OpType;

// Values match the schema's DType enum; Any is a registration wildcard.
enum class DType : uint8_t {
  F32 = 0, F16 = 1, BF16 = 2, I8 = 3, U8 = 4, I16 = 5, I32 = 6, I64 = 7, BOOL = 8,
  Any = 255,
};

size_t dtype_size(DType dt);      // bytes per element (0 for Any)
const char* dtype_name(DType dt); // "float32", "int64", ... (the IR names)

// Instruction sets a kernel can be written for. The values equal the C API's
// mobrt_isa (Any = MOBRT_ISA_ANY: no cap). Each architecture orders its sets in
// one chain, lowest first (a cap admits the sets at or below it):
//   x86:     scalar < avx2 < avx_vnni < avx512 < avx512_vnni
//   aarch64: scalar < neon < neon_dot < neon_fp16
// avx2 = AVX2 + FMA; avx_vnni = avx2 + AVX-VNNI (VEX vpdpbusd); avx512 = AVX-512 F
// + BW + VL (+ avx2); avx512_vnni = avx512 + AVX512-VNNI; neon = armv8.0 Advanced
// SIMD; neon_dot = neon + the armv8.2 dot product (sdot/udot); neon_fp16 =
// neon_dot's features + armv8.2 fp16 arithmetic. A kernel registered under a set
// is only run on a CPU that has every feature of that set.
enum class Isa : uint8_t {
  Scalar = 0, AVX2 = 1, AVX512 = 2, NEON = 3, Any = 4,
  AVXVNNI = 5, AVX512VNNI = 6, NEONDOT = 7, NEONFP16 = 8,
  Count = 9,
};
// "scalar", "avx2", "avx512", "neon", "any", "avx_vnni", "avx512_vnni", "neon_dot", "neon_fp16"
const char* isa_name(Isa isa);
// The set named `name` (isa_name's spelling); false for an unknown name.
bool isa_from_name(const char* name, Isa* out);

// What the running CPU (and OS) can execute; the single detection of the runtime.
struct CpuFeatures {
  bool avx2_fma = false;    // AVX2 + FMA3 (+ OS support for YMM state)
  bool avx512f = false;     // AVX-512F (+ OS support for ZMM/opmask state)
  bool avx512bw = false;    // AVX-512 BW and VL
  bool avx512vnni = false;  // AVX512_VNNI (vpdpbusd on zmm)
  bool avxvnni = false;     // AVX-VNNI (VEX-encoded vpdpbusd on ymm)
  bool neon = false;        // always true on aarch64
  bool neon_dotprod = false;  // FEAT_DotProd (HWCAP_ASIMDDP)
  bool neon_fp16 = false;     // FEAT_FP16 arithmetic (HWCAP_FPHP and HWCAP_ASIMDHP)
  bool neon_i8mm = false;     // FEAT_I8MM (HWCAP2_I8MM); reported, no kernel uses it yet
};
const CpuFeatures& cpu_features();  // detected once, cached
// Whether the running CPU has every feature of `isa` (Scalar: always).
bool isa_supported(Isa isa);

// Status codes; values equal the C API's mobrt_status.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,
  kInvalidModel = 2,
  kUnsupported = 3,
  kShapeError = 4,
  kOutOfMemory = 5,
  kIoError = 6,
  kNotReady = 7,
  kInternal = 8,
  // 9 is MOBRT_BUSY (raised by the C API only)
  kCancelled = 10,  // Interpreter::Cancel stopped an invoke
};

struct Status {
  StatusCode code = StatusCode::kOk;
  std::string message;
  bool ok() const { return code == StatusCode::kOk; }
  static Status Ok() { return {}; }
  static Status Error(StatusCode c, std::string msg) { return {c, std::move(msg)}; }
};

constexpr int kMaxRank = 8;

struct QuantParams {
  const float* scales = nullptr;      // `count` scales (1 = per tensor)
  const int64_t* zero_points = nullptr;  // `count` zero points, or null (all 0)
  int count = 0;
  int axis = -1;
};

// A tensor as a kernel sees it. Shapes are fully resolved (no symbols) when
// run() is called; element strides are row-major for every tensor the core
// allocates. `data` is null for an absent optional input (rank == -1).
struct TensorView {
  DType dtype = DType::F32;
  int rank = -1;                 // -1: absent optional input
  int64_t dims[kMaxRank] = {};
  int64_t strides[kMaxRank] = {};  // in elements
  void* data = nullptr;
  bool is_constant = false;      // weights / folded constants (read-only)
  const QuantParams* quant = nullptr;  // null when not quantized

  bool present() const { return rank >= 0; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  int64_t dim(int i) const { return dims[i < 0 ? i + rank : i]; }
  template <typename T> T* as() const { return static_cast<T*>(data); }
};

// One resolved attribute (copied out of the file at load time).
struct AttrValue {
  enum class Kind : uint8_t { Int, Float, String, Ints, Floats, Strings, Tensor };
  std::string name;
  Kind kind = Kind::Int;
  int64_t i = 0;
  float f = 0.f;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::vector<std::string> strings;
  int tensor = -1;  // graph tensor index (constant)
  // Tensor kind: the constant's data (in the model), dtype and element count.
  const void* tensor_data = nullptr;
  DType tensor_dtype = DType::F32;
  int64_t tensor_numel = 0;
};

// The attributes of one operator. Getters return the default when the
// attribute is absent; the verifier has already checked each present
// attribute's kind against the op's declaration.
class Attrs {
 public:
  const AttrValue* find(const char* name) const;
  bool has(const char* name) const { return find(name) != nullptr; }
  int64_t get_int(const char* name, int64_t def) const;
  float get_float(const char* name, float def) const;
  std::string get_string(const char* name, const std::string& def = "") const;
  std::vector<int64_t> get_ints(const char* name) const;  // empty when absent
  std::vector<float> get_floats(const char* name) const;
  std::vector<AttrValue> values;  // sorted by name
};

// Fused activation carried by Conv/ConvTranspose/Gemm/MatMul: struct Activation
// (core/activation.h, included above).

// A non-owning reference to a callable, so parallel_for needs no allocation.
template <typename Sig> class FunctionRef;
template <typename R, typename... A>
class FunctionRef<R(A...)> {
 public:
  template <typename F>
  FunctionRef(F&& f)  // NOLINT: implicit on purpose
      : obj_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, A... a) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(a...); }) {}
  R operator()(A... a) const { return call_(obj_, a...); }
 private:
  void* obj_;
  R (*call_)(void*, A...);
};

class ThreadPool;  // core/thread_pool.h

// Everything a kernel hook receives. The same struct is used for every hook;
// fields not meaningful for a hook are documented as such.
struct KernelContext {
  OpType op_type = ::mobconv::formats::fb::OpType_Conv;
  const char* op_name = "";        // the operator's name in the file
  const Attrs* attrs = nullptr;
  const TensorView* inputs = nullptr;  // num_inputs entries (absent: rank -1)
  int num_inputs = 0;
  TensorView* outputs = nullptr;       // num_outputs entries
  int num_outputs = 0;
  // supports/prepare: only constant inputs have data; other inputs have
  // dtype set and rank/dims as declared in the file (dims may be -1).
  void** state = nullptr;          // prepare writes, run/scratch_bytes read *state
  void* scratch = nullptr;         // run: scratch_bytes() bytes, 64-byte aligned
  size_t scratch_size = 0;
  ThreadPool* pool = nullptr;      // run only
  bool allow_fp16 = false;
  // The model's requantization rule of int8 ops (metadata quantization.requantize,
  // docs/quantization.md section 2): fixed point (default) or onnxruntime's float32.
  bool requantize_float32 = false;

  int num_threads() const;
  // Splits [0, n) into at most num_threads() contiguous chunks and calls
  // fn(begin, end, thread_index) for each, on the pool's threads, and waits.
  // The split depends only on n and the thread count. Runs inline when
  // there is no pool or n is small. Not reentrant.
  void parallel_for(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn) const;

  Status error(const std::string& rule) const;  // "op 'name' (Type): rule"
};

struct Kernel {
  const char* name = "";  // XNNPACK style: "conv_f32_im2col_gemm_avx2"
  bool (*supports)(const KernelContext& ctx) = nullptr;      // null: all configurations
  Status (*prepare)(KernelContext& ctx) = nullptr;           // null: nothing to pre-pack
  void (*release)(void* state) = nullptr;                    // frees *state from prepare
  size_t (*scratch_bytes)(const KernelContext& ctx) = nullptr;  // null: 0
  Status (*run)(KernelContext& ctx) = nullptr;               // required
};

// The dtypes a kernel consumes: input 0 and input 1 (DType::Any: any dtype, or
// the input is absent). A float Conv is {F32, F32}; full int8 {I8, I8} (or {U8, I8});
// int8 weights with float activations {F32, I8}; an element-wise op of one dtype
// may register {F32, Any}.
struct KernelKey {
  DType in0 = DType::Any;
  DType in1 = DType::Any;
};
// The key of an operator's inputs as the interpreter looks it up.
KernelKey key_of(const TensorView* inputs, int num_inputs);

// The kernel table. Keys: (op, KernelKey, isa).
class KernelRegistry {
 public:
  void add(OpType op, KernelKey key, Isa isa, const Kernel& kernel);
  // Shorthand for {dtype, Any}.
  void add(OpType op, DType dtype, Isa isa, const Kernel& kernel) { add(op, KernelKey{dtype, DType::Any}, isa, kernel); }
  // Like add, but ahead of the entries already registered (tried first among its key's
  // candidates whatever the order the sets register in): for a kernel that must be offered
  // a node before the general one of its key and set, and refuses the rest in `supports`
  // (the sparse fp32 kernels of cpu/sparse/, before the dense GEMM ones and the reference).
  void add_first(OpType op, KernelKey key, Isa isa, const Kernel& kernel);
  // Several kernels may share a key (a GEMM conv and a 3x3 depthwise conv, each
  // refusing the other's nodes in `supports`); registering an equal key AND name
  // again replaces that entry. candidates(): every kernel for (op, isa) whose key
  // matches, most specific key first ({in0, in1}, then {in0, Any}, then {Any, Any}),
  // in registration order within a key; the interpreter takes the first whose
  // `supports` accepts the node. find(): the first candidate; null when none.
  std::vector<const Kernel*> candidates(OpType op, KernelKey key, Isa isa) const;
  const Kernel* find(OpType op, KernelKey key, Isa isa) const;
  // Every registered (op, key, isa, kernel); for tests and listings.
  struct Entry { OpType op; KernelKey key; Isa isa; Kernel kernel; };
  const std::vector<Entry>& entries() const { return entries_; }
 private:
  std::vector<Entry> entries_;
};

// The process-wide table: reference kernels plus every compiled kernel set
// whose instruction set the CPU supports. Built once, thread-safe.
const KernelRegistry& kernel_registry();

// Preference order of instruction sets for this CPU, best first, always
// ending with Isa::Scalar; limited by `max_isa` (Isa::Any: no limit, except the
// environment variable MOBRT_MAX_ISA, the one run-time cap, which names a set).
std::vector<Isa> isa_preference(Isa max_isa = Isa::Any);

// Registration functions. Each kernel set defines exactly one of these
// (see runtime/KERNELS.md); the build generates the table of sets.
void register_reference_kernels(KernelRegistry& registry);

}  // namespace mobrt
