// Search: exact top-k equals a brute-force reference, hnswlib's recall against exact, and an
// output folder opened as a collection.

#include "test_support.hpp"

#include <clip/analysis/collection.hpp>
#include <clip/analysis/approximate_search.hpp>
#include <clip/analysis/search.hpp>
#include <clip/detail/atomic_write.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

namespace {

std::vector<float> random_rows(std::size_t rows, std::size_t dim, unsigned seed, bool unit) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal;
  std::vector<float> values(rows * dim);
  for (float& v : values) v = normal(random);
  if (unit)
    for (std::size_t r = 0; r < rows; ++r) {
      double sum = 0;
      for (std::size_t j = 0; j < dim; ++j) sum += double(values[r * dim + j]) * values[r * dim + j];
      for (std::size_t j = 0; j < dim; ++j) values[r * dim + j] = static_cast<float>(values[r * dim + j] / std::sqrt(sum));
    }
  return values;
}

/// Cosine of every row in double, sorted: the reference the library must reproduce.
std::vector<std::size_t> brute_force_top(const std::vector<float>& rows, std::size_t dim, const float* query, std::size_t k) {
  const std::size_t n = rows.size() / dim;
  std::vector<std::pair<double, std::size_t>> scored;
  double query_norm = 0;
  for (std::size_t j = 0; j < dim; ++j) query_norm += double(query[j]) * query[j];
  for (std::size_t r = 0; r < n; ++r) {
    double dot = 0, norm = 0;
    for (std::size_t j = 0; j < dim; ++j) {
      dot += double(rows[r * dim + j]) * query[j];
      norm += double(rows[r * dim + j]) * rows[r * dim + j];
    }
    scored.push_back({-dot / std::sqrt(norm * query_norm), r});
  }
  std::partial_sort(scored.begin(), scored.begin() + k, scored.end());
  std::vector<std::size_t> top;
  for (std::size_t i = 0; i < k; ++i) top.push_back(scored[i].second);
  return top;
}

TEST(Search, ExactTopTenEqualsBruteForce) {
  const std::size_t dim = 48, n = 20000, k = 10;
  const std::vector<float> rows = random_rows(n, dim, 1, false);  // not normalised: cosine must divide
  const std::vector<float> query_values = random_rows(25, dim, 2, false);
  clip::RowMatrix<float> queries = Eigen::Map<const clip::RowMatrix<float>>(query_values.data(), 25, dim);
  // Two blocks (as two shards would be), cut into pieces smaller than a block.
  const std::vector<clip::EmbeddingBlock> blocks = {{rows.data(), 12345, dim, 0},
                                                    {rows.data() + 12345 * dim, n - 12345, dim, 12345}};
  const auto results = clip::exact_search(blocks, queries, k, 1000);
  ASSERT_EQ(results.size(), 25u);
  for (std::size_t q = 0; q < 25; ++q) {
    const std::vector<std::size_t> want = brute_force_top(rows, dim, query_values.data() + q * dim, k);
    ASSERT_EQ(results[q].size(), k);
    std::vector<std::size_t> got;
    for (const auto& hit : results[q]) got.push_back(hit.row);
    EXPECT_EQ(got, want) << "query " << q;
    for (std::size_t i = 1; i < k; ++i) EXPECT_GE(results[q][i - 1].score, results[q][i].score);
  }
  EXPECT_EQ(clip::recall_at_k(results, results), 1.0);
  // k larger than the collection: every row, best first.
  const std::vector<clip::EmbeddingBlock> tiny = {{rows.data(), 3, dim, 0}};
  EXPECT_EQ(clip::exact_search(tiny, queries, 10)[0].size(), 3u);
  EXPECT_THROW(clip::exact_search(tiny, queries.leftCols(5), 10), clip::Error);
}

#ifdef CLIP_HAVE_HNSWLIB
// A small version of docs/scale.md's benchmark (100k x 512 there): random unit vectors are the
// hard case for a graph index, and hnswlib's defaults must still find 95% of the true top 10.
TEST(Search, HnswRecallAtTenAgainstExact) {
  const std::size_t dim = 64, n = 5000, k = 10;
  const std::vector<float> rows = random_rows(n, dim, 3, true);
  const std::vector<float> query_values = random_rows(100, dim, 4, true);
  const clip::RowMatrix<float> queries = Eigen::Map<const clip::RowMatrix<float>>(query_values.data(), 100, dim);
  const std::vector<clip::EmbeddingBlock> blocks = {{rows.data(), n, dim, 0}};
  const clip::ApproximateIndex index(blocks, dim);
  const double recall = clip::recall_at_k(index.search(queries, k), clip::exact_search(blocks, queries, k));
  std::printf("  hnswlib recall@10 on %zu random unit vectors, dim %zu: %.4f\n", n, dim, recall);
  EXPECT_GE(recall, 0.95);
}

