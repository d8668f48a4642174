#pragma once
// The number of threads clip uses inside matrix products. Eigen parallelises its products with
// OpenMP, so this has an effect only in programs compiled with -fopenmp (the project's tools
// are); without it everything runs on the calling thread.

#include <Eigen/Core>

namespace clip {

/// Sets the threads used by later encodes in this process; 0 or less means "all cores".
inline void set_num_threads(int threads) { Eigen::setNbThreads(threads > 0 ? threads : 0); }

inline int num_threads() { return Eigen::nbThreads(); }

}  // namespace clip
