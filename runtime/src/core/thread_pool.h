// thread_pool.h: a fixed-size pool (N-1 workers created once + the calling
// thread) with a blocking parallel_for. The split of [0, n) into chunks is
// static (depends only on n and the thread count) so results are
// reproducible across runs.
//
// Hand-off latency matters more than throughput here: a MobileNet layer takes
// 50-200 us, and waking a sleeping thread through a condition variable costs
// about as much (far more when a virtualized or idle core has to be woken).
// So between jobs, workers (and the caller waiting for them) spin on atomics
// for up to kSpinMicros before they fall back to sleeping on a condition
// variable; ops in a run then start at once, even across a single-threaded op
// of a millisecond, and an idle interpreter stops costing CPU 2 ms after its
// last job (pthreadpool and onnxruntime spin likewise).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "core/kernel.h"

namespace mobrt {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }
  // Calls fn(begin, end, thread) on min(n, num_threads) contiguous chunks; waits.
  void parallel_for(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn);

  static constexpr int kSpinMicros = 2000;

 private:
  void worker(int index);
  int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  std::atomic<uint64_t> generation_{0};  // bumped (under mu_) to publish a job
  std::atomic<int> pending_{0};          // workers still running the current job
  std::atomic<bool> stop_{false};
  // The current job: written before generation_ is bumped, read after it is seen.
  int64_t n_ = 0;
  int chunks_ = 0;
  FunctionRef<void(int64_t, int64_t, int)>* fn_ = nullptr;
};

}  // namespace mobrt
