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

struct mobrt_model { std::unique_ptr<Model> impl; };
struct mobrt_options { mobrt::InterpreterOptions o; };
struct mobrt_interpreter {
  std::unique_ptr<Interpreter> impl;
  std::atomic<std::thread::id> owner{std::thread::id()};  // thread inside a call, or none
  bool delete_pending = false;  // deleted from its own observer callback: free when the call ends
};

namespace {

thread_local std::string g_error;

mobrt_status to_c(const Status& s) { return static_cast<mobrt_status>(s.code); }

mobrt_status global_fail(mobrt_status code, const std::string& msg) {
  g_error = msg;
  return code;
}

template <typename F>
mobrt_status guard(std::string* err, F&& f) {
  try {
    Status s = f();
    if (!s.ok() && err) *err = s.message;
    if (!s.ok() && !err) g_error = s.message;
    return to_c(s);
  } catch (const std::bad_alloc&) {
    if (err) *err = "out of memory"; else g_error = "out of memory";
    return MOBRT_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    std::string m = std::string("internal error: ") + e.what();
    if (err) *err = m; else g_error = m;
    return MOBRT_INTERNAL;
  } catch (...) {
    if (err) *err = "internal error"; else g_error = "internal error";
    return MOBRT_INTERNAL;
  }
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
  }
  mobrt_interpreter* it_;
  bool owned_ = false;
  bool refused_ = false;
  mobrt_status status_ = MOBRT_OK;
};

}  // namespace

extern "C" {

#define MOBRT_STR2(x) #x
#define MOBRT_STR(x) MOBRT_STR2(x)
const char* mobrt_version(void) {
  return MOBRT_STR(MOBRT_VERSION_MAJOR) "." MOBRT_STR(MOBRT_VERSION_MINOR) "." MOBRT_STR(MOBRT_VERSION_PATCH);
}
uint32_t mobrt_format_version_major(void) { return 1; }
const char* mobrt_global_last_error(void) { return g_error.c_str(); }

const char* mobrt_status_name(mobrt_status s) {
  switch (s) {
    case MOBRT_OK: return "MOBRT_OK";
    case MOBRT_INVALID_ARGUMENT: return "MOBRT_INVALID_ARGUMENT";
    case MOBRT_INVALID_MODEL: return "MOBRT_INVALID_MODEL";
    case MOBRT_UNSUPPORTED: return "MOBRT_UNSUPPORTED";
    case MOBRT_SHAPE_ERROR: return "MOBRT_SHAPE_ERROR";
    case MOBRT_OUT_OF_MEMORY: return "MOBRT_OUT_OF_MEMORY";
    case MOBRT_IO_ERROR: return "MOBRT_IO_ERROR";
    case MOBRT_NOT_READY: return "MOBRT_NOT_READY";
    case MOBRT_INTERNAL: return "MOBRT_INTERNAL";
    case MOBRT_BUSY: return "MOBRT_BUSY";
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
    if (s.ok()) *out = new mobrt_model{std::move(m)};
    return s;
  });
}

mobrt_status mobrt_model_create_from_buffer(const void* data, size_t size, int copy, mobrt_model** out) {
  if (!out) return global_fail(MOBRT_INVALID_ARGUMENT, "out is NULL");
  *out = nullptr;
  return guard(nullptr, [&] {
    std::unique_ptr<Model> m;
    Status s = Model::LoadBuffer(data, size, copy != 0, &m);
    if (s.ok()) *out = new mobrt_model{std::move(m)};
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
                  MOBRT_INTERNAL == int(mobrt::StatusCode::kInternal),
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

mobrt_status mobrt_interpreter_create(const mobrt_model* model, const mobrt_options* options,
                                      mobrt_interpreter** out) {
  if (!out) return global_fail(MOBRT_INVALID_ARGUMENT, "out is NULL");
  *out = nullptr;
  if (!model) return global_fail(MOBRT_INVALID_ARGUMENT, "model is NULL");
  return guard(nullptr, [&] {
    mobrt::InterpreterOptions o = options ? options->o : mobrt::InterpreterOptions();
    std::unique_ptr<Interpreter> it(new Interpreter(*model->impl, o));
    Status s = it->Init();
    if (s.ok()) *out = new mobrt_interpreter{std::move(it)};
    return s;
  });
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
  return guard(&it->impl->last_error, [&]() -> Status { body; });

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
  it->impl->set_observer(fn, user);
  return MOBRT_OK;
}

}  // extern "C"
