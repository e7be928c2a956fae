// interpreter.cpp: kernel selection, prepare-time shape inference with
// constant folding of shape computations, the liveness-based arena plan and
// invoke.
//
// Prepare (at creation and after each resize):
//   1. Walk operators in (verified) topological order; each op's infer
//      function sets its outputs' dtype and dims from the inputs' dims and,
//      where needed, input *values* known now (constants, folded tensors).
//   2. An op whose inputs are all known values (or Shape/Size, which only
//      read dims) is folded: run once now by its reference kernel into heap
//      storage; invoke skips it.
//   3. Plan: every other tensor (graph inputs and op outputs) lives from the
//      op that defines it to its last reader (graph outputs: to the end).
//      Greedy by size (largest first), each tensor takes the lowest 64-byte
//      aligned offset that does not overlap a placed tensor with an
//      overlapping lifetime. The arena is the maximum end offset.
//
// Shapes that depend on values computed at run time (Reshape's shape, Slice's starts,
// Resize's scales, ... fed by a graph input or by ops that are not folded): the shape
// function answers kNotReady, and the op and every op that reads its outputs get their
// shapes inferred at invoke instead (InferAtInvoke, just before the op runs, when every
// input holds its values). Their outputs (kDynamic) live outside the arena, each in its
// own buffer that grows when a run needs more and is kept for the next invoke.
//
// Before that, at load (Init, once): an op whose inputs are all constants of the
// file is computed by its reference kernel and its outputs become constants the
// interpreter owns (FoldAtLoad), so kernels selected after it see constant weights.
#include "core/interpreter.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "../../include/mobrt.h"
#include "core/infer.h"

