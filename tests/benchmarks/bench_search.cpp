// Search over 100k unit vectors of dimension 512 (ViT-B/32's embed_dim): exact top-10 (blocked
// product) and hnswlib's approximate top-10 (ApproximateIndex, the path clip-search
// --approximate takes), with its recall@10 against exact search as a counter. Two collections:
//
//   clustered  CLIP-like: each row is normalise(0.8 o + 0.8 c + 0.8 n) with o one offset common
//              to all rows (CLIP's embeddings share a mean direction: random pairs of image
//              embeddings have a cosine well above 0), c one of 300 random unit centres
//              (topics), and n anisotropic Gaussian noise whose standard deviation falls as
//              1/sqrt(j+1) over the coordinates j (a few directions carry most of the variance,
//              as in real embeddings), scaled to unit expected norm. Queries are 200 further
//              draws from the same distribution (not in the collection).
//   uniform    random unit vectors (normalised Gaussians), queries likewise: the worst case for
//              a graph index. In 512 dimensions every pair is nearly orthogonal, so the graph
//              has little to follow and recall needs a large ef.
// ExactQuery's counters say what each collection looks like: the mean cosine of a query's
// nearest row (top1_cos), of its tenth (top10_cos) and of random pairs of rows (pair_cos).
//
//   bench_search --benchmark_filter=clustered --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// ExactQuery/<data>/Q: Q queries at once. ApproximateQuery/<data>/M/ef_construction/ef: one query
// at a time (per-query time); recall@10 over the 200 queries and the index's build time (one
// thread, as ApproximateIndex builds it: wall and CPU seconds) are counters. Each index is
// built once, on first use.

#include <clip/analysis/approximate_search.hpp>
#include <clip/analysis/search.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace {

constexpr std::size_t kRows = 100000, kDim = 512, kQueries = 200, kTop = 10, kCentres = 300;

void normalise_rows(std::vector<float>& values, std::size_t rows) {
  for (std::size_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (std::size_t j = 0; j < kDim; ++j) sum += double(values[r * kDim + j]) * values[r * kDim + j];
    for (std::size_t j = 0; j < kDim; ++j) values[r * kDim + j] = static_cast<float>(values[r * kDim + j] / std::sqrt(sum));
  }
}

/// Rows then queries of one collection (see the top of the file), made from a fixed seed.
std::pair<std::vector<float>, std::vector<float>> make_collection(const std::string& kind) {
  std::mt19937 random(kind == "uniform" ? 1 : 2);
  std::normal_distribution<float> normal;
  std::vector<float> rows(kRows * kDim), queries(kQueries * kDim);
  if (kind == "uniform") {
    for (float& v : rows) v = normal(random);
    for (float& v : queries) v = normal(random);
  } else {
    std::vector<float> offset(kDim), centres(kCentres * kDim), deviation(kDim);
    for (float& v : offset) v = normal(random);
    for (float& v : centres) v = normal(random);
    normalise_rows(offset, 1);
    normalise_rows(centres, kCentres);
    double total = 0;
    for (std::size_t j = 0; j < kDim; ++j) total += (deviation[j] = 1.0f / std::sqrt(float(j + 1))) * deviation[j];
    for (float& d : deviation) d = static_cast<float>(d / std::sqrt(total));
    std::uniform_int_distribution<std::size_t> pick(0, kCentres - 1);
    const auto draw = [&](float* out) {
      const float* centre = &centres[pick(random) * kDim];
      for (std::size_t j = 0; j < kDim; ++j) out[j] = 0.8f * offset[j] + 0.8f * centre[j] + 0.8f * deviation[j] * normal(random);
    };
    for (std::size_t r = 0; r < kRows; ++r) draw(&rows[r * kDim]);
    for (std::size_t q = 0; q < kQueries; ++q) draw(&queries[q * kDim]);
  }
  normalise_rows(rows, kRows);
  normalise_rows(queries, kQueries);
  return {std::move(rows), std::move(queries)};
}

struct Collection {
  explicit Collection(const std::string& kind) {
    std::tie(rows, query_values) = make_collection(kind);
    queries = Eigen::Map<const clip::RowMatrix<float>>(query_values.data(), kQueries, kDim);
    blocks = {{rows.data(), kRows, kDim, 0}};
    exact = clip::exact_search(blocks, queries, kTop);
  }
  std::vector<float> rows, query_values;
  clip::RowMatrix<float> queries;
  std::vector<clip::EmbeddingBlock> blocks;
  std::vector<std::vector<clip::SearchHit>> exact;
};

Collection& collection(const std::string& kind) {
  static std::map<std::string, std::unique_ptr<Collection>> made;
  auto& slot = made[kind];
  if (!slot) slot = std::make_unique<Collection>(kind);
  return *slot;
}

struct BuiltIndex {
  std::unique_ptr<clip::ApproximateIndex> index;
  double build_seconds = 0, build_cpu_seconds = 0;
};

