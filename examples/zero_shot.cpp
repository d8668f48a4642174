// clip-zero-shot: classify images against free-text labels with a CLIP model.
//
//   clip-zero-shot --model M.safetensors --input examples/images --labels "red circle,blue square"
//
// Everything model-related is the library's (clip::Model, clip::ZeroShotClassifier, image
// decoding and preprocessing); this file parses arguments and prints.

#define CLIP_STB_IMAGE_IMPLEMENTATION  // header-only builds compile stb_image here (see README)
#include <clip/clip.hpp>

#include "common/options.hpp"  // the command line shared with the tools

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

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

/// Parses argv into `options`; returns -1 to go on, else the exit status.
int parse(int argc, char** argv, Options& options) {
  clip::cli::Command command("clip-zero-shot",
                             "Classifies images against free-text labels: each image's labels sorted by probability.");
  CLI::App& app = command.app();
  clip::cli::ImageInputs images;
  std::string labels, labels_file, templates_file;
  command.add_model(options.model);
  command.add_images(images);
  CLI::Option* labels_option = app.add_option("--labels", labels, "comma-separated labels: \"cat,dog,a red car\"");
  CLI::Option* labels_file_option =
      app.add_option("--labels-file", labels_file, "labels, one a line ('#' starts a comment line)")->type_name("FILE");
  labels_option->excludes(labels_file_option);
  CLI::Option* template_option =
      app.add_option("--template", options.templates, "prompt templates, {} standing for the label "
                                                      "(several are averaged; default \"a photo of a {}.\")")
          ->default_str("")
          ->type_name("STR");
  CLI::Option* templates_file_option =
      app.add_option("--templates-file", templates_file, "templates, one a line ('#' starts a comment line)")
          ->type_name("FILE");
  template_option->excludes(templates_file_option);
  app.add_option("--top-k", options.top_k, "print the K most likely labels (0: all)")->type_name("K");
  command.add_threads(options.threads);
  app.add_option("--cache", options.cache, "label embeddings cache, reused when made for the same model, labels "
                                           "and templates")
      ->type_name("FILE");
  clip::cli::OutputOptions output;
  command.add_output(output);
  if (const int status = command.parse(argc, argv); status >= 0) return status;
  options.json = output.json;

  options.images = clip::cli::resolve_images(images, std::cerr);
  if (options.images.empty()) throw clip::Error("no images given: use --image FILE... or --input FOLDER");
  options.labels = labels_file.empty() ? clip::cli::split_list(labels) : clip::cli::read_lines(labels_file, true);
  if (options.labels.empty())
    throw clip::Error(labels_file.empty() ? "no labels given: use --labels or --labels-file"
                                          : labels_file + ": no labels in the file");
  if (!templates_file.empty()) options.templates = clip::cli::read_lines(templates_file, true);
  if (options.templates.empty()) options.templates.push_back("a photo of a {}.");
  return -1;
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

  // Images in batches: decode and preprocess each; one that fails is reported and skipped.
  // `results` keeps the input order, failed images included (with their error).
  const clip::PreprocessOptions preprocess = clip::preprocess_options(model.config());
  nlohmann::json results = nlohmann::json::array();
  int failures = 0;
  const std::size_t batch_size = 16;
  const Progress progress("images", options.images.size(), 32);
  for (std::size_t first = 0; first < options.images.size(); first += batch_size) {
    const std::size_t end = std::min(first + batch_size, options.images.size());
    std::vector<std::size_t> decoded;  // indices into results of the images that decoded
    std::vector<clip::Image> images;
    for (std::size_t i = first; i < end; ++i) {
      try {
        images.push_back(clip::decode_image_file(options.images[i]));
        decoded.push_back(results.size());
        results.push_back({{"path", options.images[i]}});
      } catch (const clip::Error& e) {
        std::cerr << "clip-zero-shot: " << e.what() << "\n";
        results.push_back({{"path", options.images[i]}, {"error", e.what()}});
        ++failures;
      }
    }
    progress.update(end);
    if (images.empty()) continue;
    const auto features = model.encode_images(clip::preprocess_images(images, preprocess));
    const auto ranked = classifier.classify(features, options.top_k);
    for (std::size_t i = 0; i < decoded.size(); ++i) {
      nlohmann::json predictions = nlohmann::json::array();
      for (const clip::Prediction& p : ranked[i])
        predictions.push_back({{"label", classifier.labels()[p.label_index]}, {"probability", p.probability}, {"logit", p.logit}});
      results[decoded[i]]["predictions"] = std::move(predictions);
    }
  }

  if (options.json) {
    std::cout << nlohmann::json{{"images", results}}.dump(2) << "\n";
  } else {
    std::size_t label_width = 5;
    for (const std::string& label : options.labels) label_width = std::max(label_width, label.size());
    for (const auto& image : results) {
      if (image.contains("error")) continue;  // reported on stderr
      std::cout << image["path"].get<std::string>() << "\n";
      int rank = 1;
      for (const auto& p : image["predictions"])
        std::printf("  %2d. %-*s %7.2f%%  (logit %.2f)\n", rank++, static_cast<int>(label_width),
                    p["label"].get<std::string>().c_str(), 100.0 * p["probability"].get<double>(), p["logit"].get<double>());
    }
  }
  if (failures) std::cerr << "clip-zero-shot: " << failures << " image(s) could not be classified\n";
  return failures ? clip::cli::kExitSomeInputsFailed : clip::cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return clip::cli::run_main("clip-zero-shot", [&] {
    Options options;
    if (const int status = parse(argc, argv, options); status >= 0) return status;
    return run(options);
  });
}
