// thread_pool.h: a fixed-size pool (N-1 workers created once + the calling
// thread) with a blocking parallel_for. The split of [0, n) into chunks is
// static (depends only on n and the thread count) so results are
// reproducible across runs; which thread runs a chunk is not: chunks are
// claimed from an atomic counter, by the caller too, so a worker that the OS
// has not scheduled yet (a loaded phone, a shared CI machine) never holds the
// job up -- the caller runs its chunk instead. fn's `thread` argument is the
// chunk's index (< num_threads), so per-thread scratch indexed by it stays
// exclusive and the arithmetic of each chunk is the same whoever runs it.
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
  // The current job's claim word: generation (high 32 bits) | chunk count (bits
  // 16..31) | next unclaimed chunk (low 16 bits). A successful compare-exchange
  // claims a chunk of exactly that job.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int> done_chunks_{0};      // chunks of the current job finished
  std::atomic<bool> stop_{false};
  // The current job: written before claim_ is published, read after a claim.
  int64_t n_ = 0;
  FunctionRef<void(int64_t, int64_t, int)>* fn_ = nullptr;
  // Claims and runs chunks of job `gen` until none is left; true if it ran the last one.
  bool run_chunks(uint32_t gen);
};

}  // namespace mobrt