/// CPU time of the calling thread: the build runs on it alone, and on a shared machine its CPU
/// time says more than the wall time.
double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return double(now.tv_sec) + 1e-9 * double(now.tv_nsec);
}

BuiltIndex& index(const std::string& kind, std::size_t M, std::size_t ef_construction) {
  static std::map<std::tuple<std::string, std::size_t, std::size_t>, BuiltIndex> made;
  BuiltIndex& built = made[{kind, M, ef_construction}];
  if (!built.index) {
    const Collection& c = collection(kind);
    clip::ApproximateIndexOptions options;
    options.M = M;
    options.ef_construction = ef_construction;
    const auto start = std::chrono::steady_clock::now();
    const double start_cpu = thread_cpu_seconds();
    built.index = std::make_unique<clip::ApproximateIndex>(c.blocks, kDim, options);
    built.build_cpu_seconds = thread_cpu_seconds() - start_cpu;
    built.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr,
                 "hnswlib index of %zu x %zu (%s, M %zu, ef_construction %zu) built in %.1f s (%.1f s CPU) on one thread\n",
                 kRows, kDim, kind.c_str(), M, ef_construction, built.build_seconds, built.build_cpu_seconds);
  }
  return built;
}

void ExactQuery(benchmark::State& state, const std::string& kind, std::size_t count) {
  const Collection& c = collection(kind);
  const clip::RowMatrix<float> queries = c.queries.topRows(static_cast<Eigen::Index>(count));
  for (auto _ : state) benchmark::DoNotOptimize(clip::exact_search(c.blocks, queries, kTop));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(count));
  // What the collection looks like: the mean cosine of a query's nearest and tenth row, and of
  // random pairs of rows (rows i and i + kRows/2).
  double first = 0, tenth = 0, pairs = 0;
  for (const auto& hits : c.exact) {
    first += hits.front().score;
    tenth += hits.back().score;
  }
  for (std::size_t r = 0; r < 1000; ++r) {
    double dot = 0;
    for (std::size_t j = 0; j < kDim; ++j) dot += double(c.rows[r * kDim + j]) * c.rows[(r + kRows / 2) * kDim + j];
    pairs += dot;
  }
  state.counters["top1_cos"] = first / kQueries;
  state.counters["top10_cos"] = tenth / kQueries;
  state.counters["pair_cos"] = pairs / 1000;
}

void ApproximateQuery(benchmark::State& state, const std::string& kind, std::size_t M, std::size_t ef_construction,
                      std::size_t ef) {
  const Collection& c = collection(kind);
  BuiltIndex& built = index(kind, M, ef_construction);
  built.index->set_ef(ef);
  const auto found = built.index->search(c.queries, kTop);
  // The approximate path's scores are cosines too: each hit's score must match exact search's
  // score of the same row wherever both found it (a check that ids and distances map right).
  double worst = 0;
  for (std::size_t q = 0; q < kQueries; ++q)
    for (const clip::SearchHit& hit : found[q])
      for (const clip::SearchHit& truth : c.exact[q])
        if (hit.row == truth.row) worst = std::max(worst, double(std::fabs(hit.score - truth.score)));
  if (worst > 1e-5) state.SkipWithError("approximate and exact scores of the same row differ");
  state.counters["recall@10"] = clip::recall_at_k(found, c.exact);
  state.counters["build_s"] = built.build_seconds;
  state.counters["build_cpu_s"] = built.build_cpu_seconds;
  std::size_t q = 0;
  for (auto _ : state) {
    const clip::RowMatrix<float> one = c.queries.row(static_cast<Eigen::Index>(q++ % kQueries));
    benchmark::DoNotOptimize(built.index->search(one, kTop));
  }
  state.SetItemsProcessed(state.iterations());
}

void register_all() {
  for (const std::string kind : {"clustered", "uniform"})
    for (const std::size_t count : {1, 64})
      benchmark::RegisterBenchmark(("ExactQuery/" + kind + "/" + std::to_string(count)).c_str(), ExactQuery, kind, count)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  struct Setting {
    const char* kind;
    std::size_t M, ef_construction;
    std::vector<std::size_t> efs;
  };
  const std::vector<Setting> settings = {
      {"clustered", 16, 200, {16, 32, 64, 128, 256}},
      {"clustered", 16, 100, {32, 64, 128}},
      {"uniform", 16, 200, {128, 512, 1024, 2048, 4096}},
      {"uniform", 32, 200, {512, 1024, 2048, 4096}},
  };
  for (const Setting& s : settings)
    for (const std::size_t ef : s.efs)
      benchmark::RegisterBenchmark(("ApproximateQuery/" + std::string(s.kind) + "/M:" + std::to_string(s.M) +
                                    "/efc:" + std::to_string(s.ef_construction) + "/ef:" + std::to_string(ef))
                                       .c_str(),
                                   ApproximateQuery, std::string(s.kind), s.M, s.ef_construction, ef)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
