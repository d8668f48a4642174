#pragma once
// MappedFile: a whole file's bytes, read-only. POSIX systems memory-map it, so tensors used in
// place are paged in on first use and shared between processes; elsewhere it is read.

#include <clip/detail/page_advice.hpp>
#include <clip/detail/read_file.hpp>
#include <clip/error.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define CLIP_HAS_MMAP 1
#endif

namespace clip::detail {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
#ifdef CLIP_HAS_MMAP
    const int fd = open_regular_file(path, size_);
    if (size_ > 0) {
      void* mapping = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (mapping == MAP_FAILED) {
        const int error = errno;
        ::close(fd);
        throw Error(path + ": cannot memory-map (" + std::strerror(error) + ")");
      }
      mapping_ = static_cast<const std::uint8_t*>(mapping);
    }
    ::close(fd);
#else
    const std::string contents = read_file(path, SIZE_MAX);
    buffer_.assign(contents.begin(), contents.end());
    size_ = buffer_.size();
    mapping_ = reinterpret_cast<const std::uint8_t*>(buffer_.data());
#endif
  }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept { swap(other); }
  MappedFile& operator=(MappedFile&& other) noexcept {
    swap(other);
    return *this;
  }
  ~MappedFile() {
#ifdef CLIP_HAS_MMAP
    if (mapping_ != nullptr) ::munmap(const_cast<std::uint8_t*>(mapping_), size_);
#endif
  }

  const std::uint8_t* data() const { return mapping_; }
  std::size_t size() const { return size_; }

  /// Maps the pages of [begin, begin + bytes) in now (see PageAdvice::PopulateRead).
  void populate(const std::uint8_t* begin, std::size_t bytes) const { advise(begin, bytes, PageAdvice::PopulateRead); }

  /// Lets the system drop the whole pages inside [begin, begin + bytes) from this process's
  /// memory; they are read from the file again if they are used. Contents never change.
  void release(const std::uint8_t* begin, std::size_t bytes) const { advise(begin, bytes, PageAdvice::Release); }

 private:
  /// Only a mapping takes page advice: read into buffer_, the bytes are ordinary heap memory.
  void advise(const std::uint8_t* begin, std::size_t bytes, PageAdvice advice) const {
#ifdef CLIP_HAS_MMAP
    if (mapping_ != nullptr) advise_pages(begin, bytes, advice);
#else
    (void)begin;
    (void)bytes;
    (void)advice;
#endif
  }

  void swap(MappedFile& other) noexcept {
    std::swap(mapping_, other.mapping_);
    std::swap(size_, other.size_);
    std::swap(buffer_, other.buffer_);
  }

  const std::uint8_t* mapping_ = nullptr;
  std::size_t size_ = 0;
  std::vector<char> buffer_;  // only used without mmap
};

}  // namespace clip::detail
