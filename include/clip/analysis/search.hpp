#pragma once
// Nearest neighbours by cosine similarity over a large collection of embeddings.
//
// exact_search: every row is scored, a block of rows at a time (a matrix product of the block
// with all queries, then the block's row norms), keeping each query's best k in a small heap;
// blocks are shared out over clip's threads. Rows are read straight from memory (e.g. a
// memory-mapped .npy), so the collection need not fit in RAM twice, only the block scores.
//
// Approximate search (hnswlib) is in approximate_search.hpp; recall_at_k measures it here.

#include <clip/detail/compilation.hpp>
#include <clip/detail/parallel.hpp>
#include <clip/error.hpp>
#include <clip/types.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace clip {

/// One result: the row of the collection and its cosine similarity to the query.
struct SearchHit {
  std::size_t row = 0;
  float score = 0;
};

/// Better first: higher score, then lower row (so ties come out the same every time).
inline bool better_hit(const SearchHit& a, const SearchHit& b) {
  return a.score != b.score ? a.score > b.score : a.row < b.row;
}

namespace detail {

/// Keeps the best k hits seen; a heap with the worst kept hit on top.
class TopK {
 public:
  explicit TopK(std::size_t k) : k_(k) { hits_.reserve(k); }
  void offer(const SearchHit& hit) {
    if (k_ == 0) return;
    if (hits_.size() < k_) {
      hits_.push_back(hit);
      std::push_heap(hits_.begin(), hits_.end(), better_hit);
    } else if (better_hit(hit, hits_.front())) {
      std::pop_heap(hits_.begin(), hits_.end(), better_hit);
      hits_.back() = hit;
      std::push_heap(hits_.begin(), hits_.end(), better_hit);
    }
  }
  const std::vector<SearchHit>& hits() const { return hits_; }
  std::vector<SearchHit> sorted() const {
    std::vector<SearchHit> out = hits_;
    std::sort(out.begin(), out.end(), better_hit);
    return out;
  }

 private:
  std::size_t k_;
  std::vector<SearchHit> hits_;
};

}  // namespace detail

/// A row-major float32 [rows, dim] collection in memory (not copied), with its row numbers
/// starting at `first_row` (for collections made of several files).
struct EmbeddingBlock {
  const float* data = nullptr;
  std::size_t rows = 0;
  std::size_t dim = 0;
  std::size_t first_row = 0;
};

/// The k rows of `blocks` with the highest cosine similarity to each query (row of `queries`),
/// best first. Zero rows (e.g. missing captions) score 0.
std::vector<std::vector<SearchHit>> exact_search(const std::vector<EmbeddingBlock>& blocks,
                                                 const RowMatrix<float>& queries, std::size_t k,
                                                 std::size_t block_rows = 16384);

/// Of each query's true top k (`exact`), the share `approximate` found: recall@k.
double recall_at_k(const std::vector<std::vector<SearchHit>>& approximate,
                   const std::vector<std::vector<SearchHit>>& exact);

// Compiled once in clip_compiled under separate compilation (clip/detail/compilation.hpp).
#if CLIP_HEADER_DEFINITIONS

CLIP_INLINE std::vector<std::vector<SearchHit>> exact_search(const std::vector<EmbeddingBlock>& blocks,
                                                             const RowMatrix<float>& queries, std::size_t k,
                                                             std::size_t block_rows) {
const auto dim = static_cast<std::size_t>(queries.cols());
for (const EmbeddingBlock& block : blocks)
  if (block.rows && block.dim != dim)
    throw Error("exact_search: collection rows have " + std::to_string(block.dim) + " values, queries " +
                std::to_string(dim));
if (block_rows == 0) throw Error("exact_search: block_rows must be at least 1");
// Normalised queries: the score is then q . x / |x|.
RowMatrix<float> unit = queries;
for (Eigen::Index q = 0; q < unit.rows(); ++q) {
  const float norm = unit.row(q).norm();
  if (norm > 0) unit.row(q) /= norm;
}
struct Piece {
  const EmbeddingBlock* block;
  std::size_t begin, end;
};
std::vector<Piece> pieces;
for (const EmbeddingBlock& block : blocks)
  for (std::size_t begin = 0; begin < block.rows; begin += block_rows)
    pieces.push_back({&block, begin, std::min(block.rows, begin + block_rows)});

const auto query_count = static_cast<std::size_t>(unit.rows());
const int threads = std::max(1, std::min<int>(detail::available_threads(), static_cast<int>(pieces.size())));
std::vector<std::vector<detail::TopK>> partial(threads, std::vector<detail::TopK>(query_count, detail::TopK(k)));
[[maybe_unused]] const detail::SerialEigenScope serial_eigen;
detail::parallel_for(threads, threads, [&](int part) {
  RowMatrix<float> scores;
  for (std::size_t p = part; p < pieces.size(); p += threads) {
    const Piece& piece = pieces[p];
    const auto rows = static_cast<Eigen::Index>(piece.end - piece.begin);
    const Eigen::Map<const RowMatrix<float>> block(piece.block->data + piece.begin * dim, rows,
                                                   static_cast<Eigen::Index>(dim));
    scores.noalias() = block * unit.transpose();  // [rows, queries]
    const Eigen::VectorXf norms = block.rowwise().norm();
    for (Eigen::Index r = 0; r < rows; ++r) {
      const float norm = norms(r);
      const std::size_t row = piece.block->first_row + piece.begin + static_cast<std::size_t>(r);
      for (std::size_t q = 0; q < query_count; ++q)
        partial[part][q].offer({row, norm > 0 ? scores(r, static_cast<Eigen::Index>(q)) / norm : 0.0f});
    }
  }
});
std::vector<std::vector<SearchHit>> results(query_count);
for (std::size_t q = 0; q < query_count; ++q) {
  detail::TopK merged(k);
  for (int part = 0; part < threads; ++part)
    for (const SearchHit& hit : partial[part][q].hits()) merged.offer(hit);
  results[q] = merged.sorted();
}
return results;
}

CLIP_INLINE double recall_at_k(const std::vector<std::vector<SearchHit>>& approximate,
                               const std::vector<std::vector<SearchHit>>& exact) {
std::size_t found = 0, total = 0;
for (std::size_t q = 0; q < exact.size(); ++q) {
  for (const SearchHit& truth : exact[q]) {
    ++total;
    for (const SearchHit& hit : approximate.at(q))
      if (hit.row == truth.row) {
        ++found;
        break;
      }
  }
}
return total ? static_cast<double>(found) / total : 1.0;
}

#endif  // CLIP_HEADER_DEFINITIONS

}  // namespace clip

