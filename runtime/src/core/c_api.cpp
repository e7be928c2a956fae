// c_api.cpp: the C boundary. Every entry point catches all exceptions and
// turns failures into a status plus a message stored on the handle (or the
// thread-local global error when there is no handle).
//
// Concurrent misuse of one interpreter (the header says one thread at a time)
// is refused instead of corrupting memory: every call that reads or changes
// the interpreter's state claims it by storing its thread id in `owner`
// (compare-and-swap, no lock taken). A call from another thread while it is
// claimed returns MOBRT_BUSY ("interpreter is in use by another thread");
// a call from the claiming thread itself (an observer callback during invoke)
// may read, but not resize, set inputs, invoke or change the observer.
// mobrt_interpreter_delete waits for a call in progress on another thread; from
// the interpreter's own observer callback it is deferred until invoke returns.
#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include "../../include/mobrt.h"
#include "core/interpreter.h"
#include "core/model.h"
#include "core/op_schema.h"

using mobrt::Interpreter;
using mobrt::Model;
using mobrt::Status;
using mobrt::StatusCode;

// One input/output of a model or interpreter, or (observer callbacks) a view of
// an operator output for the duration of the callback.
struct mobrt_tensor {
  const mobrt::TensorInfo* info = nullptr;   // the file's description (name, dtype, quantization)
  int graph_index = -1;                      // into Model::tensors
  int io_index = -1;                         // input/output number (-1: observer view)
  bool input = false;
  mobrt_interpreter* it = nullptr;           // interpreter tensor; null: model tensor or view
  const mobrt_tensor_info* view = nullptr;   // observer view: current shape and data
};

struct Reporter {
  mobrt_error_reporter_fn fn = nullptr;
  void* user = nullptr;
};

struct mobrt_model {
  std::unique_ptr<Model> impl;
  std::vector<mobrt_tensor> inputs, outputs;  // built at creation (the model is immutable)
};
struct mobrt_options {
  mobrt::InterpreterOptions o;
  Reporter reporter;
};
struct mobrt_interpreter {
  std::unique_ptr<Interpreter> impl;
  std::atomic<std::thread::id> owner{std::thread::id()};  // thread inside a call, or none
  bool delete_pending = false;  // deleted from its own observer callback: free when the call ends
  std::vector<mobrt_tensor> inputs, outputs;
  Reporter reporter;            // from the options; fn null: the process-wide one
  mobrt_tensor_observer_fn tensor_observer = nullptr;
  void* tensor_observer_user = nullptr;
};

namespace {

thread_local std::string g_error;

std::mutex g_reporter_mutex;
Reporter g_reporter;  // process-wide (mobrt_set_error_reporter), under g_reporter_mutex

// Tells the reporter of `own` (an interpreter's, from its options) or else the
// process-wide one about a failure. Never throws.
void report(mobrt_status code, const std::string& msg, const Reporter* own = nullptr) {
  Reporter r;
  if (own && own->fn) {
    r = *own;
  } else {
    std::lock_guard<std::mutex> lock(g_reporter_mutex);
    r = g_reporter;
  }
  if (r.fn) r.fn(r.user, code, msg.c_str());
}

mobrt_status to_c(const Status& s) { return static_cast<mobrt_status>(s.code); }

mobrt_status global_fail(mobrt_status code, const std::string& msg, const Reporter* own = nullptr) {
  g_error = msg;
  report(code, msg, own);
  return code;
}

template <typename F>
mobrt_status guard(std::string* err, F&& f, const Reporter* own = nullptr) {
  mobrt_status code;
  std::string m;
  try {
    Status s = f();
    if (s.ok()) return MOBRT_OK;
    code = to_c(s);
    m = s.message;
  } catch (const std::bad_alloc&) {
    code = MOBRT_OUT_OF_MEMORY;
    m = "out of memory";
  } catch (const std::exception& e) {
    code = MOBRT_INTERNAL;
    m = std::string("internal error: ") + e.what();
  } catch (...) {
    code = MOBRT_INTERNAL;
    m = "internal error";
  }
  try {
    if (err) *err = m; else g_error = m;
    report(code, err ? *err : g_error, own);
  } catch (...) {
  }
  return code;
}

// A refused call's message lives in the thread-local g_error (the handle's own
// message belongs to the thread using it); mobrt_interpreter_last_error returns
// it on the refused thread until that thread's next admitted call.
thread_local const mobrt_interpreter* g_refused = nullptr;

// Claims `it` for the duration of one C API call (see the comment at the top).
class Claim {
 public:
  Claim(mobrt_interpreter* it, bool mutates) : it_(it) {
    std::thread::id none, self = std::this_thread::get_id();
    if (it->owner.compare_exchange_strong(none, self, std::memory_order_acquire)) {
      owned_ = true;
    } else if (none != self) {
      refuse(MOBRT_BUSY, "interpreter is in use by another thread (calls on one interpreter must not "
                         "overlap; use one interpreter per thread)");
      return;
    } else if (mutates) {
      refuse(MOBRT_BUSY, "interpreter is running: resize, set_input, invoke and set_observer cannot "
                         "be called from its own observer callback");
      return;
    }
    if (g_refused == it) g_refused = nullptr;
  }
  ~Claim() {
    if (!owned_) return;
    if (it_->delete_pending) {  // still ours: no other thread can be inside
      delete it_;
      return;
    }
    // after this store a thread waiting in mobrt_interpreter_delete may free it_ at once
    it_->owner.store(std::thread::id(), std::memory_order_release);
  }
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  bool refused() const { return refused_; }
  mobrt_status status() const { return status_; }

