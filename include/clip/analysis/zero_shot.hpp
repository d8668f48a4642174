#pragma once
// Zero-shot classification as in the CLIP paper: each label's text embedding is the mean of its
// L2-normalised prompt-template embeddings, renormalised; an image's logits are
// exp(logit_scale) * cos(image, label), and its probabilities their softmax.

#include <clip/detail/atomic_write.hpp>
#include <clip/detail/compilation.hpp>
#include <clip/detail/mapped_file.hpp>
#include <clip/model/model.hpp>
#include <clip/analysis/similarity.hpp>
#include <clip/formats/tensor_file.hpp>
#include <clip/formats/tensor_writer.hpp>

#if CLIP_HEADER_DEFINITIONS
#include <nlohmann/json.hpp>
#endif

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <vector>

namespace clip {

/// "a photo of a {}." with {} replaced by the label (every occurrence).
inline std::string fill_template(const std::string& prompt_template, const std::string& label) {
  std::string text;
  std::size_t start = 0;
  while (true) {
    const std::size_t hole = prompt_template.find("{}", start);
    if (hole == std::string::npos) break;
    text.append(prompt_template, start, hole - start).append(label);
    start = hole + 2;
  }
  return text.append(prompt_template, start, std::string::npos);
}

/// A 64-bit content hash of a file (FNV-1a over 8-byte words), to key caches on a model's bytes
/// rather than its path or timestamp.
inline std::uint64_t file_content_hash(const std::string& path) {
  const detail::MappedFile file(path);
  std::uint64_t hash = 0xcbf29ce484222325ull ^ file.size();
  const std::uint8_t* data = file.data();
  const std::size_t words = file.size() / 8;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t word;
    std::memcpy(&word, data + 8 * i, 8);
    hash = (hash ^ word) * 0x100000001b3ull;
    hash ^= hash >> 29;
  }
  for (std::size_t i = words * 8; i < file.size(); ++i) hash = (hash ^ data[i]) * 0x100000001b3ull;
  return hash;
}

struct Prediction {
  std::size_t label_index = 0;
  float probability = 0;
  float logit = 0;
};

class ZeroShotClassifier {
 public:
  /// An empty classifier, to be assigned (e.g. by load_cache).
  ZeroShotClassifier() = default;

  /// Encodes every label with every template (prompt ensembling). `progress(done, total)`, if
  /// given, is called after each batch of prompts. Labels must be distinct and templates hold
  /// "{}" (clip::Error otherwise).
  ZeroShotClassifier(const Model<float>& model, std::vector<std::string> labels, std::vector<std::string> templates,
                     const std::function<void(std::size_t, std::size_t)>& progress = {});

  /// Restores a classifier saved with save(); returns false (and leaves `out` alone) when the
  /// cache was made for another model file, label list or template list, or cannot be read.
  /// `model_hash` is file_content_hash() of the model file, computed once by the caller.
  static bool load_cache(const std::string& cache_path, std::uint64_t model_hash, const Model<float>& model,
                         const std::vector<std::string>& labels, const std::vector<std::string>& templates,
                         ZeroShotClassifier& out, std::string* why = nullptr);

  /// Saves the label embeddings, keyed by the model file's content, labels and templates.
  void save_cache(const std::string& cache_path, std::uint64_t model_hash) const;

  const std::vector<std::string>& labels() const { return labels_; }
  const std::vector<std::string>& templates() const { return templates_; }
  /// [labels, embed_dim], each row unit length.
  const RowMatrix<float>& label_embeddings() const { return label_embeddings_; }

  /// logits [images, labels] for un-normalised image features [images, embed_dim].
  RowMatrix<float> logits(const RowMatrix<float>& image_features) const;

  /// Each image's labels sorted by probability (highest first), the top `top_k` (0: all).
  std::vector<std::vector<Prediction>> classify(const RowMatrix<float>& image_features, std::size_t top_k = 0) const;

 private:
  static constexpr const char* cache_format = "clip-zero-shot-cache-1";

  ZeroShotClassifier(std::vector<std::string> labels, std::vector<std::string> templates, float logit_scale)
      : labels_(std::move(labels)), templates_(std::move(templates)), logit_scale_(logit_scale) {}

  void check_inputs() const;

  std::vector<std::string> labels_;
  std::vector<std::string> templates_;
  float logit_scale_ = 1;
  RowMatrix<float> label_embeddings_;
};

// The heavy members are compiled once with separate compilation (clip/detail/compilation.hpp).
#if CLIP_HEADER_DEFINITIONS

