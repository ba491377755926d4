#include "runtime/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace loom {
namespace {

thread_local bool t_in_parallel = false;

// Spin this many pause instructions (roughly 50-100 us) before sleeping on a
// condition variable: kernels issue parallel regions back to back (GEMM tiles,
// one op after another), and a futex sleep/wake round trip costs about as
// much as a small region's work.
constexpr int kSpins = 2000;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// A pool of NumThreads()-1 workers; the caller runs the first chunk itself.
class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 0; i + 1 < threads; ++i) workers_.emplace_back([this] { Loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return int(workers_.size()) + 1; }

  void Run(int chunks, const std::function<void(int)>& chunk_fn) {
    std::unique_lock<std::mutex> run_lock(run_mu_);  // one parallel region at a time
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &chunk_fn;
      next_ = 1;
      chunks_ = chunks;
      pending_ = chunks - 1;
      ++generation_;
    }
    cv_.notify_all();
    t_in_parallel = true;
    chunk_fn(0);
    // Help with remaining chunks, then wait for the workers.
    for (;;) {
      int c;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (next_ >= chunks_) break;
        c = next_++;
      }
      chunk_fn(c);
      std::lock_guard<std::mutex> lock(mu_);
      --pending_;
    }
    t_in_parallel = false;
    for (int i = 0; i < kSpins && pending_.load(std::memory_order_acquire) != 0; ++i) CpuRelax();
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return pending_ == 0; });
    fn_ = nullptr;
  }

 private:
  void Loop() {
    t_in_parallel = true;
    uint64_t seen = 0;
    for (;;) {
      for (int i = 0; i < kSpins && generation_.load(std::memory_order_acquire) == seen &&
                      !stop_.load(std::memory_order_relaxed);
           ++i) {
        CpuRelax();
      }
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || (generation_ != seen && next_ < chunks_); });
      if (stop_) return;
      while (next_ < chunks_) {
        const int c = next_++;
        const auto* fn = fn_;
        lock.unlock();
        (*fn)(c);
        lock.lock();
        if (--pending_ == 0) done_cv_.notify_all();
      }
      seen = generation_;
    }
  }

  std::mutex run_mu_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* fn_ = nullptr;
  int next_ = 0, chunks_ = 0;
  // Written under mu_; atomic so that spinning threads may read them unlocked.
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

int DefaultThreads() {
  if (const char* env = std::getenv("LOOM_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::mutex g_pool_mu;
Pool* g_pool = nullptr;

Pool& GetPool() {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  if (g_pool == nullptr) g_pool = new Pool(DefaultThreads());
  return *g_pool;
}

}  // namespace

int NumThreads() { return GetPool().size(); }

void SetNumThreads(int n) {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  delete g_pool;
  g_pool = new Pool(std::max(1, n));
}

void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  Pool& pool = GetPool();
  // Floor, so that every chunk (but the last) has at least `grain` items.
  const int64_t max_chunks = std::min<int64_t>(pool.size(), n / grain);
  if (max_chunks <= 1 || t_in_parallel) {
    fn(0, n);
    return;
  }
  const int chunks = int(max_chunks);
  const int64_t per = (n + chunks - 1) / chunks;
  pool.Run(chunks, [&](int c) {
    const int64_t b = c * per, e = std::min(n, b + per);
    if (b < e) fn(b, e);
  });
}

}  // namespace loom
