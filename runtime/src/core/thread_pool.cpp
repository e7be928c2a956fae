// thread_pool.cpp: see thread_pool.h. A job is (n, fn) published by bumping
// generation_; chunk i = [i*n/c, (i+1)*n/c). Waiting is spin-then-sleep on
// both sides; every sleep re-checks its condition under mu_, and every state
// change that a sleeper waits for is made (or followed by a notify) under mu_,
// so no wake-up is lost.
#include "core/thread_pool.h"

#include <chrono>

namespace mobrt {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spins until done() or the spin window has passed; true if done() became true.
template <typename Done>
bool spin_until(Done done) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicros);
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 63 && clock::now() > deadline) return done();
  }
}

inline void chunk(int64_t n, int chunks, int i, int64_t* b, int64_t* e) {
  *b = n * i / chunks;
  *e = n * (i + 1) / chunks;
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) : num_threads_(num_threads < 1 ? 1 : num_threads) {
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back(&ThreadPool::worker, this, i);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto has_job = [&] {
      return stop_.load(std::memory_order_acquire) ||
             generation_.load(std::memory_order_acquire) != seen;
    };
    if (!spin_until(has_job)) {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, has_job);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    if (index < chunks_) {
      int64_t b, e;
      chunk(n_, chunks_, index, &b, &e);
      if (b < e) (*fn_)(b, e, index);
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);  // pairs with the caller's sleep below
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn) {
  if (n <= 0) return;
  int chunks = static_cast<int>(n < num_threads_ ? n : num_threads_);
  if (chunks <= 1 || workers_.empty()) {
    fn(0, n, 0);
    return;
  }
  n_ = n;
  chunks_ = chunks;
  fn_ = &fn;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  int64_t b, e;
  chunk(n, chunks, 0, &b, &e);
  fn(b, e, 0);
  auto all_done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!spin_until(all_done)) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, all_done);
  }
}

}  // namespace mobrt
