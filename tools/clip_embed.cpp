// clip-embed: image and text embeddings: a summary for a person, JSON, or .npy files.

#include "common/options.hpp"

#include <clip/clip.hpp>
#include <clip/formats/npy.hpp>

#include "embed_sharded.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

struct Options {
  std::string model;
  std::vector<std::string> images;
  std::vector<std::string> texts;
  bool normalize = false;
  bool pixels = false;
  bool truncate = false;
  bool no_fix_text = false;
  std::size_t batch = 16;
  int threads = 0;
  clip::cli::OutputOptions output;
  // Sharded mode (--input SOURCE --output-dir OUT), see tools/embed_sharded.hpp.
  clip::cli::ShardedOptions sharded;
  std::string worker;
  int decode_threads = 0;
  bool list_shards = false;
};

/// Parses argv into `options`; returns -1 to go on, else the exit status.
int parse(int argc, char** argv, Options& options) {
  clip::cli::Command command("clip-embed",
                             "Image and text embeddings with a clip model, un-normalised like OpenAI's "
                             "encode_image/encode_text unless --normalize. Without --json or --npy, prints a "
                             "summary: each input's feature norm and, given images and texts, their logits.");
  CLI::App& app = command.app();
  clip::cli::ImageInputs images;
  clip::cli::TextInputs texts;
  command.add_model(options.model);
  command.add_images(images);
  command.add_texts(texts);
  command.add_truncate(options.truncate);
  command.add_no_fix_text(options.no_fix_text);
  app.add_flag("--normalize", options.normalize, "L2-normalise the features");
  app.add_flag("--pixels", options.pixels, "also output each image's preprocessed pixels (JSON only)");
  app.add_option("--batch", options.batch, "images or texts per encode")->check(CLI::PositiveNumber.description(""))->type_name("N");
  command.add_threads(options.threads);
  command.add_output(options.output, /*npy=*/true, /*output_dir=*/true);
  app.add_option("--shard-size", options.sharded.shard_size,
                 "with --output-dir: a folder or list --input is cut into shards of N images")
      ->check(CLI::PositiveNumber.description(""))
      ->type_name("N");
  app.add_option("--worker", options.worker, "with --output-dir: embed shards I, I+N, I+2N, ... only (0-based)")
      ->type_name("I/N");
  app.add_option("--decode-threads", options.decode_threads,
                 "with --output-dir: threads decoding images ahead of the encoder (0: one per core)")
      ->check(CLI::NonNegativeNumber.description(""))
      ->type_name("N");
  app.add_flag("--list-shards", options.list_shards, "print the shard names of --input (one a line) and exit");
  app.footer(app.get_footer() +
             "\n\nSharded mode, for many images (docs/scale.md): --input SOURCE --output-dir OUT, SOURCE a folder, "
             "a list file, or WebDataset shards ('shards/{000000..000123}.tar', also .tar.gz). Writes per shard "
             "OUT/img_emb/img_emb_<shard>.npy, OUT/text_emb/text_emb_<shard>.npy (captions, always truncated to the "
             "context as clip-retrieval does) and OUT/metadata/metadata_<shard>.jsonl; finished shards are skipped "
             "on a rerun. Shard i of --list-shards is --worker i/N.");
  if (const int status = command.parse(argc, argv); status >= 0) return status;
  if (options.list_shards || !options.output.output_dir.empty()) {
    if (images.sources.size() != 1 || !images.files.empty() || !texts.empty())
      throw clip::Error(std::string(options.list_shards ? "--list-shards" : "--output-dir") +
                        " takes exactly one --input SOURCE (folder, list file or shard pattern) and no --image/--text");
    options.sharded.input = images.sources[0];
    if (!options.worker.empty())
      std::tie(options.sharded.worker_index, options.sharded.worker_count) = clip::cli::parse_worker(options.worker);
    return -1;
  }
  if (!options.worker.empty()) throw clip::Error("--worker needs --output-dir");
  options.images = clip::cli::resolve_images(images, std::cerr);
  options.texts = clip::cli::resolve_texts(texts);
  if (options.images.empty() && options.texts.empty())
    throw clip::Error("nothing to embed: give --image, --input, --text, --texts-file or --texts-jsonl");
  if (options.pixels && !options.output.json) throw clip::Error("--pixels needs --json");
  return -1;
}

/// One input's outcome: its features, or why it failed.
struct Embedded {
  std::optional<std::vector<float>> features;
  std::vector<float> pixel_values;   // with --pixels
  std::vector<std::int32_t> tokens;  // texts
  std::string error;
};

std::vector<float> row_vector(const clip::RowMatrix<float>& matrix, Eigen::Index row) {
  return std::vector<float>(matrix.row(row).data(), matrix.row(row).data() + matrix.cols());
}

