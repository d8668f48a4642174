#pragma once
// Matrix aliases shared by every component. Batches are row-major: one item per row.

#include <clip/detail/eigen.hpp>
#include <cstdint>

namespace clip {

/// A row-major dynamic matrix; the library's batch layout (row i is item i).
template <typename Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Token ids, one text per row, context_length columns (SOT, BPE ids, EOT, zero padding).
using TokenMatrix = RowMatrix<std::int32_t>;

}  // namespace clip
