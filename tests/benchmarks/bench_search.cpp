// Search over 100k random unit vectors of dimension 512 (ViT-B/32's embed_dim): exact top-10
// (blocked product) and hnswlib's approximate top-10, with its recall@10 against exact as a
// counter. Random unit vectors are the hard case for a graph index (no clusters to follow).
//
//   bench_search --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// ExactQuery/Q: Q queries at once. ApproximateQuery/ef: one query at a time (per-query time),
// recall measured on 200 queries. The index build time is printed once.

#include <clip/analysis/approximate_search.hpp>
#include <clip/analysis/search.hpp>
#include <clip/threading.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

namespace {

constexpr std::size_t kRows = 100000, kDim = 512, kQueries = 200, kTop = 10;

std::vector<float> unit_rows(std::size_t rows, unsigned seed) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal;
  std::vector<float> values(rows * kDim);
  for (float& v : values) v = normal(random);
  for (std::size_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (std::size_t j = 0; j < kDim; ++j) sum += double(values[r * kDim + j]) * values[r * kDim + j];
    for (std::size_t j = 0; j < kDim; ++j) values[r * kDim + j] = static_cast<float>(values[r * kDim + j] / std::sqrt(sum));
  }
  return values;
}

struct Data {
  std::vector<float> rows = unit_rows(kRows, 1);
  std::vector<float> query_values = unit_rows(kQueries, 2);
  clip::RowMatrix<float> queries = Eigen::Map<const clip::RowMatrix<float>>(query_values.data(), kQueries, kDim);
  std::vector<clip::EmbeddingBlock> blocks{{rows.data(), kRows, kDim, 0}};
  std::vector<std::vector<clip::SearchHit>> exact = clip::exact_search(blocks, queries, kTop);
  std::unique_ptr<clip::ApproximateIndex> index;
};

Data& data() {
  static Data d;
  if (!d.index) {
    const auto start = std::chrono::steady_clock::now();
    d.index = std::make_unique<clip::ApproximateIndex>(d.blocks, kDim);
    std::printf("hnswlib index of %zu x %zu built in %.1f s on %d threads\n", kRows, kDim,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), clip::num_threads());
  }
  return d;
}

void ExactQuery(benchmark::State& state) {
  Data& d = data();
  const clip::RowMatrix<float> queries = d.queries.topRows(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(clip::exact_search(d.blocks, queries, kTop));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(ExactQuery)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();

void ApproximateQuery(benchmark::State& state) {
  Data& d = data();
  d.index->set_ef(static_cast<std::size_t>(state.range(0)));
  state.counters["recall@10"] = clip::recall_at_k(d.index->search(d.queries, kTop), d.exact);
  std::size_t q = 0;
  for (auto _ : state) {
    const clip::RowMatrix<float> one = d.queries.row(q++ % kQueries);
    benchmark::DoNotOptimize(d.index->search(one, kTop));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(ApproximateQuery)->Arg(64)->Arg(128)->Arg(256)->Arg(512)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