std::vector<Embedded> embed_images(const clip::Model<float>& model, const Options& options) {
  const clip::PreprocessOptions preprocess = clip::preprocess_options(model.config());
  std::vector<Embedded> results(options.images.size());
  for (std::size_t first = 0; first < options.images.size(); first += options.batch) {
    std::vector<std::size_t> batch;
    std::vector<clip::Image> images;
    for (std::size_t i = first; i < std::min(first + options.batch, options.images.size()); ++i) {
      try {
        images.push_back(clip::decode_image_file(options.images[i]));
        batch.push_back(i);
      } catch (const clip::Error& e) {
        results[i].error = e.what();
      }
    }
    if (images.empty()) continue;
    const clip::RowMatrix<float> pixels = clip::preprocess_images(images, preprocess);
    clip::RowMatrix<float> features = model.encode_images(pixels);
    if (options.normalize) features = clip::normalize_rows(features);
    for (std::size_t b = 0; b < batch.size(); ++b) {
      const auto row = static_cast<Eigen::Index>(b);
      results[batch[b]].features = row_vector(features, row);
      if (options.pixels) results[batch[b]].pixel_values = row_vector(pixels, row);
    }
  }
  return results;
}

std::vector<Embedded> embed_texts(const clip::Model<float>& model, const Options& options) {
  const int context = model.config().text.context_length;
  std::vector<Embedded> results(options.texts.size());
  for (std::size_t first = 0; first < options.texts.size(); first += options.batch) {
    std::vector<std::size_t> batch;
    clip::TokenMatrix tokens(0, context);
    for (std::size_t i = first; i < std::min(first + options.batch, options.texts.size()); ++i) {
      try {
        const clip::TokenMatrix row = model.tokenizer().tokenize({options.texts[i]}, context, options.truncate,
                                                                 clip::TokenizerOptions{!options.no_fix_text});
        tokens.conservativeResize(tokens.rows() + 1, context);
        tokens.row(tokens.rows() - 1) = row;
        batch.push_back(i);
        results[i].tokens.assign(row.data(), row.data() + context);
      } catch (const clip::Error& e) {
        results[i].error = e.what();
      }
    }
    if (batch.empty()) continue;
    clip::RowMatrix<float> features = model.encode_texts(tokens);
    if (options.normalize) features = clip::normalize_rows(features);
    for (std::size_t b = 0; b < batch.size(); ++b) results[batch[b]].features = row_vector(features, static_cast<Eigen::Index>(b));
  }
  return results;
}

