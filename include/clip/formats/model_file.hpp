#pragma once
// ModelFile: a clip model file opened and checked against its own config. After construction
// every canonical tensor is known to exist with the shape the config implies and a float dtype
// (or, for the block matrices of a q8 file, I8 with valid scales; see formats/q8.hpp), so the
// encoders can read weights without further checks.

#include <clip/config.hpp>
#include <clip/detail/compilation.hpp>
#include <clip/formats/q8.hpp>
#include <clip/formats/tensor_file.hpp>

#include <string>
#include <utility>

namespace clip {

/// Identifies the format in `__metadata__`; bump the version on incompatible changes.
inline constexpr const char* model_format_name = "clip";
inline constexpr const char* model_format_version = "1";
inline constexpr const char* merges_tensor_name = "tokenizer.merges";

class ModelFile {
 public:
  explicit ModelFile(const std::string& path) : ModelFile(TensorFile(path)) {}

  /// Checks a model file already opened (e.g. TensorFile::from_bytes for a file in memory).
  explicit ModelFile(TensorFile tensors);

  const std::string& path() const { return tensors_.path(); }
  const ModelConfig& config() const { return config_; }
  const TensorFile& tensors() const { return tensors_; }

  /// Whether any block matrix is stored as q8 (int8 with per-output-channel scales).
  bool quantized() const { return quantized_; }

  /// The BPE merges text (header line, then one merge per line) the tokenizer is built from.
  std::string merges_text() const { return tensors_.read_text(merges_tensor_name); }

 private:
  TensorFile tensors_;
  ModelConfig config_;
  bool quantized_ = false;
};

#if CLIP_HEADER_DEFINITIONS

CLIP_INLINE ModelFile::ModelFile(TensorFile tensors) : tensors_(std::move(tensors)) {
  const std::string& path = tensors_.path();
  const auto& metadata = tensors_.metadata();
  auto field = [&](const char* key) -> const std::string& {
    auto found = metadata.find(key);
    if (found == metadata.end())
      throw Error(path + ": not a clip model file (no '" + std::string(key) +
                  "' in __metadata__; convert checkpoints with clip-convert)");
    return found->second;
  };
  if (field("format") != model_format_name)
    throw Error(path + ": __metadata__ format is '" + field("format") + "', expected '" + model_format_name + "'");
  if (field("format_version") != model_format_version)
    throw Error(path + ": format_version '" + field("format_version") + "' is not supported (this library reads " +
                model_format_version + ")");
  nlohmann::json config_json;
  try {
    config_json = nlohmann::json::parse(field("config"));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": config metadata is not valid JSON: " + e.what());
  }
  config_ = config_from_json(config_json, path);

  for (const TensorSpec& spec : canonical_tensors(config_)) {
    if (!tensors_.contains(spec.name)) throw Error(path + ": missing tensor '" + spec.name + "'");
    const TensorInfo& tensor = tensors_.info(spec.name);
    // logit_scale may be stored as a scalar [] or as [1]; both hold one value.
    const bool scalar_ok = spec.shape.empty() && tensor.numel() == 1 && tensor.shape.size() <= 1;
    if (tensor.shape != spec.shape && !scalar_ok)
      throw Error(path + ": tensor '" + spec.name + "' has shape " + shape_string(tensor.shape) +
                  ", the config implies " + shape_string(spec.shape));
    if (tensor.dtype == DType::I8 && is_q8_weight_name(spec.name)) {
      detail::check_q8_scales(tensors_, tensor);
      quantized_ = true;
    } else if (tensor.dtype != DType::F32 && tensor.dtype != DType::F16 && tensor.dtype != DType::BF16) {
      throw Error(path + ": tensor '" + spec.name + "' is " + dtype_name(tensor.dtype) + ", expected F32, F16 or BF16" +
                  (is_q8_weight_name(spec.name) ? " (or I8 with a scale tensor)" : ""));
    }
  }
  const TensorInfo& merges = tensors_.info(merges_tensor_name);
  if (merges.dtype != DType::U8 || merges.shape.size() != 1)
    throw Error(path + ": tensor '" + std::string(merges_tensor_name) + "' must be a 1-D U8 tensor");
}

#endif  // CLIP_HEADER_DEFINITIONS

}  // namespace clip
