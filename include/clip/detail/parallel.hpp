#pragma once
// clip's own work splitting: a small pool of persistent threads that share out the parts of a
// job (output columns of a product, attention heads, whole images or texts of a batch). Eigen
// runs single-threaded inside each part.
//
// Why not OpenMP (Eigen's own product threading): its threads wait for work by spinning
// (libgomp spins ~300k pause instructions, milliseconds on recent Xeons) and Eigen's GEMM spins
// between its threads too. On cores shared with other programs a spinning thread takes the CPU
// the thread it waits for needs: a 2-thread encode of one prompt took 270 ms instead of 17 ms
// on this project's loaded 2-core machine. Here waiting threads spin only briefly, then sleep,
// and parts are claimed dynamically: when a worker is slow to wake the caller does its part.

#include <clip/detail/eigen.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace clip::detail {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/// While alive, Eigen's products on this thread stay single-threaded (OpenMP's per-thread
/// nthreads-var, which Eigen reads unless Eigen::setNbThreads was called), so they never nest
/// an OpenMP team inside clip's own threads.
class SerialEigenScope {
 public:
#ifdef _OPENMP
  SerialEigenScope() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SerialEigenScope() { omp_set_num_threads(saved_); }

 private:
  int saved_;
#else
  SerialEigenScope() = default;
#endif
 public:
  SerialEigenScope(const SerialEigenScope&) = delete;
  SerialEigenScope& operator=(const SerialEigenScope&) = delete;
};

class ThreadPool {
 public:
  static ThreadPool& instance() {
    static ThreadPool pool;
    return pool;
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() { stop_workers(); }

  /// Threads a job may use, the caller included.
  int threads() const { return threads_.load(); }

  void set_threads(int threads) {
    std::lock_guard<std::mutex> busy(run_mutex_);
    threads = threads > 0 ? threads : default_threads();
    if (threads == threads_.load()) return;
    stop_workers();
    threads_.store(threads);
  }

  /// True on a pool worker, or on a caller while it runs a job.
  static bool& inside() {
    thread_local bool inside_job = false;
    return inside_job;
  }

  /// Calls body(part) for part in [0, parts), spread over the pool and the calling thread;
  /// returns when all are done and rethrows the first exception. A nested call, or one made
  /// while another thread's job holds the pool, runs serially on the calling thread.
  void run(int parts, const std::function<void(int)>& body) {
    std::unique_lock<std::mutex> busy(run_mutex_, std::defer_lock);
    if (parts <= 1 || threads_.load() <= 1 || inside() || !busy.try_lock()) {
      for (int part = 0; part < parts; ++part) body(part);
      return;
    }
    start_workers();
    error_ = nullptr;
    job_.store(&body);
    parts_.store(parts);
    remaining_.store(parts);
    next_.store(0);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    inside() = true;
    work();
    inside() = false;
    for (int spin = 0; spin < kSpins && remaining_.load() != 0; ++spin) relax(spin);
    if (remaining_.load() != 0) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [&] { return remaining_.load() == 0; });
    }
    job_.store(nullptr);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  static constexpr int kSpins = 2000;

  ThreadPool() : threads_(default_threads()) {}

  static int default_threads() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

  static void relax(int spin) {
    if (spin < 200)
      cpu_relax();
    else
      std::this_thread::yield();
  }

  /// Called by run() before it publishes its job: a new worker takes the generation before that
  /// job as already seen, so it joins the job however late it starts. (Reading the generation
  /// in the new thread lost the first job whenever the thread started after run() published it.)
  void start_workers() {
    const std::uint64_t seen = generation_.load();
    while (static_cast<int>(workers_.size()) < threads_.load() - 1)
      workers_.emplace_back([this, seen] { worker(seen); });
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& worker : workers_) worker.join();
    workers_.clear();
    stop_ = false;
  }

  void worker(std::uint64_t seen) {
#ifdef _OPENMP
    omp_set_num_threads(1);  // Eigen single-threaded here, see SerialEigenScope
#endif
    inside() = true;
    for (;;) {
      for (int spin = 0; spin < kSpins && generation_.load() == seen && !stop_.load(); ++spin) relax(spin);
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load() != seen || stop_.load(); });
        if (stop_.load()) return;
        seen = generation_.load();
      }
      work();
    }
  }

  /// Claims and runs parts until none is left.
  void work() {
    for (;;) {
      const int part = next_.fetch_add(1);
      if (part >= parts_.load()) return;
      const std::function<void(int)>* job = job_.load();
      try {
        (*job)(part);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      if (remaining_.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_all();
      }
    }
  }

  std::mutex run_mutex_;  // one job at a time
  std::mutex mutex_;      // guards sleeping and waking
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  std::atomic<int> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<const std::function<void(int)>*> job_{nullptr};
  std::atomic<int> parts_{0}, next_{0}, remaining_{0};
  std::exception_ptr error_;
};

/// Threads clip may use here: clip::set_num_threads' value, 1 inside a job.
inline int available_threads() { return ThreadPool::inside() ? 1 : ThreadPool::instance().threads(); }

/// Calls body(i) for i in [0, count) on up to `threads` threads; the first exception is rethrown.
template <typename Body>
void parallel_for(int count, int threads, const Body& body) {
  if (std::min(threads, count) <= 1) {
    for (int i = 0; i < count; ++i) body(i);
    return;
  }
  ThreadPool::instance().run(count, std::function<void(int)>(std::cref(body)));
}

/// [begin, end) of part `part` of `parts` near-equal slices of [0, size), cut at multiples of `align`.
inline std::pair<Eigen::Index, Eigen::Index> slice(Eigen::Index size, int parts, int part, Eigen::Index align = 16) {
  const auto cut = [&](int p) {
    if (p >= parts) return size;
    const Eigen::Index raw = size * p / parts;
    return std::min(size, (raw + align / 2) / align * align);
  };
  return {cut(part), cut(part + 1)};
}

}  // namespace clip::detail
