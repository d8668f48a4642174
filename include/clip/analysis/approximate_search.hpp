#pragma once
// ApproximateIndex: an HNSW graph (hnswlib, Debian's libhnswlib-dev, header-only) over the
// L2-normalised rows with inner-product distance, i.e. cosine; measure its recall against
// exact_search with recall_at_k (search.hpp). CLIP_HAVE_HNSWLIB is defined when hnswlib's
// header was found.
//
// Include this header in ONE translation unit of a program only: hnswlib 0.6 defines global
// variables in its headers, so a second including file fails to link. (Not in clip.hpp.)

#include <clip/analysis/search.hpp>
#include <clip/detail/parallel.hpp>
#include <clip/error.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#if __has_include(<hnswlib/hnswlib.h>)
// hnswlib's SSE search loop prefetches from one link past the end of a node's list, a 4-byte
// over-read that AddressSanitizer reports (hnswalg.h, searchBaseLayer); sanitizer builds use its
// plain loops instead.
#if defined(__SANITIZE_ADDRESS__)
#define NO_MANUAL_VECTORIZATION
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_MANUAL_VECTORIZATION
#endif
#endif
#include <hnswlib/hnswlib.h>
#define CLIP_HAVE_HNSWLIB 1

namespace clip {

// Defaults measured in docs/scale.md (bench_search, 100k x 512): on CLIP-like clustered rows
// recall@10 is 0.999 at ef 32 and 1.0 from ef 64; random unit vectors (no structure at all)
// need M 32 and ef 2048-4096 for 0.95-0.995, which costs about as much as exact search.
struct ApproximateIndexOptions {
  std::size_t M = 16;                 // graph degree (hnswlib's M), 2..kMaxM
  std::size_t ef_construction = 200;  // candidate list while building
  std::size_t ef_search = 128;        // candidate list while searching (>= k)
  std::size_t seed = 100;
  /// hnswlib keeps a node's link count in 16 bits (2M links on level 0) and its memory grows
  /// with M; no sensible graph needs more.
  static constexpr std::size_t kMaxM = 1024;
};

/// An HNSW index (hnswlib) over the L2-normalised rows: inner product of unit vectors = cosine.
class ApproximateIndex {
 public:
  ApproximateIndex(const std::vector<EmbeddingBlock>& blocks, std::size_t dim, ApproximateIndexOptions options = {})
      : dim_(dim), options_(options), space_(dim) {
    // hnswlib's level multiplier is 1/log(M): M 1 divides by zero.
    if (options.M < 2 || options.M > ApproximateIndexOptions::kMaxM)
      throw Error("ApproximateIndex: M is " + std::to_string(options.M) + ", must be 2 to " +
                  std::to_string(ApproximateIndexOptions::kMaxM));
    if (options.ef_construction < 1 || options.ef_search < 1)
      throw Error("ApproximateIndex: ef_construction and ef_search must be at least 1");
    std::size_t total = 0;
    for (const EmbeddingBlock& block : blocks) {
      if (block.rows && block.dim != dim)
        throw Error("ApproximateIndex: rows have " + std::to_string(block.dim) + " values, expected " + std::to_string(dim));
      total += block.rows;
    }
    if (total == 0) throw Error("ApproximateIndex: the collection is empty");
    index_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(&space_, total, options.M, options.ef_construction,
                                                                options.seed);
    struct Row {
      const float* data;
      std::size_t label;
    };
    std::vector<Row> rows;
    rows.reserve(total);
    for (const EmbeddingBlock& block : blocks)
      for (std::size_t r = 0; r < block.rows; ++r) rows.push_back({block.data + r * dim, block.first_row + r});
    // One thread adds every point: in hnswlib 0.6.2 (Debian 12) a new node's level comes from
    // one random generator that addPoint does not lock, so parallel builds race on it.
    std::vector<float> unit(dim);
    for (const Row& row : rows) {
      normalise(row.data, unit.data());
      index_->addPoint(unit.data(), row.label);
    }
    index_->setEf(options.ef_search);
  }

  // hnswlib's index keeps a pointer to space_: the object stays where it was made.
  ApproximateIndex(const ApproximateIndex&) = delete;
  ApproximateIndex& operator=(const ApproximateIndex&) = delete;

  void set_ef(std::size_t ef) { index_->setEf(std::max<std::size_t>(ef, 1)); }

  /// The (about) k most similar rows to each query, best first.
  std::vector<std::vector<SearchHit>> search(const RowMatrix<float>& queries, std::size_t k) const {
    if (static_cast<std::size_t>(queries.cols()) != dim_)
      throw Error("ApproximateIndex: queries have " + std::to_string(queries.cols()) + " values, expected " +
                  std::to_string(dim_));
    std::vector<std::vector<SearchHit>> results(static_cast<std::size_t>(queries.rows()));
    std::vector<float> unit(dim_);
    for (Eigen::Index q = 0; q < queries.rows(); ++q) {
      const RowMatrix<float> row = queries.row(q);
      normalise(row.data(), unit.data());
      auto found = index_->searchKnn(unit.data(), k);
      std::vector<SearchHit>& hits = results[static_cast<std::size_t>(q)];
      while (!found.empty()) {
        hits.push_back({static_cast<std::size_t>(found.top().second), 1.0f - found.top().first});
        found.pop();
      }
      std::sort(hits.begin(), hits.end(), better_hit);
    }
    return results;
  }

 private:
  void normalise(const float* in, float* out) const {
    double sum = 0;
    for (std::size_t j = 0; j < dim_; ++j) sum += static_cast<double>(in[j]) * in[j];
    const float scale = sum > 0 ? static_cast<float>(1.0 / std::sqrt(sum)) : 0.0f;
    for (std::size_t j = 0; j < dim_; ++j) out[j] = in[j] * scale;
  }

  std::size_t dim_;
  ApproximateIndexOptions options_;
  hnswlib::InnerProductSpace space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
};

}  // namespace clip
#endif
