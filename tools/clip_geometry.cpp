// clip-geometry: the double-ellipsoid geometry of a set of paired CLIP embeddings (Levi &
// Gilboa, ICML 2025): both shells, the modality gap, conformity and the loss terms, as JSON, a
// short summary, or an HTML report with plots.

#include "common/options.hpp"
#include "geometry_report.hpp"

#include <clip/analysis/geometry.hpp>
#include <clip/clip.hpp>
#include <clip/formats/npy.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace geometry = clip::geometry;

struct Options {
  std::string images_npy, texts_npy;
  std::string model, captions;
  clip::cli::ImageInputs images;  // --image / --input with --model
  std::optional<double> logit_scale;
  std::vector<double> shift_sweep{-1, -0.5, 0, 0.25, 0.5, 0.75, 1, 1.5};
  long top_k = 10;
  long loss_batch = 0;
  bool unpaired = false;
  bool truncate = false;
  clip::cli::OutputOptions output;
  std::string report_dir;
  int threads = 0;
};

/// Parses argv into `options`; returns -1 to go on, else the exit status (tools/common/options.hpp).
int parse(int argc, char** argv, Options& options) {
  clip::cli::Command command("clip-geometry",
                             "The geometry of paired CLIP embeddings (Levi & Gilboa, ICML 2025): both shells, the "
                             "modality gap, conformity and the loss terms, as a summary, JSON or an HTML report. "
                             "Input: two .npy files (row k of images pairs row k of texts), or a model, images and "
                             "their captions to embed first.");
  CLI::App& app = command.app();
  app.add_option("--images-npy", options.images_npy, "image features, float32/float64 [n, d] .npy (clip-embed --npy)")->type_name("FILE");
  app.add_option("--texts-npy", options.texts_npy, "text features [n, d] .npy; row k pairs image row k")->type_name("FILE");
  command.add_model(options.model, /*required=*/false);  // embeds --input/--image with --captions first
  command.add_images(options.images);
  app.add_option("--captions", options.captions,
                 "captions, one a line: paired with the images in order (a folder's in sorted path order), or "
                 "'file<TAB>caption' lines (file relative to the --input folder)")
      ->type_name("FILE");
  command.add_truncate(options.truncate);
  app.add_option("--logit-scale", options.logit_scale, "exp'd logit scale of the paired terms (default: the model's, else 100)")
      ->type_name("S");
  std::string sweep;
  app.add_option("--shift-sweep", sweep, "alphas: images shifted to I - alpha*mean(I) (default -1,-0.5,0,0.25,0.5,0.75,1,1.5)")
      ->type_name("A,B,...");
  app.add_option("--top-k", options.top_k, "separating features to list")->check(CLI::PositiveNumber.description(""))->type_name("K");
  app.add_option("--loss-batch", options.loss_batch,
                 "paired terms over consecutive batches of this many pairs (0: all n at once; the cost is n*batch*d)")
      ->check(CLI::NonNegativeNumber.description(""))
      ->type_name("N");
  app.add_flag("--unpaired", options.unpaired, "skip the paired terms (the counts may differ)");
  app.add_option("--report", options.report_dir, "write an HTML report to DIR/index.html (and each plot as DIR/*.svg)")->type_name("DIR");
  command.add_threads(options.threads);
  command.add_output(options.output);
  if (const int status = command.parse(argc, argv); status >= 0) return status;

  const bool from_npy = !options.images_npy.empty() || !options.texts_npy.empty();
  const bool from_model = !options.model.empty() || !options.images.files.empty() || !options.images.sources.empty() ||
                          !options.captions.empty();
  if (from_npy == from_model) throw clip::Error("give --images-npy and --texts-npy, or --model, --input and --captions");
  if (from_npy && (options.images_npy.empty() || options.texts_npy.empty()))
    throw clip::Error("--images-npy and --texts-npy go together");
  if (from_model && (options.model.empty() || options.captions.empty() ||
                     (options.images.files.empty() && options.images.sources.empty())))
    throw clip::Error("--model needs --input DIR (or --image PATH...) and --captions FILE");
  if (!sweep.empty()) {
    options.shift_sweep.clear();
    for (const std::string& part : clip::cli::split_list(sweep)) {
      std::size_t used = 0;
      double value = 0;
      try {
        value = std::stod(part, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != part.size() || !std::isfinite(value)) throw clip::Error("--shift-sweep: '" + part + "' is not a number");
      options.shift_sweep.push_back(value);
    }
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Inputs

/// (image path, caption) pairs from the images given and a captions file.
std::vector<std::pair<std::string, std::string>> read_pairs(const Options& options) {
  const std::vector<std::string> lines = clip::cli::read_lines(options.captions, /*skip_comments=*/false);
  const bool tabbed = !lines.empty() && std::all_of(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find('\t') != std::string::npos;
  });
  std::vector<std::pair<std::string, std::string>> pairs;
  if (tabbed) {
    // Files are named relative to the one --input folder (or the current folder).
    const bool one_folder = options.images.files.empty() && options.images.sources.size() == 1 &&
                            fs::is_directory(options.images.sources[0]);
    const fs::path base = one_folder ? fs::path(options.images.sources[0]) : fs::path();
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::size_t tab = lines[i].find('\t');
      const fs::path file = base / lines[i].substr(0, tab);
      if (!fs::is_regular_file(file))
        throw clip::Error(options.captions + ":" + std::to_string(i + 1) + ": no image file " + file.string());
      pairs.emplace_back(file.string(), lines[i].substr(tab + 1));
    }
    return pairs;
  }
  const std::vector<std::string> images = clip::cli::resolve_images(options.images, std::cerr);
  if (lines.size() != images.size())
    throw clip::Error(options.captions + ": " + std::to_string(lines.size()) + " captions for " + std::to_string(images.size()) +
                      " images (paired by order, the counts must match; or use 'file<TAB>caption' lines)");
  for (std::size_t i = 0; i < lines.size(); ++i) pairs.emplace_back(images[i], lines[i]);
  return pairs;
}

/// Embeds the pairs with the model, as clip-embed does (un-normalised features).
void embed(const Options& options, clip::RowMatrix<float>& image_features, clip::RowMatrix<float>& text_features, double& scale) {
  const clip::Model<float> model(options.model);
  const auto pairs = read_pairs(options);
  if (pairs.size() < 2) throw clip::Error(options.captions + ": needs at least 2 pairs, has " + std::to_string(pairs.size()));
  const clip::PreprocessOptions preprocess = clip::preprocess_options(model.config());
  const int context = model.config().text.context_length;
  const auto n = static_cast<Eigen::Index>(pairs.size());
  image_features.resize(n, model.config().embed_dim);
  text_features.resize(n, model.config().embed_dim);
  constexpr Eigen::Index batch = 32;
  for (Eigen::Index first = 0; first < n; first += batch) {
    const Eigen::Index count = std::min(batch, n - first);
    std::vector<clip::Image> images;
    clip::TokenMatrix tokens(count, context);
    for (Eigen::Index i = 0; i < count; ++i) {
      images.push_back(clip::decode_image_file(pairs[first + i].first));
      try {
        tokens.row(i) = model.tokenizer().tokenize({pairs[first + i].second}, context, options.truncate);
      } catch (const clip::Error& e) {
        throw clip::Error(options.captions + ": caption for " + pairs[first + i].first + ": " + e.what());
      }
    }
    image_features.middleRows(first, count) = model.encode_images(clip::preprocess_images(images, preprocess));
    text_features.middleRows(first, count) = model.encode_texts(tokens);
  }
  scale = model.logit_scale();
}

// ---------------------------------------------------------------------------------------------
// Output

nlohmann::json vector_json(const Eigen::VectorXd& v) { return std::vector<double>(v.data(), v.data() + v.size()); }

nlohmann::json shell_json(const geometry::ShellStatistics& s) {
  return {{"count", s.count},
          {"dim", s.dim},
          {"mean_norm", s.mean_norm},
          {"norm_std", s.norm_std},
          {"mean_vector_norm", s.mean_vector_norm},
          {"sqrt_trace_covariance", s.sqrt_trace_covariance},
          {"feature_variance", vector_json(s.feature_variance)},
          {"off_diagonal_dominance", vector_json(s.off_diagonal_dominance)},
          {"conformity", vector_json(s.conformity)},
          {"conformity_estimate", vector_json(s.conformity_estimate)},
          {"conformity_pearson", s.conformity_pearson},
          {"conformity_fit", {{"a", s.conformity_fit.a}, {"b", s.conformity_fit.b}}}};
}

nlohmann::json terms_json(const geometry::PairedTerms& t) {
  return {{"alpha", t.alpha}, {"alignment", t.alignment}, {"uniformity", t.uniformity}, {"loss", t.loss}};
}

nlohmann::json report_json(const geometry::GeometryReport& r, double scale, std::size_t top_k) {
  nlohmann::json separability = nlohmann::json::array();
  for (std::size_t i = 0; i < std::min(top_k, r.separating_features.size()); ++i)
    separability.push_back({{"feature", r.separating_features[i].feature}, {"accuracy", r.separating_features[i].accuracy}});
  nlohmann::json json = {{"images", shell_json(r.images)},
                         {"texts", shell_json(r.texts)},
                         {"gap",
                          {{"centroid_distance", r.centroid_distance},
                           {"normalized_centroid_distance", r.normalized_centroid_distance},
                           {"feature_separability", separability}}}};
  if (r.has_paired) {
    json["paired"] = {{"alignment", r.paired.alignment}, {"uniformity", r.paired.uniformity}, {"loss", r.paired.loss}, {"logit_scale", scale}};
  } else {
    json["paired"] = nullptr;
  }
  json["shift_sweep"] = nlohmann::json::array();
  for (const geometry::PairedTerms& t : r.shift_sweep) json["shift_sweep"].push_back(terms_json(t));
  return json;
}

void print_summary(const geometry::GeometryReport& r, double scale, std::size_t top_k) {
  const auto shell = [](const char* name, const geometry::ShellStatistics& s) {
    std::printf("%s: %lld x %lld\n", name, static_cast<long long>(s.count), static_cast<long long>(s.dim));
    std::printf("  norm %.4g +- %.3g (thin shell: std/mean %.3g)\n", s.mean_norm, s.norm_std, s.norm_std / s.mean_norm);
    std::printf("  |mean| %.4g vs sqrt(trace C) %.4g (off-centre: ratio %.3g)\n", s.mean_vector_norm, s.sqrt_trace_covariance,
                s.mean_vector_norm / s.sqrt_trace_covariance);
    std::printf("  off-diagonal dominance: median %.3g (tilted when >> 0)\n", report_detail::median(s.off_diagonal_dominance));
    std::printf("  conformity mean %.4g; vs its estimate: Pearson %.6f, c = %.4g e %+.4g\n", s.conformity.mean(), s.conformity_pearson,
                s.conformity_fit.a, s.conformity_fit.b);
  };
  shell("images", r.images);
  shell("texts", r.texts);
  std::printf("gap: centroid distance %.4g (normalised %.4g)\n", r.centroid_distance, r.normalized_centroid_distance);
  std::printf("  separating features:");
  for (std::size_t i = 0; i < std::min<std::size_t>(top_k, r.separating_features.size()); ++i)
    std::printf(" %lld (%.3f)", static_cast<long long>(r.separating_features[i].feature), r.separating_features[i].accuracy);
  std::printf("\n");
  if (r.has_paired) {
    std::printf("paired (scale %.4g): alignment %.4f, uniformity %.4f, loss %.4f\n", scale, r.paired.alignment, r.paired.uniformity,
                r.paired.loss);
    for (const geometry::PairedTerms& t : r.shift_sweep)
      std::printf("  shift alpha %+.3g: alignment %.4f, uniformity %.4f, loss %.4f\n", t.alpha, t.alignment, t.uniformity, t.loss);
  }
}

template <typename Scalar>
Eigen::Map<const clip::RowMatrix<Scalar>> features_of(const clip::NpyFile& file) {
  return Eigen::Map<const clip::RowMatrix<Scalar>>(file.data<Scalar>(), static_cast<Eigen::Index>(file.rows()),
                                                   static_cast<Eigen::Index>(file.cols()));
}

template <typename Scalar>
int analyze_and_write(const Options& options, const geometry::Features<Scalar>& images, const geometry::Features<Scalar>& texts,
                      double scale, const std::string& source) {
  if (images.cols() != texts.cols())
    throw clip::Error("image features have " + std::to_string(images.cols()) + " columns, text features " +
                      std::to_string(texts.cols()) + "; both modalities need the same dimension");
  geometry::GeometryOptions settings;
  settings.logit_scale = scale;
  settings.shift_alphas = options.shift_sweep;
  settings.top_k = std::max<Eigen::Index>(options.top_k, options.report_dir.empty() ? 0 : 20);
  settings.paired = !options.unpaired;
  settings.loss_batch = options.loss_batch;
  const geometry::GeometryReport report = geometry::analyze(images, texts, settings);
  const auto top_k = static_cast<std::size_t>(options.top_k);
  // Everything is computed before anything is written: a failure leaves no partial output.
  RenderedReport rendered;
  if (!options.report_dir.empty()) rendered = render_report(report, images, texts, scale, source);
  if (options.output.json)
    std::cout << report_json(report, scale, top_k).dump() << "\n";
  else
    print_summary(report, scale, top_k);
  if (!options.report_dir.empty()) {
    fs::create_directories(options.report_dir);
    for (const auto& [file, svg] : rendered.svgs)
      clip::detail::write_file_atomically((fs::path(options.report_dir) / file).string(), svg);
    clip::detail::write_file_atomically((fs::path(options.report_dir) / "index.html").string(), rendered.page);
    std::cerr << "clip-geometry: wrote " << (fs::path(options.report_dir) / "index.html").string() << "\n";
  }
  return 0;
}

int run(const Options& options) {
  if (options.threads > 0) clip::set_num_threads(options.threads);
  if (!options.report_dir.empty() && fs::exists(options.report_dir) && !fs::is_directory(options.report_dir))
    throw clip::Error(options.report_dir + ": --report needs a folder, this is a file");
  if (!options.model.empty()) {
    clip::RowMatrix<float> images, texts;
    double scale = 0;
    embed(options, images, texts, scale);
    return analyze_and_write<float>(options, images, texts, options.logit_scale.value_or(scale),
                                    options.model + " on " + options.captions);
  }
  const clip::NpyFile images(options.images_npy), texts(options.texts_npy);
  if (images.type() != texts.type())
    throw clip::Error(options.images_npy + " and " + options.texts_npy + ": one is float32, the other float64; save both alike");
  const double scale = options.logit_scale.value_or(100.0);
  const std::string source = options.images_npy + " and " + options.texts_npy;
  if (images.type() == clip::NpyType::Float32)
    return analyze_and_write<float>(options, features_of<float>(images), features_of<float>(texts), scale, source);
  return analyze_and_write<double>(options, features_of<double>(images), features_of<double>(texts), scale, source);
}

}  // namespace

int main(int argc, char** argv) {
  return clip::cli::run_main("clip-geometry", [&] {
    Options options;
    if (const int status = parse(argc, argv, options); status >= 0) return status;
    return run(options);
  });
}
