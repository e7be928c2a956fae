// interpreter.h: one executable instance of a Model: kernels selected and
// prepared once, shapes inferred (again after each resize), a static arena
// plan, a fixed thread pool, invoke. Used by one thread at a time.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "../../include/mobrt.h"
#include "core/kernel.h"
#include "core/model.h"
#include "core/thread_pool.h"

namespace mobrt {

struct InterpreterOptions {
  int num_threads = 1;
  int backend = 0;
  bool allow_fp16 = false;
  Isa max_isa = Isa::Any;
  bool profiling = false;
};

// Ops whose output size depends on input values (planned at an upper bound).
bool has_dynamic_shape(OpType type);

struct ProfileEntry {
  int op_index;
  double microseconds;
};

using Observer = mobrt_observer_fn;

class Interpreter {
 public:
  Interpreter(const Model& model, const InterpreterOptions& options);
  ~Interpreter();
  Status Init();  // select kernels, prepare, infer shapes, plan

  const Model& model() const { return model_; }
  int num_inputs() const { return static_cast<int>(model_.inputs.size()); }
  int num_outputs() const { return static_cast<int>(model_.outputs.size()); }

  struct Tensor {
    DType dtype = DType::F32;
    int rank = 0;
    int64_t dims[kMaxRank] = {};
    void* data = nullptr;
    size_t bytes = 0;
    size_t capacity = 0;          // planned bytes (bytes may shrink: data-dependent sizes)
    // kDynamic: an output of an op whose shapes are inferred at invoke (they depend on
    // values computed at run time); it lives in `dynamic`, outside the arena.
    enum Kind { kUnused, kConstant, kInput, kActivation, kFolded, kDynamic } kind = kUnused;
    int64_t offset = -1;          // in the arena (inputs, activations)
    void* heap = nullptr;         // folded storage
    void* dynamic = nullptr;      // kDynamic storage, kept and grown across invokes
    size_t dynamic_capacity = 0;
    int first = 0, last = 0;      // liveness (op indices)
  };
  const Tensor& tensor(int index) const { return tensors_[index]; }

  Status Resize(int input, int rank, const int64_t* dims);
  Status SetInput(int input, const void* data, size_t size);
  Status SetInputPointer(int input, const void* data, size_t size);
  void* InputData(int input);
  Status Invoke();
  // Any thread: the running Invoke stops before its next operator (kCancelled).
  // Invoke clears the request when it starts.
  void Cancel() { cancel_.store(true, std::memory_order_relaxed); }
  const void* OutputData(int output) const;
  bool shapes_ready() const { return ready_; }
  size_t arena_bytes() const { return arena_size_; }
  size_t activation_bytes() const { return activation_bytes_; }
  const std::vector<ProfileEntry>& profile() const { return profile_; }
  const char* kernel_name(int op) const;
  void set_observer(Observer fn, void* user) { observer_ = fn; observer_user_ = user; }

  std::string last_error;

 private:
  struct OpState {
    const Kernel* kernel = nullptr;
    Isa isa = Isa::Scalar;
    void* state = nullptr;
    bool folded = false;
    bool empty_output = false;  // every output has zero elements: the kernel is not run
    bool at_load = false;       // folded once at load (FoldAtLoad); Prepare skips it
    bool at_invoke = false;     // shapes inferred at invoke (InferAtInvoke), outputs kDynamic
    size_t scratch = 0;
  };
  Status FoldAtLoad(int op, bool* folded);
  Status Prepare();            // shape inference + folding + plan
  Status Plan();
  Status TakeDynamicShapes(int op, const std::vector<TensorView>& out);
  Status CheckOutput(int t, int o, const TensorView& v, const std::string& where, size_t* bytes) const;
  void DeferToInvoke(int op);
  Status InferAtInvoke(int op);
  void BuildViews(int op, std::vector<TensorView>* in, std::vector<TensorView>* out);
  void FillView(int t, TensorView* v) const;
  KernelContext MakeContext(int op, std::vector<TensorView>& in, std::vector<TensorView>& out, void** state);
  void FreeFolded();

  const Model& model_;
  InterpreterOptions options_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<Tensor> tensors_;
  std::vector<OpState> ops_;
  std::vector<void*> load_time_;  // storage of the outputs FoldAtLoad computed
  std::vector<std::vector<int64_t>> input_dims_;  // current dims per graph input (-1 unresolved)
  std::vector<const void*> user_inputs_;
  bool ready_ = false;
  bool have_outputs_ = false;
  void* arena_ = nullptr;
  size_t arena_size_ = 0, arena_capacity_ = 0;
  size_t activation_bytes_ = 0;
  void* scratch_ = nullptr;
  size_t scratch_size_ = 0;
  std::vector<ProfileEntry> profile_;
  Observer observer_ = nullptr;
  void* observer_user_ = nullptr;
  std::atomic<bool> cancel_{false};
};

}  // namespace mobrt
