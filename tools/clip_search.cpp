// clip-search: the top-k keys of a clip-embed --output-dir folder for text or image queries,
// by cosine similarity: exact (a blocked product over the memory-mapped .npy files) or
// approximate (an HNSW graph, hnswlib), with the approximate recall measurable against exact.

#define CLIP_STB_IMAGE_IMPLEMENTATION
#include <clip/analysis/collection.hpp>
#include <clip/analysis/approximate_search.hpp>
#include <clip/analysis/search.hpp>
#include <clip/clip.hpp>

#include "common/options.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string model, collection;
  std::vector<std::string> texts, images;
  std::size_t k = 10;
  bool approximate = false, recall = false, json = false, search_texts = false;
  std::size_t ef = 128, hnsw_m = 16, ef_construction = 200;
  int threads = 0;
};

int run(const Options& options) {
  if (options.threads > 0) clip::set_num_threads(options.threads);
  const clip::Model<float> model(options.model);
  const clip::EmbeddingCollection collection(
      options.collection, options.search_texts ? clip::EmbeddingCollection::Kind::Texts : clip::EmbeddingCollection::Kind::Images);
  if (collection.rows() == 0) throw clip::Error(options.collection + ": no embedded rows to search");
  if (collection.dim() != static_cast<std::size_t>(model.config().embed_dim))
    throw clip::Error(options.collection + ": rows have " + std::to_string(collection.dim()) + " values, the model gives " +
                      std::to_string(model.config().embed_dim));

  std::vector<std::string> texts = options.texts;
  std::vector<std::string> labels;
  std::vector<clip::RowMatrix<float>> parts;
  if (!texts.empty()) {
    parts.push_back(model.encode_texts(model.tokenizer().tokenize(texts, model.config().text.context_length, true)));
    for (const std::string& text : texts) labels.push_back(text);
  }
  if (!options.images.empty()) {
    std::vector<clip::Image> images;
    for (const std::string& path : options.images) images.push_back(clip::decode_image_file(path));
    parts.push_back(model.encode_images(clip::preprocess_images(images, clip::preprocess_options(model.config()))));
    for (const std::string& path : options.images) labels.push_back(path);
  }
  if (labels.empty()) throw clip::Error("no query: give --text, --texts-file or --image");
  clip::RowMatrix<float> queries(static_cast<Eigen::Index>(labels.size()), model.config().embed_dim);
  Eigen::Index row = 0;
  for (const auto& part : parts) {
    queries.middleRows(row, part.rows()) = part;
    row += part.rows();
  }

  using Clock = std::chrono::steady_clock;
  const auto seconds = [](Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); };
  std::vector<std::vector<clip::SearchHit>> results;
  nlohmann::json timing;
  if (options.approximate || options.recall) {
#ifdef CLIP_HAVE_HNSWLIB
    auto start = Clock::now();
    clip::ApproximateIndexOptions index_options;
    index_options.ef_search = std::max(options.ef, options.k);
    index_options.M = options.hnsw_m;
    index_options.ef_construction = options.ef_construction;
    const clip::ApproximateIndex index(collection.blocks(), collection.dim(), index_options);
    timing["index_build_s"] = seconds(start);
    start = Clock::now();
    results = index.search(queries, options.k);
    timing["approximate_query_s"] = seconds(start);
    if (options.recall) {
      start = Clock::now();
      const auto exact = clip::exact_search(collection.blocks(), queries, options.k);
      timing["exact_query_s"] = seconds(start);
      timing["recall_at_k"] = clip::recall_at_k(results, exact);
      if (!options.approximate) results = exact;
    }
#else
    throw clip::Error("--approximate and --recall need hnswlib (Debian: libhnswlib-dev) at build time");
#endif
  } else {
    const auto start = Clock::now();
    results = clip::exact_search(collection.blocks(), queries, options.k);
    timing["exact_query_s"] = seconds(start);
  }

  nlohmann::json document = nlohmann::json::array();
  for (std::size_t q = 0; q < results.size(); ++q) {
    nlohmann::json hits = nlohmann::json::array();
    for (const clip::SearchHit& hit : results[q])
      hits.push_back({{"key", collection.key(hit.row)}, {"shard", collection.shard(hit.row)}, {"score", hit.score}});
    document.push_back({{"query", labels[q]}, {"results", hits}});
  }
  const auto dump = [](const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };
  if (options.json) {
    std::cout << dump({{"rows", collection.rows()}, {"queries", document}, {"timing", timing}}) << "\n";
  } else {
    for (const auto& query : document) {
      std::cout << query["query"].get<std::string>() << "\n";
      for (const auto& hit : query["results"])
        std::printf("  %.4f  %s\n", hit["score"].get<double>(), hit["key"].get<std::string>().c_str());
    }
    if (timing.contains("recall_at_k")) std::cout << "recall@" << options.k << " " << timing["recall_at_k"] << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  clip::cli::Command command("clip-search",
                             "Top-k keys of a clip-embed --output-dir folder for text or image queries, by cosine.");
  CLI::App& app = command.app();
  clip::cli::ImageInputs images;
  clip::cli::TextInputs texts;
  clip::cli::OutputOptions output;
  command.add_model(options.model);
  app.add_option("--collection", options.collection, "a clip-embed --output-dir folder")->required()->type_name("DIR");
  command.add_texts(texts);
  command.add_images(images);
  app.add_option("-k,--top", options.k, "results per query")->check(CLI::PositiveNumber.description(""))->type_name("K");
  app.add_flag("--approximate", options.approximate, "search an HNSW index (hnswlib) instead of every row");
  app.add_option("--ef", options.ef, "HNSW candidate list while searching (recall against speed)")->type_name("N");
  app.add_option("--hnsw-m", options.hnsw_m, "HNSW graph degree (hnswlib's M; 2-1024)")
      ->check(CLI::Range(std::size_t{2}, std::size_t{1024}).description(""))  // ApproximateIndexOptions::kMaxM
      ->type_name("M");
  app.add_option("--ef-construction", options.ef_construction, "HNSW candidate list while building the index")
      ->check(CLI::PositiveNumber.description(""))
      ->type_name("N");
  app.add_flag("--recall", options.recall, "also run exact search and print the approximate recall@k");
  app.add_flag("--search-texts", options.search_texts, "search the caption embeddings (text_emb) instead of img_emb");
  command.add_threads(options.threads);
  command.add_output(output);
  if (const int status = command.parse(argc, argv); status >= 0) return status;
  options.json = output.json;
  return clip::cli::run_main("clip-search", [&] {
    options.texts = clip::cli::resolve_texts(texts);
    options.images = clip::cli::resolve_images(images, std::cerr);
    return run(options);
  });
}