 private:
  void refuse(mobrt_status status, const char* message) {
    refused_ = true;
    status_ = status;
    g_error = message;
    g_refused = it_;
    report(status, g_error, &it_->reporter);
  }
  mobrt_interpreter* it_;
  bool owned_ = false;
  bool refused_ = false;
  mobrt_status status_ = MOBRT_OK;
};

std::vector<mobrt_tensor> io_tensors(const Model& m, bool input, mobrt_interpreter* it) {
  const std::vector<int>& v = input ? m.inputs : m.outputs;
  std::vector<mobrt_tensor> r(v.size());
  for (size_t k = 0; k < v.size(); ++k) {
    r[k].info = &m.tensors[v[k]];
    r[k].graph_index = v[k];
    r[k].io_index = static_cast<int>(k);
    r[k].input = input;
    r[k].it = it;
  }
  return r;
}

mobrt_model* wrap_model(std::unique_ptr<Model> m) {
  std::unique_ptr<mobrt_model> w(new mobrt_model);
  w->impl = std::move(m);
  w->inputs = io_tensors(*w->impl, true, nullptr);
  w->outputs = io_tensors(*w->impl, false, nullptr);
  return w.release();
}

// Tables generated from mobrt.h's enums (scripts/gen_binding_enums.py).
size_t dtype_size(int dtype) {
  switch (dtype) {
#define MOBRT_DTYPE_ROW(id, value, name, size) \
  case id: return size;
#include "core/generated/binding_enums.inc"
#undef MOBRT_DTYPE_ROW
    default: return 0;
  }
}

// Current shape of a tensor (see mobrt_tensor_rank). The caller has claimed an
// interpreter tensor's interpreter.
int shape_of(const mobrt_tensor* t, int64_t* dims) {
  if (t->view) {
    for (int d = 0; d < t->view->rank; ++d) dims[d] = t->view->dims[d];
    return t->view->rank;
  }
  if (t->it && t->it->impl->shapes_ready()) {
    const Interpreter::Tensor& x = t->it->impl->tensor(t->graph_index);
    for (int d = 0; d < x.rank; ++d) dims[d] = x.dims[d];
    return x.rank;
  }
  int r = static_cast<int>(t->info->dims.size());
  for (int d = 0; d < r && d < MOBRT_MAX_RANK; ++d) dims[d] = t->info->dims[d];
  return r;
}

// Claims an interpreter tensor's interpreter for reading; model tensors and
// observer views need none.
class TensorRead {
 public:
  explicit TensorRead(const mobrt_tensor* t) {
    if (t && t->it) claim_.reset(new Claim(t->it, false));
  }
  bool refused() const { return claim_ && claim_->refused(); }

 private:
  std::unique_ptr<Claim> claim_;
};

// Observer trampoline for mobrt_interpreter_set_tensor_observer: the
// interpreter calls it with the deprecated structs; it passes tensors.
int tensor_observer_trampoline(void* user, int op_index, const char* op_name, const char* op_type, int n,
                               const mobrt_tensor_info* outputs) {
  mobrt_interpreter* it = static_cast<mobrt_interpreter*>(user);
  const Model& m = it->impl->model();
  const mobrt::OpInfo& op = m.ops[op_index];
  std::vector<mobrt_tensor> views(n);
  std::vector<const mobrt_tensor*> ptrs(n);
  for (int k = 0; k < n; ++k) {
    views[k].view = &outputs[k];
    for (int t : op.outputs)  // the structs skip absent outputs: match by name
      if (t >= 0 && m.tensors[t].name.c_str() == outputs[k].name) {
        views[k].info = &m.tensors[t];
        views[k].graph_index = t;
      }
    if (!views[k].info) return 1;  // cannot happen: every struct names an op output
    ptrs[k] = &views[k];
  }
  return it->tensor_observer(it->tensor_observer_user, op_index, op_name, op_type, n, ptrs.data());
}

}  // namespace