/// logits_per_image as CLIP.forward computes them; null where an image or text failed.
nlohmann::json logits_json(const clip::Model<float>& model, const std::vector<Embedded>& images,
                           const std::vector<Embedded>& texts) {
  nlohmann::json rows = nlohmann::json::array();
  for (const Embedded& image : images) {
    nlohmann::json row = nlohmann::json::array();
    for (const Embedded& text : texts) {
      if (!image.features || !text.features) {
        row.push_back(nullptr);
        continue;
      }
      const Eigen::Map<const Eigen::RowVectorXf> a(image.features->data(), static_cast<Eigen::Index>(image.features->size()));
      const Eigen::Map<const Eigen::RowVectorXf> b(text.features->data(), static_cast<Eigen::Index>(text.features->size()));
      row.push_back(model.logit_scale() * a.normalized().dot(b.normalized()));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

/// A float32 [rows, cols] .npy file (format version 1.0, clip/formats/npy.hpp), written atomically.
void write_npy(const std::string& path, const std::vector<const std::vector<float>*>& rows, std::size_t cols) {
  std::string file = clip::npy_header(clip::NpyType::Float32, rows.size(), cols);
  for (const std::vector<float>* row : rows) file.append(reinterpret_cast<const char*>(row->data()), row->size() * sizeof(float));
  clip::detail::write_file_atomically(path, file);
}

/// A person's view: each input's feature norm (or its error) and the logits table.
void print_summary(const clip::Model<float>& model, const Options& options, const std::vector<Embedded>& images,
                   const std::vector<Embedded>& texts, const nlohmann::json& logits) {
  std::printf("model %s: embed_dim %d, logit_scale %.2f\n", options.model.c_str(), model.config().embed_dim,
              static_cast<double>(model.logit_scale()));
  auto norm = [](const std::vector<float>& v) {
    double sum = 0;
    for (float x : v) sum += static_cast<double>(x) * x;
    return std::sqrt(sum);
  };
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (images[i].features) std::printf("image %zu  %s  norm %.4f\n", i + 1, options.images[i].c_str(), norm(*images[i].features));
    else std::printf("image %zu  %s  failed\n", i + 1, options.images[i].c_str());
  }
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::string text = nlohmann::json(options.texts[i]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (texts[i].features) std::printf("text %zu  %s  norm %.4f\n", i + 1, text.c_str(), norm(*texts[i].features));
    else std::printf("text %zu  %s  failed\n", i + 1, text.c_str());
  }
  if (logits.is_null()) return;
  std::printf("logits_per_image (a row per image, a column per text):\n        ");
  for (std::size_t t = 0; t < texts.size(); ++t) std::printf(" %8s", ("text " + std::to_string(t + 1)).c_str());
  std::printf("\n");
  for (std::size_t i = 0; i < images.size(); ++i) {
    std::printf("image %-3zu", i + 1);
    for (const auto& value : logits[i]) {
      if (value.is_null()) std::printf(" %8s", "-");
      else std::printf(" %8.3f", value.get<double>());
    }
    std::printf("\n");
  }
}

int run(const Options& options) {
  if (options.list_shards) {  // for drivers (tools/clip-dask.py): shard i of this list is --worker i/N
    for (const clip::ShardInput& shard : clip::plan_shards(options.sharded.input, options.sharded.shard_size))
      std::cout << shard.name << "\n";
    return clip::cli::kExitOk;
  }
  if (options.threads > 0) clip::set_num_threads(options.threads);
  const clip::Model<float> model(options.model);
  if (!options.output.output_dir.empty()) {
    clip::cli::ShardedOptions sharded = options.sharded;
    sharded.output_dir = options.output.output_dir;
    sharded.pipeline.batch_size = static_cast<int>(options.batch);
    sharded.pipeline.decode_threads = options.decode_threads > 0
                                          ? options.decode_threads
                                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    sharded.pipeline.normalize = options.normalize;
    sharded.pipeline.truncate_captions = true;
    return clip::cli::run_sharded(model, sharded);
  }
  const std::vector<Embedded> images = embed_images(model, options);
  const std::vector<Embedded> texts = embed_texts(model, options);
  const bool to_npy = !options.output.npy_prefix.empty();

  int failures = 0;
  nlohmann::json image_items = nlohmann::json::array(), text_items = nlohmann::json::array();
  for (std::size_t i = 0; i < images.size(); ++i) {
    nlohmann::json item = {{"path", options.images[i]}};
    if (images[i].features) {
      if (!to_npy) item["features"] = *images[i].features;
      if (options.pixels) item["pixel_values"] = images[i].pixel_values;
    } else {
      item["error"] = images[i].error;
      std::cerr << "clip-embed: " << images[i].error << "\n";
      ++failures;
    }
    image_items.push_back(std::move(item));
  }
  for (std::size_t i = 0; i < texts.size(); ++i) {
    nlohmann::json item = {{"text", options.texts[i]}};  // invalid UTF-8 is dumped as U+FFFD
    if (texts[i].features) {
      item["tokens"] = texts[i].tokens;
      if (!to_npy) item["features"] = *texts[i].features;
    } else {
      item["error"] = texts[i].error;
      std::cerr << "clip-embed: text " << i + 1 << ": " << texts[i].error << "\n";
      ++failures;
    }
    text_items.push_back(std::move(item));
  }

  nlohmann::json document = {{"embed_dim", model.config().embed_dim}, {"logit_scale", model.logit_scale()},
                             {"images", image_items}, {"texts", text_items}};
  if (!images.empty() && !texts.empty()) document["logits_per_image"] = logits_json(model, images, texts);
  const auto dump = [](const nlohmann::json& json) { return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };

  if (to_npy) {
    // The .npy files hold the rows that succeeded, in input order; the index says which.
    for (auto [name, items, json_items] : {std::tuple{"images", &images, &image_items}, std::tuple{"texts", &texts, &text_items}}) {
      std::vector<const std::vector<float>*> rows;
      for (std::size_t i = 0; i < items->size(); ++i) {
        if (!(*items)[i].features) continue;
        (*json_items)[i]["row"] = rows.size();
        rows.push_back(&*(*items)[i].features);
      }
      document[name] = *json_items;
      if (!items->empty())
        write_npy(options.output.npy_prefix + "." + name + ".npy", rows, static_cast<std::size_t>(model.config().embed_dim));
    }
    clip::detail::write_file_atomically(options.output.npy_prefix + ".json", dump(document) + "\n");
  } else if (options.output.json) {
    std::cout << dump(document) << "\n";
  } else {
    print_summary(model, options, images, texts, document.value("logits_per_image", nlohmann::json()));
  }
  return failures ? clip::cli::kExitSomeInputsFailed : clip::cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return clip::cli::run_main("clip-embed", [&] {
    Options options;
    if (const int status = parse(argc, argv, options); status >= 0) return status;
    return run(options);
  });
}