namespace mobrt {

namespace fb = ::mobconv::formats::fb;
static constexpr size_t kAlign = 64;

static void* aligned_alloc64(size_t n) {
  void* p = nullptr;
  if (posix_memalign(&p, kAlign, n ? n : kAlign) != 0) return nullptr;
  return p;
}

Interpreter::Interpreter(const Model& model, const InterpreterOptions& options)
    : model_(model), options_(options) {}

Interpreter::~Interpreter() {
  for (size_t i = 0; i < ops_.size(); ++i)
    if (ops_[i].kernel && ops_[i].kernel->release && ops_[i].state) ops_[i].kernel->release(ops_[i].state);
  FreeFolded();
  for (auto& t : tensors_) std::free(t.dynamic);
  for (void* p : load_time_) std::free(p);
  std::free(arena_);
  std::free(scratch_);
}

void Interpreter::FreeFolded() {
  for (auto& t : tensors_) {
    std::free(t.heap);
    t.heap = nullptr;
  }
}

const char* Interpreter::kernel_name(int op) const {
  const OpState& s = ops_[op];
  return s.folded ? "folded" : (s.kernel ? s.kernel->name : "");
}

void Interpreter::FillView(int t, TensorView* v) const {
  *v = TensorView();
  if (t < 0) return;
  const Tensor& x = tensors_[t];
  v->dtype = x.dtype;
  v->rank = x.rank;
  uint64_t stride = 1;  // unsigned: declared dims of unused tensors are not size-checked
  for (int d = x.rank - 1; d >= 0; --d) {
    v->dims[d] = x.dims[d];
    v->strides[d] = static_cast<int64_t>(stride);
    stride *= static_cast<uint64_t>(x.dims[d]);
  }
  v->data = x.data;
  v->is_constant = x.kind == Tensor::kConstant || x.kind == Tensor::kFolded;
  const TensorInfo& info = model_.tensors[t];
  v->quant = info.has_quant ? &info.quant : nullptr;
}

void Interpreter::BuildViews(int op, std::vector<TensorView>* in, std::vector<TensorView>* out) {
  const OpInfo& info = model_.ops[op];
  in->resize(info.inputs.size());
  out->resize(info.outputs.size());
  for (size_t i = 0; i < info.inputs.size(); ++i) FillView(info.inputs[i], &(*in)[i]);
  for (size_t i = 0; i < info.outputs.size(); ++i) FillView(info.outputs[i], &(*out)[i]);
}

KernelContext Interpreter::MakeContext(int op, std::vector<TensorView>& in, std::vector<TensorView>& out,
                                       void** state) {
  const OpInfo& info = model_.ops[op];
  KernelContext ctx;
  ctx.op_type = info.type;
  ctx.op_name = info.name.c_str();
  ctx.attrs = &info.attrs;
  ctx.inputs = in.data();
  ctx.num_inputs = static_cast<int>(in.size());
  ctx.outputs = out.data();
  ctx.num_outputs = static_cast<int>(out.size());
  ctx.state = state;
  ctx.pool = pool_.get();
  ctx.allow_fp16 = options_.allow_fp16 || model_.fp16_compute;  // either allows fp16 compute
  ctx.requantize_float32 = model_.requantize_float32;
  ctx.scratch = scratch_;
  ctx.scratch_size = scratch_size_;
  return ctx;
}

Status Interpreter::Init() {
  pool_.reset(new ThreadPool(options_.num_threads));
  const size_t nt = model_.tensors.size();
  tensors_.assign(nt, Tensor());
  for (size_t i = 0; i < nt; ++i) {
    const TensorInfo& info = model_.tensors[i];
    Tensor& t = tensors_[i];
    t.dtype = info.dtype;
    t.rank = static_cast<int>(info.dims.size());
    for (int d = 0; d < t.rank; ++d) t.dims[d] = info.dims[d];
    if (info.data) {
      t.kind = Tensor::kConstant;
      t.data = const_cast<uint8_t*>(info.data);  // read-only mapping: kernels never write inputs
      t.bytes = info.data_size;
    }
  }
  for (int idx : model_.inputs) {
    input_dims_.push_back(model_.tensors[idx].dims);
    user_inputs_.push_back(nullptr);
  }
  // Kernel selection and prepare (once): constants have data; other tensors
  // carry the dims declared in the file (-1 where symbolic).
  const KernelRegistry& registry = kernel_registry();
  std::vector<Isa> isas = isa_preference(options_.max_isa);
  ops_.assign(model_.ops.size(), OpState());
  for (size_t k = 0; k < model_.ops.size(); ++k) {
    const OpInfo& info = model_.ops[k];
    bool at_load = false;
    Status folded = FoldAtLoad(static_cast<int>(k), &at_load);
    if (!folded.ok()) return folded;
    if (at_load) continue;
    std::vector<TensorView> in, out;
    BuildViews(static_cast<int>(k), &in, &out);
    KernelKey key = key_of(in.data(), static_cast<int>(in.size()));
    OpState& st = ops_[k];
    for (Isa isa : isas) {
      for (const Kernel* kern : registry.candidates(info.type, key, isa)) {
        if (!kern->run) continue;
        KernelContext ctx = MakeContext(static_cast<int>(k), in, out, &st.state);
        if (kern->supports && !kern->supports(ctx)) continue;
        st.kernel = kern;
        st.isa = isa;
        break;
      }
      if (st.kernel) break;
    }
    if (!st.kernel)
      return Status::Error(StatusCode::kUnsupported,
                           model_.source + ": operator " + std::to_string(k) + " ('" + info.name + "', " +
                               fb::EnumNameOpType(info.type) + "): no kernel for input dtypes (" + dtype_name(key.in0) + ", " + dtype_name(key.in1) + ")");
    if (st.kernel->prepare) {
      KernelContext ctx = MakeContext(static_cast<int>(k), in, out, &st.state);
      Status s = st.kernel->prepare(ctx);
      if (!s.ok()) return s;
    }
  }
  return Prepare();
}

bool has_dynamic_shape(OpType type) {
  return type == fb::OpType_DetectionOutput || type == fb::OpType_NonMaxSuppression;
}

static bool checked_bytes(const int64_t* dims, int rank, DType dt, size_t* out) {
  unsigned __int128 n = dtype_size(dt);
  for (int d = 0; d < rank; ++d) {
    if (dims[d] < 0) return false;
    n *= static_cast<uint64_t>(dims[d]);
    if (n > (static_cast<unsigned __int128>(1) << 62)) return false;
  }
  *out = static_cast<size_t>(n);
  return true;
}

// What a shape function set for output `o` (tensor `t`) of an op: a rank in range, the
// dtype the file declares, a size under the tensor limit (its bytes in *bytes).
Status Interpreter::CheckOutput(int t, int o, const TensorView& v, const std::string& where, size_t* bytes) const {
  if (v.rank < 0 || v.rank > kMaxRank)
    return Status::Error(StatusCode::kInternal, where + ": shape function left output " + std::to_string(o) + " unset");
  if (v.dtype != model_.tensors[t].dtype)
    return Status::Error(StatusCode::kInvalidModel, where + ": output " + std::to_string(o) + " ('" +
                                                        model_.tensors[t].name + "') is declared " +
                                                        dtype_name(model_.tensors[t].dtype) + " but the op produces " +
                                                        dtype_name(v.dtype));
  if (!checked_bytes(v.dims, v.rank, v.dtype, bytes) || *bytes > max_tensor_bytes())
    return Status::Error(StatusCode::kShapeError, where + ": output " + std::to_string(o) + " ('" +
                                                      model_.tensors[t].name + "') would be too large");
  return Status::Ok();
}

Status Interpreter::Prepare() {
  ready_ = false;
  have_outputs_ = false;
  FreeFolded();
  for (auto& t : tensors_)
    if (t.kind != Tensor::kConstant) {
      t.kind = Tensor::kUnused;
      t.data = nullptr;
    }
  // Graph inputs: current dims; unresolved symbols postpone preparation.
  for (size_t i = 0; i < model_.inputs.size(); ++i) {
    Tensor& t = tensors_[model_.inputs[i]];
    t.kind = Tensor::kInput;
    t.rank = static_cast<int>(input_dims_[i].size());
    for (int d = 0; d < t.rank; ++d) {
      if (input_dims_[i][d] < 0) return Status::Ok();  // not ready until resized
      t.dims[d] = input_dims_[i][d];
    }
    if (!checked_bytes(t.dims, t.rank, t.dtype, &t.bytes) || t.bytes > max_tensor_bytes())
      return Status::Error(StatusCode::kShapeError, "input '" + model_.tensors[model_.inputs[i]].name + "' is too large");
  }
  const KernelRegistry& registry = kernel_registry();
  for (size_t k = 0; k < model_.ops.size(); ++k) {
    const OpInfo& info = model_.ops[k];
    OpState& st = ops_[k];
    if (st.at_load) continue;  // its outputs are constants since Init
    std::string where = model_.source + ": operator " + std::to_string(k) + " ('" + info.name + "', " +
                        fb::EnumNameOpType(info.type) + ")";
    st.at_invoke = false;
    bool reads_dynamic = false;
    for (int t : info.inputs) reads_dynamic = reads_dynamic || (t >= 0 && tensors_[t].kind == Tensor::kDynamic);
    if (reads_dynamic) {  // its input shapes are known only at invoke
      DeferToInvoke(static_cast<int>(k));
      continue;
    }
    std::vector<TensorView> in, out;
    BuildViews(static_cast<int>(k), &in, &out);
    // Values known now: constants and folded tensors (data set); clear others.
    bool all_known = !in.empty();
    for (size_t i = 0; i < in.size(); ++i) {
      if (!in[i].present()) continue;
      int t = info.inputs[i];
      bool known = tensors_[t].kind == Tensor::kConstant || tensors_[t].kind == Tensor::kFolded;
      if (!known) in[i].data = nullptr;
      all_known = all_known && known;
    }
    InferFn infer = find_infer(info.type);
    if (!infer) return Status::Error(StatusCode::kUnsupported, where + ": no shape function");
    KernelContext ctx = MakeContext(static_cast<int>(k), in, out, &st.state);
    Status s = infer(ctx);
    if (s.code == StatusCode::kNotReady && !all_known && !has_dynamic_shape(info.type)) {
      DeferToInvoke(static_cast<int>(k));  // its shapes depend on values computed at run time
      continue;
    }
    if (!s.ok()) {
      s.message = model_.source + ": " + s.message;
      return s;
    }
    // Shape, Size and PriorBox read only their inputs' dims: fold them too.
    bool fold = all_known || info.type == fb::OpType_Shape || info.type == fb::OpType_Size ||
                info.type == fb::OpType_PriorBox;
    if (has_dynamic_shape(info.type) && !fold) {
      for (int t : info.outputs)
        for (size_t j = k + 1; j < model_.ops.size(); ++j)
          for (int u : model_.ops[j].inputs)
            if (t >= 0 && u == t)
              return Status::Error(StatusCode::kUnsupported,
                                   where + ": its output has a data-dependent size and can only be a graph output, "
                                           "but operator " + std::to_string(j) + " ('" + model_.ops[j].name +
                                           "') reads it");
    }
    for (size_t o = 0; o < out.size(); ++o) {
      int t = info.outputs[o];
      if (t < 0) continue;
      Tensor& x = tensors_[t];
      s = CheckOutput(t, static_cast<int>(o), out[o], where, &x.bytes);
      if (!s.ok()) return s;
      x.dtype = out[o].dtype;
      x.rank = out[o].rank;
      for (int d = 0; d < x.rank; ++d) x.dims[d] = out[o].dims[d];
      x.capacity = x.bytes;
      x.kind = fold ? Tensor::kFolded : Tensor::kActivation;
      if (fold) {
        x.heap = aligned_alloc64(x.bytes);
        if (!x.heap) return Status::Error(StatusCode::kOutOfMemory, where + ": out of memory");
        x.data = x.heap;
      }
    }
    st.folded = fold;
    // Every output empty: nothing to compute or write, whatever the inputs hold
    // (a zero-size broadcast, a batch of 0...). No kernel is called for it.
    st.empty_output = true;
    for (int t : info.outputs)
      if (t >= 0 && tensors_[t].bytes != 0) st.empty_output = false;
    if (info.outputs.empty()) st.empty_output = false;
    if (fold && !st.empty_output) {
      const Kernel* ref = registry.find(info.type, key_of(in.data(), static_cast<int>(in.size())), Isa::Scalar);
      if (!ref) return Status::Error(StatusCode::kUnsupported, where + ": no reference kernel");
      BuildViews(static_cast<int>(k), &in, &out);
      void* no_state = nullptr;
      KernelContext rctx = MakeContext(static_cast<int>(k), in, out, &no_state);
      rctx.pool = nullptr;
      rctx.scratch = nullptr;
      rctx.scratch_size = 0;
      size_t need = ref->scratch_bytes ? ref->scratch_bytes(rctx) : 0;
      void* tmp = need ? aligned_alloc64(need) : nullptr;
      rctx.scratch = tmp;
      rctx.scratch_size = need;
      s = ref->run(rctx);
      std::free(tmp);
      if (!s.ok()) return s;
    }
  }
  Status s = Plan();
  if (!s.ok()) return s;
  ready_ = true;
  return Status::Ok();
}

// Load-time folding (Init, in op order, before op `k`'s kernel is selected): when every
// input of op `k` is a constant of the file or an output of an op folded here, run its
// reference kernel once now. Its outputs become constants owned by the interpreter:
// not in the arena, not recomputed at resize or invoke, and constant for the kernels
// that read them, which can then take their fast paths and pack weights at prepare
// (fp16 weights behind a Cast to float32, DequantizeLinear of int8 weights, a
// transposed weight). Anything unusual (no reference kernel, a shape error, a dtype
// that differs from the declared one, a too large output) is left to the usual path,
// which reports it.
Status Interpreter::FoldAtLoad(int k, bool* folded) {
  *folded = false;
  const OpInfo& info = model_.ops[k];
  if (info.inputs.empty() || info.outputs.empty() || has_dynamic_shape(info.type)) return Status::Ok();
  for (int t : info.inputs) {
    if (t < 0) continue;
    if (tensors_[t].kind != Tensor::kConstant) return Status::Ok();
    for (int g : model_.inputs)
      if (g == t) return Status::Ok();  // a graph input with a default value: the user may feed it
  }
  std::vector<TensorView> in, out;
  BuildViews(k, &in, &out);
  const Kernel* ref = kernel_registry().find(info.type, key_of(in.data(), static_cast<int>(in.size())), Isa::Scalar);
  InferFn infer = find_infer(info.type);
  if (!ref || !ref->run || !infer) return Status::Ok();
  void* no_state = nullptr;
  KernelContext ctx = MakeContext(k, in, out, &no_state);
  if (!infer(ctx).ok()) return Status::Ok();
  std::vector<size_t> bytes(out.size(), 0);
  bool empty = true;
  for (size_t o = 0; o < out.size(); ++o) {
    int t = info.outputs[o];
    if (t < 0) continue;
    if (out[o].rank < 0 || out[o].rank > kMaxRank || out[o].dtype != model_.tensors[t].dtype ||
        !checked_bytes(out[o].dims, out[o].rank, out[o].dtype, &bytes[o]) || bytes[o] > max_tensor_bytes())
      return Status::Ok();
    if (bytes[o]) empty = false;
  }
  for (size_t o = 0; o < out.size(); ++o) {
    int t = info.outputs[o];
    if (t < 0) continue;
    Tensor& x = tensors_[t];
    void* heap = aligned_alloc64(bytes[o]);
    if (!heap) return Status::Error(StatusCode::kOutOfMemory, model_.source + ": operator " + std::to_string(k) +
                                                                   " ('" + info.name + "'): out of memory");
    load_time_.push_back(heap);
    x.dtype = out[o].dtype;
    x.rank = out[o].rank;
    for (int d = 0; d < x.rank; ++d) x.dims[d] = out[o].dims[d];
    x.bytes = x.capacity = bytes[o];
    x.data = heap;
    x.kind = Tensor::kConstant;
  }
  if (!empty) {
    BuildViews(k, &in, &out);
    KernelContext rctx = MakeContext(k, in, out, &no_state);
    rctx.pool = nullptr;
    rctx.scratch = nullptr;
    rctx.scratch_size = 0;
    size_t need = ref->scratch_bytes ? ref->scratch_bytes(rctx) : 0;
    void* tmp = need ? aligned_alloc64(need) : nullptr;
    if (need && !tmp) return Status::Error(StatusCode::kOutOfMemory, model_.source + ": operator " +
                                                                         std::to_string(k) + ": out of memory");
    rctx.scratch = tmp;
    rctx.scratch_size = need;
    Status s = ref->run(rctx);
    std::free(tmp);
    if (!s.ok()) return s;
  }
  OpState& st = ops_[k];
  st.folded = st.at_load = true;
  st.empty_output = empty;
  *folded = true;
  return Status::Ok();
}

Status Interpreter::Plan() {
  const int nops = static_cast<int>(model_.ops.size());
  std::vector<int> planned;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    Tensor& t = tensors_[i];
    if (t.kind == Tensor::kInput) { t.first = -1; t.last = -1; planned.push_back(static_cast<int>(i)); }
  }
  for (int k = 0; k < nops; ++k) {
    if (ops_[k].folded) continue;
    for (int t : model_.ops[k].outputs)
      if (t >= 0 && tensors_[t].kind != Tensor::kDynamic) {
        tensors_[t].first = k;
        tensors_[t].last = k;
        planned.push_back(t);
      }
  }
  for (int k = 0; k < nops; ++k) {
    if (ops_[k].folded) continue;
    for (int t : model_.ops[k].inputs)
      if (t >= 0 && (tensors_[t].kind == Tensor::kActivation || tensors_[t].kind == Tensor::kInput))
        tensors_[t].last = std::max(tensors_[t].last, k);
  }
  for (int t : model_.outputs) tensors_[t].last = nops;
  // Inputs too: their values survive an invoke (invoke again, e.g. after a cancel,
  // without setting them again), as the C API promises.
  for (int t : model_.inputs) tensors_[t].last = nops;
  std::vector<int> order = planned;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return tensors_[a].bytes > tensors_[b].bytes; });
  struct Placed { size_t off, end; int first, last; };
  std::vector<Placed> placed;
  size_t total = 0, activation = 0;
  for (int t : order) {
    Tensor& x = tensors_[t];
    size_t size = (x.bytes + kAlign - 1) / kAlign * kAlign;
    activation += size;
    std::vector<Placed> conflicts;
    for (const Placed& p : placed)
      if (!(p.last < x.first || x.last < p.first)) conflicts.push_back(p);
    std::sort(conflicts.begin(), conflicts.end(), [](const Placed& a, const Placed& b) { return a.off < b.off; });
    size_t off = 0;
    for (const Placed& p : conflicts) {
      if (size == 0 || off + size <= p.off) break;
      off = std::max(off, p.end);
    }
    x.offset = static_cast<int64_t>(off);
    placed.push_back({off, off + size, x.first, x.last});
    total = std::max(total, off + size);
  }
  if (total > arena_capacity_) {
    std::free(arena_);
    arena_ = aligned_alloc64(total);
    arena_capacity_ = arena_ ? total : 0;
    if (!arena_) return Status::Error(StatusCode::kOutOfMemory, "cannot allocate the arena (" + std::to_string(total) + " bytes)");
  }
  arena_size_ = total;
  activation_bytes_ = activation;
  for (int t : planned) tensors_[t].data = static_cast<uint8_t*>(arena_) + tensors_[t].offset;
  // Scratch: the largest any op asks for.
  size_t scratch = 0;
  for (int k = 0; k < nops; ++k) {
    if (ops_[k].folded || ops_[k].at_invoke || ops_[k].empty_output || !ops_[k].kernel->scratch_bytes) continue;
    std::vector<TensorView> in, out;
    BuildViews(k, &in, &out);
    KernelContext ctx = MakeContext(k, in, out, &ops_[k].state);
    scratch = std::max(scratch, ops_[k].kernel->scratch_bytes(ctx));
  }
  if (scratch > scratch_size_) {
    std::free(scratch_);
    scratch_ = aligned_alloc64(scratch);
    if (!scratch_) { scratch_size_ = 0; return Status::Error(StatusCode::kOutOfMemory, "cannot allocate scratch"); }
    scratch_size_ = scratch;
  }
  return Status::Ok();
}