extern "C" {

void mobrt_set_error_reporter(mobrt_error_reporter_fn fn, void* user_data) {
  std::lock_guard<std::mutex> lock(g_reporter_mutex);
  g_reporter.fn = fn;
  g_reporter.user = user_data;
}

size_t mobrt_dtype_size(mobrt_dtype dtype) { return dtype_size(dtype); }

const char* mobrt_dtype_name(mobrt_dtype dtype) {
  switch (dtype) {
#define MOBRT_DTYPE_ROW(id, value, name, size) \
  case id: return name;
#include "core/generated/binding_enums.inc"
#undef MOBRT_DTYPE_ROW
  }
  return "unknown";
}

#define MOBRT_STR2(x) #x
#define MOBRT_STR(x) MOBRT_STR2(x)
const char* mobrt_version(void) {
  return MOBRT_STR(MOBRT_VERSION_MAJOR) "." MOBRT_STR(MOBRT_VERSION_MINOR) "." MOBRT_STR(MOBRT_VERSION_PATCH);
}
uint32_t mobrt_format_version_major(void) { return 1; }
const char* mobrt_global_last_error(void) { return g_error.c_str(); }

const char* mobrt_status_name(mobrt_status s) {
  switch (s) {
#define MOBRT_STATUS_ROW(id, value, doc) \
  case id: return #id;
#include "core/generated/binding_enums.inc"
#undef MOBRT_STATUS_ROW
  }
  return "MOBRT_UNKNOWN";
}

int mobrt_num_op_types(void) { return static_cast<int>(mobrt::num_op_types()); }

const char* mobrt_op_describe(int type) {
  if (type < 0) return nullptr;
  try {
    const std::string& s = mobrt::op_describe_json(static_cast<uint32_t>(type));
    return s.empty() ? nullptr : s.c_str();
  } catch (...) {
    return nullptr;
  }
}

mobrt_status mobrt_model_create_from_file(const char* path, mobrt_model** out) {
  if (!out) return global_fail(MOBRT_INVALID_ARGUMENT, "out is NULL");
  *out = nullptr;
  if (!path) return global_fail(MOBRT_INVALID_ARGUMENT, "path is NULL");
  return guard(nullptr, [&] {
    std::unique_ptr<Model> m;
    Status s = Model::LoadFile(path, &m);
    if (s.ok()) *out = wrap_model(std::move(m));
    return s;
  });
}

mobrt_status mobrt_model_create_from_buffer(const void* data, size_t size, int copy, mobrt_model** out) {
  if (!out) return global_fail(MOBRT_INVALID_ARGUMENT, "out is NULL");
  *out = nullptr;
  return guard(nullptr, [&] {
    std::unique_ptr<Model> m;
    Status s = Model::LoadBuffer(data, size, copy != 0, &m);
    if (s.ok()) *out = wrap_model(std::move(m));
    return s;
  });
}

void mobrt_model_delete(mobrt_model* model) { delete model; }

const char* mobrt_model_last_error(const mobrt_model* model) {
  return model ? model->impl->last_error.c_str() : g_error.c_str();
}

int mobrt_model_num_operators(const mobrt_model* model) {
  return model ? static_cast<int>(model->impl->ops.size()) : 0;
}

const char* mobrt_model_metadata(const mobrt_model* model, const char* key) {
  if (!model || !key) return nullptr;
  auto it = model->impl->metadata.find(key);
  return it == model->impl->metadata.end() ? nullptr : it->second.c_str();
}

int mobrt_model_num_inputs(const mobrt_model* model) { return model ? static_cast<int>(model->inputs.size()) : 0; }
int mobrt_model_num_outputs(const mobrt_model* model) { return model ? static_cast<int>(model->outputs.size()) : 0; }

const mobrt_tensor* mobrt_model_input_tensor(const mobrt_model* model, int index) {
  if (!model || index < 0 || index >= static_cast<int>(model->inputs.size())) return nullptr;
  return &model->inputs[index];
}

const mobrt_tensor* mobrt_model_output_tensor(const mobrt_model* model, int index) {
  if (!model || index < 0 || index >= static_cast<int>(model->outputs.size())) return nullptr;
  return &model->outputs[index];
}

const char* mobrt_model_input_layout(const mobrt_model* model, int index) {
  if (!model || index < 0 || index >= static_cast<int>(model->impl->input_layouts.size())) return nullptr;
  return model->impl->input_layouts[index].c_str();
}

const char* mobrt_model_output_layout(const mobrt_model* model, int index) {
  if (!model || index < 0 || index >= static_cast<int>(model->impl->output_layouts.size())) return nullptr;
  return model->impl->output_layouts[index].c_str();
}

static int copy_floats(const mobrt_model* model, int index, float* out, int capacity,
                       const std::vector<float> Model::*field) {
  if (!model || index < 0 || index >= static_cast<int>(model->inputs.size()) || capacity < 0 ||
      (capacity > 0 && !out))
    return -1;
  if (index != 0) return 0;  // the file records one preprocessing, for input 0
  const std::vector<float>& v = (*model->impl).*field;
  for (size_t k = 0; k < v.size() && k < static_cast<size_t>(capacity); ++k) out[k] = v[k];
  return static_cast<int>(v.size());
}

int mobrt_model_input_mean(const mobrt_model* model, int index, float* out, int capacity) {
  return copy_floats(model, index, out, capacity, &Model::pre_mean);
}

int mobrt_model_input_scale(const mobrt_model* model, int index, float* out, int capacity) {
  return copy_floats(model, index, out, capacity, &Model::pre_scale);
}

const char* mobrt_model_input_channel_order(const mobrt_model* model, int index) {
  if (!model || index < 0 || index >= static_cast<int>(model->inputs.size())) return nullptr;
  return index == 0 ? model->impl->channel_order.c_str() : "";
}

const char* mobrt_tensor_name(const mobrt_tensor* t) { return t ? t->info->name.c_str() : nullptr; }

mobrt_dtype mobrt_tensor_dtype(const mobrt_tensor* t) {
  return t ? static_cast<mobrt_dtype>(t->info->dtype) : MOBRT_FLOAT32;
}

int mobrt_tensor_rank(const mobrt_tensor* t) {
  if (!t) return -1;
  TensorRead read(t);
  if (read.refused()) return 0;
  int64_t dims[MOBRT_MAX_RANK];
  return shape_of(t, dims);
}

int64_t mobrt_tensor_dim(const mobrt_tensor* t, int k) {
  if (!t) return -1;
  TensorRead read(t);
  if (read.refused()) return 0;
  int64_t dims[MOBRT_MAX_RANK];
  int r = shape_of(t, dims);
  return (k < 0 || k >= r) ? -1 : dims[k];
}

const char* mobrt_tensor_dim_symbol(const mobrt_tensor* t, int k) {
  if (!t || k < 0 || k >= static_cast<int>(t->info->symbols.size()) || t->info->symbols[k].empty()) return nullptr;
  return t->info->symbols[k].c_str();
}

size_t mobrt_tensor_byte_size(const mobrt_tensor* t) {
  if (!t) return 0;
  TensorRead read(t);
  if (read.refused()) return 0;
  int64_t dims[MOBRT_MAX_RANK];
  int r = shape_of(t, dims);
  size_t n = dtype_size(static_cast<int>(t->info->dtype));
  for (int d = 0; d < r; ++d) {
    if (dims[d] < 0) return 0;
    n *= static_cast<size_t>(dims[d]);
  }
  return n;
}

const void* mobrt_tensor_data(const mobrt_tensor* t) {
  if (!t) return nullptr;
  if (t->view) return t->view->data;
  if (!t->it) return nullptr;
  TensorRead read(t);
  if (read.refused()) return nullptr;
  return t->input ? t->it->impl->InputData(t->io_index) : t->it->impl->OutputData(t->io_index);
}

void* mobrt_tensor_mutable_data(const mobrt_tensor* t) {
  if (!t || !t->it || !t->input) return nullptr;
  TensorRead read(t);
  if (read.refused()) return nullptr;
  return t->it->impl->InputData(t->io_index);
}

int mobrt_tensor_quant_scale_count(const mobrt_tensor* t) {
  return (t && t->info->has_quant) ? static_cast<int>(t->info->scales.size()) : 0;
}

float mobrt_tensor_quant_scale(const mobrt_tensor* t, int k) {
  if (!t || !t->info->has_quant || k < 0 || k >= static_cast<int>(t->info->scales.size())) return 0.0f;
  return t->info->scales[k];
}

int64_t mobrt_tensor_quant_zero_point(const mobrt_tensor* t, int k) {
  if (!t || !t->info->has_quant || k < 0 || k >= static_cast<int>(t->info->scales.size())) return 0;
  return k < static_cast<int>(t->info->zero_points.size()) ? t->info->zero_points[k] : 0;
}

int mobrt_tensor_quant_axis(const mobrt_tensor* t) {
  if (!t || !t->info->has_quant || t->info->scales.size() <= 1) return -1;
  return t->info->quant.axis;
}

mobrt_options* mobrt_options_create(void) { return new (std::nothrow) mobrt_options(); }
void mobrt_options_delete(mobrt_options* o) { delete o; }

mobrt_status mobrt_options_set_num_threads(mobrt_options* o, int threads) {
  if (!o) return global_fail(MOBRT_INVALID_ARGUMENT, "options is NULL");
  if (threads < 1 || threads > 256) return global_fail(MOBRT_INVALID_ARGUMENT, "threads must be in [1, 256], got " + std::to_string(threads));
  o->o.num_threads = threads;
  return MOBRT_OK;
}

mobrt_status mobrt_options_set_backend(mobrt_options* o, mobrt_backend backend) {
  if (!o) return global_fail(MOBRT_INVALID_ARGUMENT, "options is NULL");
  if (backend != MOBRT_BACKEND_CPU && backend != MOBRT_BACKEND_OPENCL)
    return global_fail(MOBRT_INVALID_ARGUMENT, "unknown backend " + std::to_string(static_cast<int>(backend)));
  o->o.backend = backend;
  return MOBRT_OK;
}

mobrt_status mobrt_options_set_allow_fp16(mobrt_options* o, int allow) {
  if (!o) return global_fail(MOBRT_INVALID_ARGUMENT, "options is NULL");
  o->o.allow_fp16 = allow != 0;
  return MOBRT_OK;
}

static_assert(MOBRT_ISA_SCALAR == int(mobrt::Isa::Scalar) && MOBRT_ISA_AVX2 == int(mobrt::Isa::AVX2) &&
                  MOBRT_ISA_AVX512 == int(mobrt::Isa::AVX512) && MOBRT_ISA_NEON == int(mobrt::Isa::NEON) &&
                  MOBRT_ISA_ANY == int(mobrt::Isa::Any) && MOBRT_ISA_AVX_VNNI == int(mobrt::Isa::AVXVNNI) &&
                  MOBRT_ISA_AVX512_VNNI == int(mobrt::Isa::AVX512VNNI) &&
                  MOBRT_ISA_NEON_DOT == int(mobrt::Isa::NEONDOT) && MOBRT_ISA_NEON_FP16 == int(mobrt::Isa::NEONFP16),
              "mobrt_isa and mobrt::Isa must agree");
static_assert(MOBRT_FLOAT32 == int(mobrt::DType::F32) && MOBRT_FLOAT16 == int(mobrt::DType::F16) &&
                  MOBRT_BFLOAT16 == int(mobrt::DType::BF16) && MOBRT_INT8 == int(mobrt::DType::I8) &&
                  MOBRT_UINT8 == int(mobrt::DType::U8) && MOBRT_INT16 == int(mobrt::DType::I16) &&
                  MOBRT_INT32 == int(mobrt::DType::I32) && MOBRT_INT64 == int(mobrt::DType::I64) &&
                  MOBRT_BOOL == int(mobrt::DType::BOOL),
              "mobrt_dtype and mobrt::DType must agree (tensor_info casts one to the other)");
static_assert(MOBRT_OK == int(mobrt::StatusCode::kOk) &&
                  MOBRT_INVALID_ARGUMENT == int(mobrt::StatusCode::kInvalidArgument) &&
                  MOBRT_INVALID_MODEL == int(mobrt::StatusCode::kInvalidModel) &&
                  MOBRT_UNSUPPORTED == int(mobrt::StatusCode::kUnsupported) &&
                  MOBRT_SHAPE_ERROR == int(mobrt::StatusCode::kShapeError) &&
                  MOBRT_OUT_OF_MEMORY == int(mobrt::StatusCode::kOutOfMemory) &&
                  MOBRT_IO_ERROR == int(mobrt::StatusCode::kIoError) &&
                  MOBRT_NOT_READY == int(mobrt::StatusCode::kNotReady) &&
                  MOBRT_INTERNAL == int(mobrt::StatusCode::kInternal) &&
                  MOBRT_CANCELLED == int(mobrt::StatusCode::kCancelled),
              "mobrt_status and mobrt::StatusCode must agree (to_c casts one to the other)");

int mobrt_isa_supported(mobrt_isa isa) {
  if (isa == MOBRT_ISA_ANY) return 1;
  if (isa < MOBRT_ISA_SCALAR || isa > MOBRT_ISA_NEON_FP16) return 0;
  return mobrt::isa_supported(static_cast<mobrt::Isa>(isa)) ? 1 : 0;
}

mobrt_status mobrt_options_set_max_isa(mobrt_options* o, mobrt_isa isa) {
  if (!o) return global_fail(MOBRT_INVALID_ARGUMENT, "options is NULL");
  if (isa < MOBRT_ISA_SCALAR || isa > MOBRT_ISA_NEON_FP16)
    return global_fail(MOBRT_INVALID_ARGUMENT, "unknown isa " + std::to_string(static_cast<int>(isa)));
  o->o.max_isa = static_cast<mobrt::Isa>(isa);  // the values are equal (static_asserts below)
  return MOBRT_OK;
}

mobrt_status mobrt_options_set_profiling(mobrt_options* o, int enable) {
  if (!o) return global_fail(MOBRT_INVALID_ARGUMENT, "options is NULL");
  o->o.profiling = enable != 0;
  return MOBRT_OK;
}

mobrt_status mobrt_options_set_error_reporter(mobrt_options* o, mobrt_error_reporter_fn fn, void* user_data) {
  if (!o) return global_fail(MOBRT_INVALID_ARGUMENT, "options is NULL");
  o->reporter.fn = fn;
  o->reporter.user = user_data;
  return MOBRT_OK;
}

mobrt_status mobrt_interpreter_create(const mobrt_model* model, const mobrt_options* options,
                                      mobrt_interpreter** out) {
  if (!out) return global_fail(MOBRT_INVALID_ARGUMENT, "out is NULL");
  *out = nullptr;
  if (!model) return global_fail(MOBRT_INVALID_ARGUMENT, "model is NULL");
  const Reporter* own = options ? &options->reporter : nullptr;
  return guard(nullptr, [&] {
    mobrt::InterpreterOptions o = options ? options->o : mobrt::InterpreterOptions();
    std::unique_ptr<Interpreter> it(new Interpreter(*model->impl, o));
    Status s = it->Init();
    if (s.ok()) {
      std::unique_ptr<mobrt_interpreter> w(new mobrt_interpreter);
      w->impl = std::move(it);
      w->inputs = io_tensors(w->impl->model(), true, w.get());
      w->outputs = io_tensors(w->impl->model(), false, w.get());
      if (own) w->reporter = *own;
      *out = w.release();
    }
    return s;
  }, own);
}

void mobrt_interpreter_delete(mobrt_interpreter* it) {
  if (!it) return;
  std::thread::id self = std::this_thread::get_id();
  for (;;) {
    std::thread::id none;
    if (it->owner.compare_exchange_strong(none, self, std::memory_order_acquire)) break;
    if (none == self) {  // from its own observer callback: the running call frees it on return
      it->delete_pending = true;
      return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));  // another thread's call: wait
  }
  if (g_refused == it) g_refused = nullptr;
  delete it;
}

