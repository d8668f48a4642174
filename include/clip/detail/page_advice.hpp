#pragma once
// Hints to the virtual-memory system about ranges of a mapping, as madvise takes them: whole
// pages. Populating covers every page the range touches; releasing takes only the pages wholly
// inside it, so data beside the range is never dropped. Where madvise or an advice is missing
// (other systems, kernels before 5.14 for the populate advices) the hint does nothing.

#include <cstddef>
#include <cstdint>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace clip::detail {

enum class PageAdvice {
  PopulateRead,   // map the pages in now, in one call instead of a fault per few pages
  PopulateWrite,  // back the pages with memory now, likewise
  Release,        // the pages will not be read soon: they may leave this process's memory
};

inline void advise_pages(const void* begin, std::size_t bytes, PageAdvice advice) {
#if defined(__unix__) || defined(__APPLE__)
  int code = -1;
  bool covering = true;
  switch (advice) {
#ifdef MADV_POPULATE_READ
    case PageAdvice::PopulateRead: code = MADV_POPULATE_READ; break;
#endif
#ifdef MADV_POPULATE_WRITE
    case PageAdvice::PopulateWrite: code = MADV_POPULATE_WRITE; break;
#endif
    case PageAdvice::Release:
      code = MADV_DONTNEED;
      covering = false;
      break;
    default: break;
  }
  if (code < 0 || bytes == 0) return;
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto start = reinterpret_cast<std::uintptr_t>(begin);
  const std::uintptr_t first = covering ? start / page * page : (start + page - 1) / page * page;
  const std::uintptr_t last = covering ? (start + bytes + page - 1) / page * page : (start + bytes) / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, code);
#else
  (void)begin;
  (void)bytes;
  (void)advice;
#endif
}

}  // namespace clip::detail
