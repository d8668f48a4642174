#pragma once
// Shared by the concurrency test programs (test_concurrency*.cpp).

#include <atomic>
#include <thread>
#include <vector>

namespace clip_test {

/// Runs body(thread_index) on `threads` threads started together; returns when all are done.
template <typename Body>
void on_threads(int threads, const Body& body) {
  std::atomic<int> waiting{threads};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      waiting.fetch_sub(1);
      while (waiting.load() > 0) std::this_thread::yield();  // start at once, to overlap
      body(t);
    });
  for (std::thread& thread : pool) thread.join();
}

}  // namespace clip_test