const char* mobrt_interpreter_last_error(const mobrt_interpreter* it) {
  if (!it || g_refused == it) return g_error.c_str();
  return it->impl->last_error.c_str();
}

int mobrt_interpreter_num_inputs(const mobrt_interpreter* it) { return it ? it->impl->num_inputs() : 0; }
int mobrt_interpreter_num_outputs(const mobrt_interpreter* it) { return it ? it->impl->num_outputs() : 0; }

const mobrt_tensor* mobrt_interpreter_input_tensor(const mobrt_interpreter* it, int index) {
  if (!it || index < 0 || index >= static_cast<int>(it->inputs.size())) return nullptr;
  return &it->inputs[index];
}

const mobrt_tensor* mobrt_interpreter_output_tensor(const mobrt_interpreter* it, int index) {
  if (!it || index < 0 || index >= static_cast<int>(it->outputs.size())) return nullptr;
  return &it->outputs[index];
}

mobrt_status mobrt_interpreter_cancel(mobrt_interpreter* it) {
  if (!it) return global_fail(MOBRT_INVALID_ARGUMENT, "interpreter is NULL");
  it->impl->Cancel();  // an atomic store: no claim, callable while another thread invokes
  return MOBRT_OK;
}

static const mobrt::TensorInfo* io_info(const mobrt_interpreter* it, int index, bool input, int* tensor) {
  if (!it) return nullptr;
  const Model& m = it->impl->model();
  const auto& v = input ? m.inputs : m.outputs;
  if (index < 0 || index >= static_cast<int>(v.size())) return nullptr;
  *tensor = v[index];
  return &m.tensors[v[index]];
}

