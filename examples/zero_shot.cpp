// clip-zero-shot: classify images against free-text labels with a CLIP model.
//
//   clip-zero-shot --model M.safetensors --images examples/images --labels "red circle,blue square"
//
// Everything model-related is the library's (clip::Model, clip::ZeroShotClassifier, image
// decoding and preprocessing); this file parses arguments and prints.

#define CLIP_STB_IMAGE_IMPLEMENTATION
#include <clip/clip.hpp>

#include "cli.hpp"  // argument helpers shared with the tools

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

const char* const usage = R"(usage: clip-zero-shot --model M.safetensors (--image PATH ... | --images DIR)
                      (--labels "cat,dog,a red car" | --labels-file FILE)
                      [--template "a photo of a {}."]... | [--templates-file FILE]
                      [--top-k K] [--json] [--threads N] [--cache FILE]
Prints each image's labels sorted by probability. Files: one label or template per line.
)";

struct Options {
  std::string model;
  std::vector<std::string> images;
  std::vector<std::string> labels;
  std::vector<std::string> templates;
  std::size_t top_k = 0;
  bool json = false;
  int threads = 0;
  std::string cache;
};

bool is_image_file(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* known : {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tga", ".pnm", ".ppm", ".pgm"})
    if (extension == known) return true;
  return false;
}

/// The image files under `dir`, recursively, in a stable order.
std::vector<std::string> walk_images(const std::string& dir) {
  if (!fs::is_directory(dir)) throw clip::Error(dir + ": not a directory");
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file() && is_image_file(entry.path())) files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

Options parse(int argc, char** argv) {
  Options options;
  using clip::cli::append;
  clip::cli::Arguments args(argc, argv);
  while (args.next()) {
    const std::string arg = args.current();
    auto value = [&] { return args.value(); };
    if (arg == "--model") options.model = value();
    else if (arg == "--image") options.images.push_back(value());
    else if (arg == "--images") append(options.images, walk_images(value()));
    else if (arg == "--labels") append(options.labels, clip::cli::split_list(value()));
    else if (arg == "--labels-file") append(options.labels, clip::cli::read_lines(value()));
    else if (arg == "--template") options.templates.push_back(value());
    else if (arg == "--templates-file") append(options.templates, clip::cli::read_lines(value()));
    else if (arg == "--top-k") options.top_k = static_cast<std::size_t>(clip::cli::parse_integer(arg, value()));
    else if (arg == "--json") options.json = true;
    else if (arg == "--threads") options.threads = static_cast<int>(clip::cli::parse_integer(arg, value()));
    else if (arg == "--cache") options.cache = value();
    else if (arg == "-h" || arg == "--help") {
      std::cout << usage;
      std::exit(0);
    } else throw clip::Error("unknown argument '" + arg + "'\n" + usage);
  }
  if (options.model.empty()) throw clip::Error(std::string("--model is required\n") + usage);
  if (options.images.empty()) throw clip::Error(std::string("no images given (--image or --images)\n") + usage);
  if (options.labels.empty()) throw clip::Error(std::string("no labels given (--labels or --labels-file)\n") + usage);
  if (options.templates.empty()) options.templates.push_back("a photo of a {}.");
  return options;
}

/// A one-line progress bar on stderr, drawn only for a person watching a terminal.
class Progress {
 public:
  Progress(const char* what, std::size_t total, std::size_t worth_showing)
      : what_(what), total_(total), shown_(total >= worth_showing && isatty(STDERR_FILENO)) {}
  void update(std::size_t done) const {
    if (!shown_) return;
    const int width = 30;
    const int filled = static_cast<int>(width * done / std::max<std::size_t>(total_, 1));
    std::fprintf(stderr, "\r%-8s [%s%s] %zu/%zu", what_, std::string(filled, '#').c_str(),
                 std::string(width - filled, ' ').c_str(), done, total_);
    if (done >= total_) std::fputc('\n', stderr);
  }

 private:
  const char* what_;
  std::size_t total_;
  bool shown_;
};

int run(const Options& options) {
  if (options.threads > 0) clip::set_num_threads(options.threads);
  const clip::Model<float> model(options.model);

  // Label embeddings: from the cache when it was made for this model, labels and templates.
  // The cache is keyed by the model file's content; hash it once (it is read in full).
  const std::uint64_t model_hash = options.cache.empty() ? 0 : clip::file_content_hash(options.model);
  clip::ZeroShotClassifier classifier;
  std::string why;
  const bool cached = !options.cache.empty() &&
                      clip::ZeroShotClassifier::load_cache(options.cache, model_hash, model, options.labels,
                                                           options.templates, classifier, &why);
  if (!cached) {
    if (!options.cache.empty() && fs::exists(options.cache))
      std::cerr << "note: ignoring cache " << options.cache << " (" << why << ")\n";
    const Progress progress("labels", options.labels.size(), 256);
    classifier = clip::ZeroShotClassifier(model, options.labels, options.templates,
                                          [&](std::size_t done, std::size_t) { progress.update(done); });
    if (!options.cache.empty()) classifier.save_cache(options.cache, model_hash);
  }

  // Images in batches: decode and preprocess each, skipping (and reporting) the ones that fail.
  const clip::PreprocessOptions preprocess = clip::preprocess_options(model.config());
  nlohmann::json results = nlohmann::json::array();
  int failures = 0;
  const std::size_t batch_size = 16;
  const Progress progress("images", options.images.size(), 32);
  for (std::size_t first = 0; first < options.images.size(); first += batch_size) {
    std::vector<std::string> paths;
    std::vector<clip::Image> images;
    for (std::size_t i = first; i < std::min(first + batch_size, options.images.size()); ++i) {
      try {
        images.push_back(clip::decode_image_file(options.images[i]));
        paths.push_back(options.images[i]);
      } catch (const clip::Error& e) {
        std::cerr << "clip-zero-shot: skipped " << e.what() << "\n";
        ++failures;
      }
    }
    progress.update(std::min(first + batch_size, options.images.size()));
    if (images.empty()) continue;
    const auto features = model.encode_images(clip::preprocess_images(images, preprocess));
    const auto ranked = classifier.classify(features, options.top_k);
    for (std::size_t i = 0; i < paths.size(); ++i) {
      nlohmann::json predictions = nlohmann::json::array();
      for (const clip::Prediction& p : ranked[i])
        predictions.push_back({{"label", classifier.labels()[p.label_index]}, {"probability", p.probability}, {"logit", p.logit}});
      results.push_back({{"path", paths[i]}, {"predictions", predictions}});
    }
  }

  if (options.json) {
    std::cout << nlohmann::json{{"images", results}}.dump(2) << "\n";
  } else {
    std::size_t label_width = 5;
    for (const std::string& label : options.labels) label_width = std::max(label_width, label.size());
    for (const auto& image : results) {
      std::cout << image["path"].get<std::string>() << "\n";
      int rank = 1;
      for (const auto& p : image["predictions"])
        std::printf("  %2d. %-*s %7.2f%%  (logit %.2f)\n", rank++, static_cast<int>(label_width),
                    p["label"].get<std::string>().c_str(), 100.0 * p["probability"].get<double>(), p["logit"].get<double>());
    }
  }
  if (failures) std::cerr << "clip-zero-shot: " << failures << " image(s) could not be classified\n";
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clip::cli::run_main("clip-zero-shot", [&] { return run(parse(argc, argv)); });
}
