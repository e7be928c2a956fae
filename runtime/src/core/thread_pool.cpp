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

bool ThreadPool::run_chunks(uint32_t gen) {
  bool finished_last = false;
  uint64_t c = claim_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(c >> 32) != gen) return finished_last;  // a later job: not ours
    const int chunks = static_cast<int>((c >> 16) & 0xffff), next = static_cast<int>(c & 0xffff);
    if (next >= chunks) return finished_last;
    if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    int64_t b, e;
    chunk(n_, chunks, next, &b, &e);
    if (b < e) (*fn_)(b, e, next);
    if (done_chunks_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) finished_last = true;
    c = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker(int /*index*/) {
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
    if (run_chunks(static_cast<uint32_t>(seen))) {
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
  fn_ = &fn;
  done_chunks_.store(0, std::memory_order_relaxed);
  uint32_t gen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gen = static_cast<uint32_t>(generation_.load(std::memory_order_relaxed) + 1);
    claim_.store((static_cast<uint64_t>(gen) << 32) | (static_cast<uint64_t>(chunks) << 16),
                 std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  run_chunks(gen);  // the caller claims too: an unscheduled worker's chunk is not waited for
  auto all_done = [&] { return done_chunks_.load(std::memory_order_acquire) == chunks; };
  if (!spin_until(all_done)) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, all_done);
  }
}

}  // namespace mobrt