const char* mobrt_interpreter_input_name(const mobrt_interpreter* it, int index) {
  int t;
  const mobrt::TensorInfo* info = io_info(it, index, true, &t);
  return info ? info->name.c_str() : nullptr;
}

const char* mobrt_interpreter_output_name(const mobrt_interpreter* it, int index) {
  int t;
  const mobrt::TensorInfo* info = io_info(it, index, false, &t);
  return info ? info->name.c_str() : nullptr;
}

static mobrt_status tensor_info(const mobrt_interpreter* it, int index, bool input, mobrt_dtype* dtype, int* rank,
                                int64_t* dims) {
  if (!it) return global_fail(MOBRT_INVALID_ARGUMENT, "interpreter is NULL");
  Claim claim(const_cast<mobrt_interpreter*>(it), false);
  if (claim.refused()) return claim.status();
  int t;
  const mobrt::TensorInfo* info = io_info(it, index, input, &t);
  if (!info) return global_fail(MOBRT_INVALID_ARGUMENT, std::string(input ? "input" : "output") + " index " +
                                                            std::to_string(index) + " out of range");
  const Interpreter::Tensor& x = it->impl->tensor(t);
  if (dtype) *dtype = static_cast<mobrt_dtype>(info->dtype);
  bool ready = it->impl->shapes_ready();
  int r = ready ? x.rank : static_cast<int>(info->dims.size());
  if (rank) *rank = r;
  if (dims)
    for (int d = 0; d < r; ++d) dims[d] = ready ? x.dims[d] : info->dims[d];
  if (!ready && input && dims) {
    // inputs remember resized dims even before every input is resolved
    (void)0;
  }
  return MOBRT_OK;
}

