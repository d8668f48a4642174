// clip-embed: image and text embeddings as JSON (or .npy files for large jobs).

#include "cli.hpp"

#define CLIP_STB_IMAGE_IMPLEMENTATION
#include <clip/clip.hpp>

#include "embed_sharded.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <optional>
#include <thread>
#include <tuple>
#include <string>
#include <vector>

namespace {

const char* const usage = R"(usage: clip-embed --model M [--image PATH]... [--images-file LIST] [--text STR]... [--texts-file LIST]
                  [--texts-jsonl FILE] [--normalize] [--pixels] [--no-truncate] [--batch N] [--threads N]
                  [--json | --npy OUT_PREFIX]
       clip-embed --model M --input SOURCE --output-dir OUT [--shard-size N] [--worker I/N] [--batch N]
                  [--threads N] [--decode-threads N] [--normalize] [--no-truncate]
Features are un-normalised (like OpenAI's encode_image/encode_text) unless --normalize. Texts too long
for the context are truncated (last token EOT) unless --no-truncate, which reports them as errors.
--npy writes OUT_PREFIX.images.npy, OUT_PREFIX.texts.npy (float32 [N, D]) and OUT_PREFIX.json.
--input takes a folder (recursive), a file listing image paths, or WebDataset shards ('shards/{000000..000123}.tar',
also .tar.gz); --output-dir OUT gets img_emb/img_emb_<shard>.npy, text_emb/text_emb_<shard>.npy (captions) and
metadata/metadata_<shard>.jsonl per shard; finished shards are skipped on a rerun. --worker I/N takes every N-th shard
from the I-th (0-based). Folders and lists are cut into shards of --shard-size items (default 10000).
--list-shards prints the shard names of --input, one a line (shard i is --worker i/N with N the count).
)";

struct Options {
  std::string model;
  std::vector<std::string> images;
  std::vector<std::string> texts;
  bool normalize = false;
  bool pixels = false;
  bool truncate = true;
  std::size_t batch = 16;
  int threads = 0;
  std::string npy_prefix;
  std::string input;
  clip::cli::ShardedOptions sharded;
  int decode_threads = 0;
  bool list_shards = false;
};

std::vector<std::string> read_jsonl_strings(const std::string& path) {
  std::vector<std::string> texts;
  std::size_t number = 0;
  for (const std::string& line : clip::cli::read_lines(path)) {
    ++number;
    try {
      texts.push_back(nlohmann::json::parse(line).get<std::string>());
    } catch (const nlohmann::json::exception& e) {
      throw clip::Error(path + ":" + std::to_string(number) + ": not a JSON string (" + e.what() + ")");
    }
  }
  return texts;
}

Options parse(int argc, char** argv) {
  Options options;
  clip::cli::Arguments args(argc, argv);
  while (args.next()) {
    const std::string arg = args.current();
    auto value = [&] { return args.value(); };
    using clip::cli::append;
    if (arg == "--model") options.model = value();
    else if (arg == "--image") options.images.push_back(value());
    else if (arg == "--images-file") append(options.images, clip::cli::read_lines(value()));
    else if (arg == "--text") options.texts.push_back(value());
    else if (arg == "--texts-file") append(options.texts, clip::cli::read_lines(value()));
    else if (arg == "--texts-jsonl") append(options.texts, read_jsonl_strings(value()));
    else if (arg == "--normalize") options.normalize = true;
    else if (arg == "--pixels") options.pixels = true;
    else if (arg == "--no-truncate") options.truncate = false;
    else if (arg == "--batch") options.batch = static_cast<std::size_t>(clip::cli::parse_integer(arg, value()));
    else if (arg == "--threads") options.threads = static_cast<int>(clip::cli::parse_integer(arg, value()));
    else if (arg == "--json") options.npy_prefix.clear();
    else if (arg == "--npy") options.npy_prefix = value();
    else if (arg == "--input") options.input = value();
    else if (arg == "--output-dir") options.sharded.output_dir = value();
    else if (arg == "--shard-size") options.sharded.shard_size = static_cast<std::size_t>(clip::cli::parse_integer(arg, value()));
    else if (arg == "--worker") std::tie(options.sharded.worker_index, options.sharded.worker_count) = clip::cli::parse_worker(value());
    else if (arg == "--list-shards") options.list_shards = true;
    else if (arg == "--decode-threads") options.decode_threads = static_cast<int>(clip::cli::parse_integer(arg, value()));
    else if (arg == "-h" || arg == "--help") {
      std::cout << usage;
      std::exit(0);
    } else throw clip::Error("unknown argument '" + arg + "'\n" + usage);
  }
  if (options.model.empty() && !options.list_shards) throw clip::Error(std::string("--model is required\n") + usage);
  if (options.list_shards) {
    if (options.input.empty()) throw clip::Error(std::string("--list-shards needs --input\n") + usage);
    return options;
  }
  if (!options.input.empty()) {
    if (options.sharded.output_dir.empty()) throw clip::Error(std::string("--input needs --output-dir\n") + usage);
    if (!options.images.empty() || !options.texts.empty())
      throw clip::Error(std::string("--input does not mix with --image/--text\n") + usage);
    return options;
  }
  if (options.images.empty() && options.texts.empty()) throw clip::Error(std::string("nothing to embed\n") + usage);
  return options;
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
        const clip::TokenMatrix row = model.tokenizer().tokenize({options.texts[i]}, context, options.truncate);
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

/// A float32 [rows, cols] .npy file (format version 1.0), written atomically.
void write_npy(const std::string& path, const std::vector<const std::vector<float>*>& rows, std::size_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows.size()) + ", " +
                       std::to_string(cols) + "), }";
  header.append(63 - (10 + header.size()) % 64, ' ');  // pad so the data starts at a multiple of 64
  header += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file.push_back(static_cast<char>(header.size() & 0xFF));
  file.push_back(static_cast<char>(header.size() >> 8));
  file += header;
  for (const std::vector<float>* row : rows) file.append(reinterpret_cast<const char*>(row->data()), row->size() * sizeof(float));
  clip::detail::write_file_atomically(path, file);
}

int run(const Options& options) {
  if (options.list_shards) {  // for drivers (tools/clip-dask.py): shard i of this list is --worker i/N
    for (const clip::ShardInput& shard : clip::plan_shards(options.input, options.sharded.shard_size))
      std::cout << shard.name << "\n";
    return 0;
  }
  if (options.threads > 0) clip::set_num_threads(options.threads);
  const clip::Model<float> model(options.model);
  if (!options.input.empty()) {
    clip::cli::ShardedOptions sharded = options.sharded;
    sharded.input = options.input;
    sharded.pipeline.batch_size = static_cast<int>(options.batch);
    sharded.pipeline.decode_threads =
        options.decode_threads > 0 ? options.decode_threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    sharded.pipeline.normalize = options.normalize;
    sharded.pipeline.truncate_captions = options.truncate;
    return clip::cli::run_sharded(model, sharded);
  }
  const std::vector<Embedded> images = embed_images(model, options);
  const std::vector<Embedded> texts = embed_texts(model, options);

  int failures = 0;
  nlohmann::json image_items = nlohmann::json::array(), text_items = nlohmann::json::array();
  for (std::size_t i = 0; i < images.size(); ++i) {
    nlohmann::json item = {{"path", options.images[i]}};
    if (images[i].features) {
      if (options.npy_prefix.empty()) item["features"] = *images[i].features;
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
      if (options.npy_prefix.empty()) item["features"] = *texts[i].features;
    } else {
      item["error"] = texts[i].error;
      std::cerr << "clip-embed: text " << i << ": " << texts[i].error << "\n";
      ++failures;
    }
    text_items.push_back(std::move(item));
  }

  nlohmann::json document = {{"embed_dim", model.config().embed_dim}, {"logit_scale", model.logit_scale()},
                             {"images", image_items}, {"texts", text_items}};
  if (!images.empty() && !texts.empty()) document["logits_per_image"] = logits_json(model, images, texts);
  const auto dump = [](const nlohmann::json& json) { return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };

  if (options.npy_prefix.empty()) {
    std::cout << dump(document) << "\n";
  } else {
    // The .npy files hold the rows that succeeded, in input order; the index says which.
    for (auto [name, items, json_items] : {std::tuple{"images", &images, &image_items}, std::tuple{"texts", &texts, &text_items}}) {
      std::vector<const std::vector<float>*> rows;
      for (std::size_t i = 0; i < items->size(); ++i) {
        if (!(*items)[i].features) continue;
        (*json_items)[i]["row"] = rows.size();
        rows.push_back(&*(*items)[i].features);
      }
      document[name] = *json_items;
      if (!items->empty()) write_npy(options.npy_prefix + "." + name + ".npy", rows, static_cast<std::size_t>(model.config().embed_dim));
    }
    clip::detail::write_file_atomically(options.npy_prefix + ".json", dump(document) + "\n");
  }
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clip::cli::run_main("clip-embed", [&] { return run(parse(argc, argv)); });
}