Status Interpreter::Resize(int input, int rank, const int64_t* dims) {
  if (input < 0 || input >= num_inputs())
    return Status::Error(StatusCode::kInvalidArgument, "input index " + std::to_string(input) + " out of range");
  const TensorInfo& info = model_.tensors[model_.inputs[input]];
  std::string where = "resize of input '" + info.name + "'";
  if (rank != static_cast<int>(info.dims.size()))
    return Status::Error(StatusCode::kShapeError, where + ": rank " + std::to_string(rank) + " differs from the model's " +
                                                      std::to_string(info.dims.size()));
  if (rank > 0 && !dims) return Status::Error(StatusCode::kInvalidArgument, where + ": dims is NULL");
  for (int d = 0; d < rank; ++d) {
    if (dims[d] < 0) return Status::Error(StatusCode::kShapeError, where + ": dim " + std::to_string(d) + " is negative");
    if (info.dims[d] >= 0 && info.dims[d] != dims[d])
      return Status::Error(StatusCode::kShapeError, where + ": dim " + std::to_string(d) + " is fixed to " +
                                                        std::to_string(info.dims[d]) + " in the model, got " +
                                                        std::to_string(dims[d]));
  }
  input_dims_[input].assign(dims, dims + rank);
  user_inputs_[input] = nullptr;
  return Prepare();
}