mobrt_status mobrt_interpreter_input_info(const mobrt_interpreter* it, int index, mobrt_dtype* dtype, int* rank,
                                          int64_t* dims) {
  return tensor_info(it, index, true, dtype, rank, dims);
}

mobrt_status mobrt_interpreter_output_info(const mobrt_interpreter* it, int index, mobrt_dtype* dtype, int* rank,
                                           int64_t* dims) {
  return tensor_info(it, index, false, dtype, rank, dims);
}

int mobrt_interpreter_input_index(const mobrt_interpreter* it, const char* name) {
  if (!it || !name) return -1;
  for (int i = 0; i < it->impl->num_inputs(); ++i)
    if (std::strcmp(mobrt_interpreter_input_name(it, i), name) == 0) return i;
  return -1;
}

int mobrt_interpreter_output_index(const mobrt_interpreter* it, const char* name) {
  if (!it || !name) return -1;
  for (int i = 0; i < it->impl->num_outputs(); ++i)
    if (std::strcmp(mobrt_interpreter_output_name(it, i), name) == 0) return i;
  return -1;
}

const char* mobrt_interpreter_input_dim_symbol(const mobrt_interpreter* it, int index, int dim) {
  int t;
  const mobrt::TensorInfo* info = io_info(it, index, true, &t);
  if (!info || dim < 0 || dim >= static_cast<int>(info->symbols.size()) || info->symbols[dim].empty()) return nullptr;
  return info->symbols[dim].c_str();
}