CLIP_INLINE ZeroShotClassifier::ZeroShotClassifier(const Model<float>& model, std::vector<std::string> labels,
                                                   std::vector<std::string> templates,
                                                   const std::function<void(std::size_t, std::size_t)>& progress)
    : labels_(std::move(labels)), templates_(std::move(templates)), logit_scale_(model.logit_scale()) {
  check_inputs();
  const int embed_dim = model.config().embed_dim;
  label_embeddings_ = RowMatrix<float>::Zero(static_cast<Eigen::Index>(labels_.size()), embed_dim);
  // Encode in batches of prompts so a thousand-class, eighty-template classifier stays in memory.
  constexpr std::size_t batch_labels = 64;
  for (std::size_t first = 0; first < labels_.size(); first += batch_labels) {
    const std::size_t count = std::min(batch_labels, labels_.size() - first);
    std::vector<std::string> prompts;
    for (std::size_t l = first; l < first + count; ++l)
      for (const std::string& prompt_template : templates_) prompts.push_back(fill_template(prompt_template, labels_[l]));
    const RowMatrix<float> features = normalize_rows(model.encode_texts(model.tokenizer().tokenize(prompts)));
    for (std::size_t l = 0; l < count; ++l) {
      Eigen::RowVectorXf mean = features.middleRows(static_cast<Eigen::Index>(l * templates_.size()),
                                                     static_cast<Eigen::Index>(templates_.size()))
                                    .colwise()
                                    .mean();
      label_embeddings_.row(static_cast<Eigen::Index>(first + l)) = mean / mean.norm();
    }
    if (progress) progress(first + count, labels_.size());
  }
}

CLIP_INLINE bool ZeroShotClassifier::load_cache(const std::string& cache_path, std::uint64_t model_hash,
                                                const Model<float>& model, const std::vector<std::string>& labels,
                                                const std::vector<std::string>& templates, ZeroShotClassifier& out,
                                                std::string* why) {
  auto reject = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  try {
    const TensorFile cache(cache_path);
    const auto& metadata = cache.metadata();
    auto field = [&](const char* key) {
      auto found = metadata.find(key);
      return found == metadata.end() ? std::string() : found->second;
    };
    if (field("format") != cache_format) return reject("not a clip zero-shot cache");
    if (field("model_hash") != std::to_string(model_hash)) return reject("made for another model");
    if (field("labels") != nlohmann::json(labels).dump()) return reject("made for other labels");
    if (field("templates") != nlohmann::json(templates).dump()) return reject("made for other templates");
    const TensorInfo& info = cache.info("label_embeddings");
    const std::vector<std::int64_t> shape = {static_cast<std::int64_t>(labels.size()), model.config().embed_dim};
    if (info.shape != shape || info.dtype != DType::F32) return reject("label_embeddings has the wrong shape");
    ZeroShotClassifier restored(labels, templates, model.logit_scale());
    restored.label_embeddings_.resize(shape[0], shape[1]);
    cache.copy_to(info, restored.label_embeddings_.data());
    out = std::move(restored);
    return true;
  } catch (const Error& e) {
    return reject(e.what());
  }
}

CLIP_INLINE void ZeroShotClassifier::save_cache(const std::string& cache_path, std::uint64_t model_hash) const {
  TensorWriter writer;
  writer.set_metadata("format", cache_format);
  writer.set_metadata("model_hash", std::to_string(model_hash));
  writer.set_metadata("labels", nlohmann::json(labels_).dump());
  writer.set_metadata("templates", nlohmann::json(templates_).dump());
  writer.add("label_embeddings", DType::F32, {label_embeddings_.rows(), label_embeddings_.cols()},
             label_embeddings_.data());
  writer.write(cache_path);
}

CLIP_INLINE RowMatrix<float> ZeroShotClassifier::logits(const RowMatrix<float>& image_features) const {
  if (image_features.cols() != label_embeddings_.cols())
    throw Error("image features have " + std::to_string(image_features.cols()) + " columns, the labels " +
                std::to_string(label_embeddings_.cols()));
  return logit_scale_ * normalize_rows(image_features) * label_embeddings_.transpose();
}

CLIP_INLINE std::vector<std::vector<Prediction>> ZeroShotClassifier::classify(const RowMatrix<float>& image_features,
                                                                              std::size_t top_k) const {
  const RowMatrix<float> image_logits = logits(image_features);
  const RowMatrix<float> probabilities = softmax_rows(image_logits);
  std::vector<std::vector<Prediction>> result;
  for (Eigen::Index i = 0; i < image_logits.rows(); ++i) {
    std::vector<Prediction> ranked(labels_.size());
    for (std::size_t l = 0; l < labels_.size(); ++l) {
      const auto column = static_cast<Eigen::Index>(l);
      ranked[l] = {l, probabilities(i, column), image_logits(i, column)};
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const Prediction& a, const Prediction& b) { return a.probability > b.probability; });
    if (top_k != 0 && top_k < ranked.size()) ranked.resize(top_k);
    result.push_back(std::move(ranked));
  }
  return result;
}

CLIP_INLINE void ZeroShotClassifier::check_inputs() const {
  if (labels_.empty()) throw Error("zero-shot classification needs at least one label");
  if (templates_.empty()) throw Error("zero-shot classification needs at least one prompt template");
  for (const std::string& prompt_template : templates_)
    if (prompt_template.find("{}") == std::string::npos)
      throw Error("prompt template '" + prompt_template + "' has no {} for the label");
  // A repeated label would split its probability between the copies.
  std::map<std::string, std::size_t> first_index;
  for (std::size_t i = 0; i < labels_.size(); ++i) {
    const auto [found, inserted] = first_index.emplace(labels_[i], i);
    if (!inserted)
      throw Error("label '" + labels_[i] + "' is given twice (labels " + std::to_string(found->second + 1) + " and " +
                  std::to_string(i + 1) + ")");
  }
}

#endif  // CLIP_HEADER_DEFINITIONS

}  // namespace clip