Status Interpreter::SetInput(int input, const void* data, size_t size) {
  if (input < 0 || input >= num_inputs())
    return Status::Error(StatusCode::kInvalidArgument, "input index " + std::to_string(input) + " out of range");
  if (!ready_) return Status::Error(StatusCode::kNotReady, "input shapes are not resolved: resize the symbolic inputs first");
  const Tensor& t = tensors_[model_.inputs[input]];
  if (size != t.bytes)
    return Status::Error(StatusCode::kInvalidArgument, "input '" + model_.tensors[model_.inputs[input]].name + "' needs " +
                                                           std::to_string(t.bytes) + " bytes, got " + std::to_string(size));
  if (size && !data) return Status::Error(StatusCode::kInvalidArgument, "data is NULL");
  if (size) std::memcpy(t.data, data, size);
  user_inputs_[input] = nullptr;
  return Status::Ok();
}

Status Interpreter::SetInputPointer(int input, const void* data, size_t size) {
  if (input < 0 || input >= num_inputs())
    return Status::Error(StatusCode::kInvalidArgument, "input index " + std::to_string(input) + " out of range");
  if (!ready_) return Status::Error(StatusCode::kNotReady, "input shapes are not resolved: resize the symbolic inputs first");
  const Tensor& t = tensors_[model_.inputs[input]];
  if (data && size != t.bytes)
    return Status::Error(StatusCode::kInvalidArgument, "input '" + model_.tensors[model_.inputs[input]].name + "' needs " +
                                                           std::to_string(t.bytes) + " bytes, got " + std::to_string(size));
  if (data && reinterpret_cast<uintptr_t>(data) % dtype_size(t.dtype) != 0)
    return Status::Error(StatusCode::kInvalidArgument, "input pointer is not aligned to the element size");
  user_inputs_[input] = data;
  return Status::Ok();
}