#define IT_GUARD(it, body)                                                             \
  if (!it) return global_fail(MOBRT_INVALID_ARGUMENT, "interpreter is NULL");          \
  Claim claim(it, true);                                                               \
  if (claim.refused()) return claim.status();                                          \
  return guard(&it->impl->last_error, [&]() -> Status { body; }, &it->reporter);

// For calls that return a value rather than a status: `fallback` when `it` is NULL
// or claimed by another thread (the reason is then in mobrt_interpreter_last_error).
#define IT_READ(it, fallback, expr)                                                    \
  if (!it) return fallback;                                                            \
  Claim claim(const_cast<mobrt_interpreter*>(it), false);                              \
  if (claim.refused()) return fallback;                                                \
  return expr;

mobrt_status mobrt_interpreter_resize_input(mobrt_interpreter* it, int index, int rank, const int64_t* dims) {
  IT_GUARD(it, {
    if (rank < 0 || rank > MOBRT_MAX_RANK) return Status::Error(StatusCode::kInvalidArgument, "rank out of range");
    return it->impl->Resize(index, rank, dims);
  })
}

mobrt_status mobrt_interpreter_set_input(mobrt_interpreter* it, int index, const void* data, size_t size) {
  IT_GUARD(it, return it->impl->SetInput(index, data, size))
}

mobrt_status mobrt_interpreter_set_input_pointer(mobrt_interpreter* it, int index, const void* data, size_t size) {
  IT_GUARD(it, return it->impl->SetInputPointer(index, data, size))
}

