#pragma once
// WeightArena: one allocation for all of a model's packed weights, aligned for SIMD loads.
// On Linux it is an anonymous mapping whose parts each packing thread populates in one system
// call before writing them (populate): ~150,000 separate page faults for a ViT-B/32 model cost
// about as much as the packing itself. Transparent huge pages are not requested: they made one
// image ~5% faster here, but the first load of a process took up to 1.8 s instead of 0.3 s
// while the kernel compacted memory for them.

#include <clip/detail/page_advice.hpp>
#include <clip/error.hpp>

#include <clip/detail/eigen.hpp>

#include <cstddef>
#include <string>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace clip::detail {

template <typename Scalar>
class WeightArena {
 public:
  WeightArena() = default;

  explicit WeightArena(std::size_t count) : bytes_(count * sizeof(Scalar)) {
    if (count == 0) return;
#if defined(__linux__)
    void* memory = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) memory = nullptr;
#else
    void* memory = Eigen::internal::aligned_malloc(bytes_);  // throws std::bad_alloc on failure
#endif
    if (memory == nullptr)
      throw Error("cannot allocate " + std::to_string(bytes_ >> 20) + " MiB for the packed weights");
    values_ = static_cast<Scalar*>(memory);
  }

  WeightArena(const WeightArena&) = delete;
  WeightArena& operator=(const WeightArena&) = delete;
  WeightArena(WeightArena&& other) noexcept { swap(other); }
  WeightArena& operator=(WeightArena&& other) noexcept {
    swap(other);
    return *this;
  }
  ~WeightArena() {
    if (values_ == nullptr) return;
#if defined(__linux__)
    ::munmap(values_, bytes_);
#else
    Eigen::internal::aligned_free(values_);
#endif
  }

  Scalar* data() { return values_; }
  std::size_t size() const { return bytes_ / sizeof(Scalar); }

  /// Backs [begin, begin + count) with memory now, in one call instead of a fault per page
  /// (a hint: without it the pages are faulted in as they are written).
  void populate(Scalar* begin, std::size_t count) {
    advise_pages(begin, count * sizeof(Scalar), PageAdvice::PopulateWrite);
  }

 private:
  void swap(WeightArena& other) noexcept {
    std::swap(values_, other.values_);
    std::swap(bytes_, other.bytes_);
  }

  Scalar* values_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace clip::detail
