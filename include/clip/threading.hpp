#pragma once
// The number of threads clip's encoders use. clip splits the work itself (see
// detail/parallel.hpp): one image or prompt is shared out by attention heads and MLP columns,
// larger batches by whole images/texts. Eigen's products run single-threaded inside, so the
// setting works the same with or without OpenMP.

#include <clip/detail/parallel.hpp>

namespace clip {

/// Sets the threads later encodes in this process use (the calling thread included); 0 or
/// less means all cores, the default.
inline void set_num_threads(int threads) { detail::ThreadPool::instance().set_threads(threads); }

inline int num_threads() { return detail::ThreadPool::instance().threads(); }

}  // namespace clip