void* mobrt_interpreter_input_data(mobrt_interpreter* it, int index) {
  IT_READ(it, nullptr, it->impl->InputData(index))
}

mobrt_status mobrt_interpreter_invoke(mobrt_interpreter* it) { IT_GUARD(it, return it->impl->Invoke()) }

const void* mobrt_interpreter_output_data(const mobrt_interpreter* it, int index) {
  IT_READ(it, nullptr, it->impl->OutputData(index))
}

size_t mobrt_interpreter_output_size(const mobrt_interpreter* it, int index) {
  IT_READ(it, size_t{0},
          (index < 0 || index >= it->impl->num_outputs() || !it->impl->shapes_ready())
              ? size_t{0}
              : it->impl->tensor(it->impl->model().outputs[index]).bytes)
}

size_t mobrt_interpreter_arena_bytes(const mobrt_interpreter* it) { IT_READ(it, size_t{0}, it->impl->arena_bytes()) }
size_t mobrt_interpreter_activation_bytes(const mobrt_interpreter* it) {
  IT_READ(it, size_t{0}, it->impl->activation_bytes())
}

int mobrt_interpreter_profile_count(const mobrt_interpreter* it) {
  IT_READ(it, 0, static_cast<int>(it->impl->profile().size()))
}

mobrt_status mobrt_interpreter_profile_entry(const mobrt_interpreter* it, int index, mobrt_profile_entry* e) {
  if (!it || !e) return global_fail(MOBRT_INVALID_ARGUMENT, "NULL argument");
  Claim claim(const_cast<mobrt_interpreter*>(it), false);
  if (claim.refused()) return claim.status();
  const auto& p = it->impl->profile();
  if (index < 0 || index >= static_cast<int>(p.size())) return global_fail(MOBRT_INVALID_ARGUMENT, "profile index out of range");
  const mobrt::OpInfo& op = it->impl->model().ops[p[index].op_index];
  e->op_name = op.name.c_str();
  e->op_type = ::mobconv::formats::fb::EnumNameOpType(op.type);
  e->kernel = it->impl->kernel_name(p[index].op_index);
  e->microseconds = p[index].microseconds;
  return MOBRT_OK;
}

mobrt_status mobrt_interpreter_set_observer(mobrt_interpreter* it, mobrt_observer_fn fn, void* user) {
  if (!it) return global_fail(MOBRT_INVALID_ARGUMENT, "interpreter is NULL");
  Claim claim(it, true);
  if (claim.refused()) return claim.status();
  it->tensor_observer = nullptr;
  it->tensor_observer_user = nullptr;
  it->impl->set_observer(fn, user);
  return MOBRT_OK;
}

mobrt_status mobrt_interpreter_set_tensor_observer(mobrt_interpreter* it, mobrt_tensor_observer_fn fn, void* user) {
  if (!it) return global_fail(MOBRT_INVALID_ARGUMENT, "interpreter is NULL");
  Claim claim(it, true);
  if (claim.refused()) return claim.status();
  it->tensor_observer = fn;
  it->tensor_observer_user = user;
  it->impl->set_observer(fn ? tensor_observer_trampoline : nullptr, fn ? it : nullptr);
  return MOBRT_OK;
}

// Profile entry `index` of the last profiled invoke, or null (bad argument, busy).
static const mobrt::ProfileEntry* profile_at(const mobrt_interpreter* it, int index) {
  const auto& p = it->impl->profile();
  return (index < 0 || index >= static_cast<int>(p.size())) ? nullptr : &p[index];
}

const char* mobrt_interpreter_profile_op_name(const mobrt_interpreter* it, int index) {
  IT_READ(it, nullptr, profile_at(it, index) ? it->impl->model().ops[profile_at(it, index)->op_index].name.c_str()
                                             : nullptr)
}

const char* mobrt_interpreter_profile_op_type(const mobrt_interpreter* it, int index) {
  IT_READ(it, nullptr,
          profile_at(it, index)
              ? ::mobconv::formats::fb::EnumNameOpType(it->impl->model().ops[profile_at(it, index)->op_index].type)
              : nullptr)
}

const char* mobrt_interpreter_profile_kernel(const mobrt_interpreter* it, int index) {
  IT_READ(it, nullptr, profile_at(it, index) ? it->impl->kernel_name(profile_at(it, index)->op_index) : nullptr)
}

double mobrt_interpreter_profile_microseconds(const mobrt_interpreter* it, int index) {
  IT_READ(it, -1.0, profile_at(it, index) ? profile_at(it, index)->microseconds : -1.0)
}

}  // extern "C"