void* Interpreter::InputData(int input) {
  if (input < 0 || input >= num_inputs() || !ready_) return nullptr;
  return tensors_[model_.inputs[input]].data;
}

Status Interpreter::Invoke() {
  if (!ready_) return Status::Error(StatusCode::kNotReady, "input shapes are not resolved: resize the symbolic inputs first");
  have_outputs_ = false;
  cancel_.store(false, std::memory_order_relaxed);
  // Caller-memory inputs: point the tensors there for this invoke.
  std::vector<void*> saved(model_.inputs.size());
  for (size_t i = 0; i < model_.inputs.size(); ++i) {
    Tensor& t = tensors_[model_.inputs[i]];
    saved[i] = t.data;
    if (user_inputs_[i]) t.data = const_cast<void*>(user_inputs_[i]);
  }
  struct Restore {
    Interpreter* self; std::vector<void*>* saved;
    ~Restore() { for (size_t i = 0; i < saved->size(); ++i) self->tensors_[self->model_.inputs[i]].data = (*saved)[i]; }
  } restore{this, &saved};
  profile_.clear();
  std::vector<TensorView> in, out;
  std::vector<mobrt_tensor_info> infos;
  for (size_t k = 0; k < model_.ops.size(); ++k) {
    if (cancel_.load(std::memory_order_relaxed))
      return Status::Error(StatusCode::kCancelled, "invoke cancelled before operator " + std::to_string(k) + " ('" +
                                                       model_.ops[k].name + "') by mobrt_interpreter_cancel");
    OpState& st = ops_[k];
    const OpInfo& info = model_.ops[k];
    if (st.at_invoke) {
      Status s = InferAtInvoke(static_cast<int>(k));
      if (!s.ok()) return s;
    }
    if (!st.folded && !st.empty_output) {
      BuildViews(static_cast<int>(k), &in, &out);
      KernelContext ctx = MakeContext(static_cast<int>(k), in, out, &st.state);
      auto t0 = std::chrono::steady_clock::now();
      Status s = st.kernel->run(ctx);
      if (!s.ok()) return s;
      if (has_dynamic_shape(info.type)) {
        s = TakeDynamicShapes(static_cast<int>(k), out);
        if (!s.ok()) return s;
      }
      if (options_.profiling) {
        double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        profile_.push_back({static_cast<int>(k), us});
      }
    } else if (!st.folded && options_.profiling) {
      profile_.push_back({static_cast<int>(k), 0.0});  // empty output: not run
    }
    if (observer_) {
      infos.clear();
      for (int t : info.outputs) {
        if (t < 0) continue;
        mobrt_tensor_info ti;
        std::memset(&ti, 0, sizeof ti);
        ti.name = model_.tensors[t].name.c_str();
        ti.dtype = static_cast<mobrt_dtype>(tensors_[t].dtype);
        ti.rank = tensors_[t].rank;
        for (int d = 0; d < ti.rank; ++d) ti.dims[d] = tensors_[t].dims[d];
        ti.data = tensors_[t].data;
        ti.size = tensors_[t].bytes;
        infos.push_back(ti);
      }
      if (observer_(observer_user_, static_cast<int>(k), info.name.c_str(), fb::EnumNameOpType(info.type),
                    static_cast<int>(infos.size()), infos.data()) != 0)
        return Status::Error(StatusCode::kInvalidArgument, "observer aborted the invoke after operator " +
                                                               std::to_string(k) + " ('" + info.name + "')");
    }
  }
  // Graph outputs that are graph inputs given by pointer: copy so the
  // output stays valid while the arena holds it.
  for (size_t i = 0; i < model_.inputs.size(); ++i)
    if (user_inputs_[i])
      for (int o : model_.outputs)
        if (o == model_.inputs[i]) std::memcpy(saved[i], user_inputs_[i], tensors_[o].bytes);
  have_outputs_ = true;
  return Status::Ok();
}