// The index is over cosines whatever the rows' lengths, and its ids are collection rows across
// blocks (shards): rows of lengths 0.1 to 10 in two blocks, the second starting at row 1200.
// Each hit's score must be the double-precision cosine of the row it names (1e-5: float sums
// of 64 products), and recall must be as high as on unit rows.
TEST(Search, HnswOverUnnormalisedRowsInTwoBlocksGivesCosinesOfTheRightRows) {
  const std::size_t dim = 64, n = 3000, split = 1200, k = 10, query_count = 50;
  std::vector<float> rows = random_rows(n, dim, 5, true);
  std::mt19937 random(6);
  std::uniform_real_distribution<float> length(0.1f, 10.0f);
  for (std::size_t r = 0; r < n; ++r) {
    const float scale = length(random);
    for (std::size_t j = 0; j < dim; ++j) rows[r * dim + j] *= scale;
  }
  const std::vector<float> query_values = random_rows(query_count, dim, 7, false);
  const clip::RowMatrix<float> queries =
      Eigen::Map<const clip::RowMatrix<float>>(query_values.data(), query_count, dim);
  const std::vector<clip::EmbeddingBlock> blocks = {{rows.data(), split, dim, 0},
                                                    {rows.data() + split * dim, n - split, dim, split}};
  const clip::ApproximateIndex index(blocks, dim);
  const auto found = index.search(queries, k);
  for (std::size_t q = 0; q < query_count; ++q) {
    ASSERT_EQ(found[q].size(), k);
    for (const clip::SearchHit& hit : found[q]) {
      ASSERT_LT(hit.row, n);
      double dot = 0, row_norm = 0, query_norm = 0;
      for (std::size_t j = 0; j < dim; ++j) {
        dot += double(rows[hit.row * dim + j]) * query_values[q * dim + j];
        row_norm += double(rows[hit.row * dim + j]) * rows[hit.row * dim + j];
        query_norm += double(query_values[q * dim + j]) * query_values[q * dim + j];
      }
      EXPECT_NEAR(hit.score, dot / std::sqrt(row_norm * query_norm), 1e-5) << "query " << q << " row " << hit.row;
    }
  }
  EXPECT_GE(clip::recall_at_k(found, clip::exact_search(blocks, queries, k)), 0.95);

  clip::ApproximateIndexOptions bad;
  bad.M = 1;  // hnswlib would divide by log(1)
  EXPECT_THROW((clip::ApproximateIndex{blocks, dim, bad}), clip::Error);
  bad.M = clip::ApproximateIndexOptions::kMaxM + 1;
  EXPECT_THROW((clip::ApproximateIndex{blocks, dim, bad}), clip::Error);
}
#endif

TEST(Search, CollectionReadsShardsInNameOrderAndSkipsErrorLines) {
  namespace fs = std::filesystem;
  const auto dir = clip_test::scratch_dir("collection");
  fs::create_directories(dir / "img_emb");
  fs::create_directories(dir / "metadata");
  const std::vector<float> a = {1, 0, 0, 1}, b = {0, 2};
  clip::detail::write_file_atomically((dir / "img_emb" / "img_emb_001.npy").string(), clip::npy_bytes<float>(b.data(), 1, 2));
  clip::detail::write_file_atomically((dir / "img_emb" / "img_emb_000.npy").string(), clip::npy_bytes<float>(a.data(), 2, 2));
  clip::detail::write_file_atomically((dir / "metadata" / "metadata_000.jsonl").string(),
                                      "{\"key\":\"x\",\"caption\":null}\n{\"key\":\"y\",\"caption\":\"c\"}\n{\"key\":\"bad\",\"error\":\"no\"}\n");
  clip::detail::write_file_atomically((dir / "metadata" / "metadata_001.jsonl").string(), "{\"key\":\"z\",\"caption\":null}\n");
  const clip::EmbeddingCollection collection(dir.string());
  ASSERT_EQ(collection.rows(), 3u);
  EXPECT_EQ(collection.key(0), "x");
  EXPECT_EQ(collection.key(2), "z");
  EXPECT_EQ(collection.shard(2), "001");
  clip::RowMatrix<float> query(1, 2);
  query << 0, 1;
  const auto hits = clip::exact_search(collection.blocks(), query, 2);
  EXPECT_EQ(collection.key(hits[0][0].row), "y");  // ties broken by row: y (row 1) before z (row 2)
  EXPECT_FLOAT_EQ(hits[0][0].score, 1.0f);

  clip::detail::write_file_atomically((dir / "metadata" / "metadata_001.jsonl").string(), "");
  EXPECT_THROW(clip::EmbeddingCollection{dir.string()}, clip::Error);  // 1 row, 0 keys
  clip::detail::write_file_atomically((dir / "img_emb" / "img_emb_001.npy").string(), "\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'");
  EXPECT_THROW(clip::EmbeddingCollection{dir.string()}, clip::Error);
}

}  // namespace