// Prepare found that op `op` can only be shaped at invoke: its outputs become kDynamic
// with the dims the file declares (-1 where symbolic) until InferAtInvoke sets them.
void Interpreter::DeferToInvoke(int op) {
  OpState& st = ops_[op];
  st.at_invoke = true;
  st.folded = false;
  st.empty_output = false;
  for (int t : model_.ops[op].outputs) {
    if (t < 0) continue;
    Tensor& x = tensors_[t];
    const TensorInfo& declared = model_.tensors[t];
    x.kind = Tensor::kDynamic;
    x.dtype = declared.dtype;
    x.rank = static_cast<int>(declared.dims.size());
    for (int d = 0; d < x.rank; ++d) x.dims[d] = declared.dims[d];
    x.bytes = x.capacity = 0;
    x.data = nullptr;
  }
}

// At invoke, before op `op` runs: its shape function on the inputs' real dims and
// values, then storage for each output (its buffer grows when this run needs more) and
// scratch, with the same checks Prepare applies.
Status Interpreter::InferAtInvoke(int op) {
  const OpInfo& info = model_.ops[op];
  OpState& st = ops_[op];
  std::string where = model_.source + ": operator " + std::to_string(op) + " ('" + info.name + "', " +
                      fb::EnumNameOpType(info.type) + ")";
  std::vector<TensorView> in, out;
  BuildViews(op, &in, &out);
  InferFn infer = find_infer(info.type);
  if (!infer) return Status::Error(StatusCode::kUnsupported, where + ": no shape function");
  KernelContext ctx = MakeContext(op, in, out, &st.state);
  Status s = infer(ctx);
  if (!s.ok()) {
    if (s.code == StatusCode::kNotReady) s.code = StatusCode::kShapeError;  // every value is known now
    s.message = model_.source + ": " + s.message;
    return s;
  }
  st.empty_output = !info.outputs.empty();
  for (size_t o = 0; o < out.size(); ++o) {
    int t = info.outputs[o];
    if (t < 0) continue;
    Tensor& x = tensors_[t];
    size_t bytes = 0;
    s = CheckOutput(t, static_cast<int>(o), out[o], where, &bytes);
    if (!s.ok()) return s;
    if (!x.dynamic || bytes > x.dynamic_capacity) {
      std::free(x.dynamic);
      x.dynamic = aligned_alloc64(bytes);
      x.dynamic_capacity = x.dynamic ? bytes : 0;
      if (!x.dynamic) return Status::Error(StatusCode::kOutOfMemory, where + ": out of memory");
    }
    x.rank = out[o].rank;
    for (int d = 0; d < x.rank; ++d) x.dims[d] = out[o].dims[d];
    x.bytes = x.capacity = bytes;
    x.data = x.dynamic;
    if (bytes) st.empty_output = false;
  }
  if (st.empty_output || !st.kernel->scratch_bytes) return Status::Ok();
  BuildViews(op, &in, &out);
  KernelContext sctx = MakeContext(op, in, out, &st.state);
  size_t need = st.kernel->scratch_bytes(sctx);
  if (need > scratch_size_) {
    std::free(scratch_);
    scratch_ = aligned_alloc64(need);
    scratch_size_ = scratch_ ? need : 0;
    if (!scratch_) return Status::Error(StatusCode::kOutOfMemory, where + ": cannot allocate scratch");
  }
  return Status::Ok();
}

// An op with a data-dependent output size (DetectionOutput) is planned at
// its upper bound; after its run the output takes the dims the kernel wrote
// into its view, which must fit the planned bytes.
Status Interpreter::TakeDynamicShapes(int op, const std::vector<TensorView>& out) {
  const OpInfo& info = model_.ops[op];
  for (size_t o = 0; o < out.size(); ++o) {
    int t = info.outputs[o];
    if (t < 0) continue;
    Tensor& x = tensors_[t];
    size_t bytes = 0;
    if (out[o].rank != x.rank || !checked_bytes(out[o].dims, out[o].rank, x.dtype, &bytes) || bytes > x.capacity)
      return Status::Error(StatusCode::kInternal, "operator " + std::to_string(op) + " ('" + info.name +
                                                      "') wrote a larger output than its planned bound");
    for (int d = 0; d < x.rank; ++d) x.dims[d] = out[o].dims[d];
    x.bytes = bytes;
  }
  return Status::Ok();
}

const void* Interpreter::OutputData(int output) const {
  if (output < 0 || output >= num_outputs() || !have_outputs_) return nullptr;
  return tensors_[model_.outputs[output]].data;
}

}  // namespace mobrt
