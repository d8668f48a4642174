#pragma once
// Conversion of the checkpoints people download into one clip model file:
//  - a Hugging Face CLIPModel folder (config.json, model.safetensors or sharded
//    model-0000N-of-0000M.safetensors + index, vocab.json, merges.txt, preprocessor_config.json);
//  - an OpenAI / open_clip state dict saved as .safetensors, whose config is inferred from the
//    tensor shapes the way OpenAI's build_model does it.
// The tools are thin wrappers over these functions.

#include <clip/config.hpp>
#include <clip/convert/checkpoint_tensors.hpp>
#include <clip/detail/read_file.hpp>
#include <clip/formats/model_file.hpp>
#include <clip/formats/tensor_file.hpp>
#include <clip/formats/tensor_writer.hpp>
#include <clip/text/tokenizer.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace clip {

struct ConvertOptions {
  DType dtype = DType::F32;                 ///< storage type of the floating-point tensors
  /// Store each block's four weight matrices as q8 (int8, one F32 scale per output channel; see
  /// formats/q8.hpp) and the other tensors as `dtype`: `clip-convert --dtype q8`.
  bool q8 = false;
  std::string vocab_path;                   ///< BPE data: .txt.gz, merges text, or vocab.json (+ merges.txt beside it)
  std::optional<Activation> activation;     ///< state dicts only; default quick_gelu (OpenAI's)
  int vision_heads = 0;                     ///< 0: infer (HF config, or width / 64 as build_model does)
  int text_heads = 0;                       ///< 0: infer
  std::optional<std::array<float, 3>> image_mean;  ///< default: HF preprocessor_config, else CLIP's
  std::optional<std::array<float, 3>> image_std;
  /// The vocabulary for checkpoints that carry none (OpenAI, open_clip, clip.cpp's GGUF) when
  /// no vocab_path is given; clip-convert supplies CLIP's built-in bpe_simple_vocab_16e6.
  std::function<Tokenizer()> default_tokenizer;
};

/// What a conversion found: the input's kind, the tensor naming, each tensor and whether the
/// model uses it, the config, where the vocabulary came from, and notes on what was inferred.
struct ConversionReport {
  struct Tensor {
    std::string name;
    std::string dtype;  ///< or the GGUF block encoding ("Q8_0")
    std::vector<std::int64_t> shape;
    bool used = false;
    std::string file;
  };
  std::string source;
  std::string input;   ///< "PyTorch zip checkpoint", "TorchScript archive", "safetensors", ...
  std::string layout;  ///< the tensor names found: OpenAI, Hugging Face, clip.cpp GGUF, clip
  std::vector<std::string> files;
  std::vector<Tensor> tensors;
  std::optional<ModelConfig> config;
  std::string tokenizer;
  std::vector<std::string> notes;
  std::string error;   ///< inspect_checkpoint: why the conversion would fail

  std::vector<std::string> unused() const {
    std::vector<std::string> names;
    for (const Tensor& tensor : tensors)
      if (!tensor.used) names.push_back(tensor.name);
    return names;
  }

  nlohmann::json to_json() const {
    nlohmann::json json = {{"source", source}, {"input", input}, {"layout", layout}, {"files", files},
                           {"tokenizer", tokenizer}, {"notes", notes}};
    json["config"] = config ? clip::to_json(*config) : nlohmann::json();
    if (!error.empty()) json["error"] = error;
    json["tensors"] = nlohmann::json::array();
    for (const Tensor& tensor : tensors)
      json["tensors"].push_back({{"name", tensor.name}, {"dtype", tensor.dtype}, {"shape", tensor.shape}, {"used", tensor.used}});
    json["unused"] = unused();
    return json;
  }
};


namespace detail {

// Config and vocabulary texts of a checkpoint: megabytes at most.
inline std::string read_text_file(const std::string& path) { return read_file(path, std::size_t{256} << 20, "text file"); }

inline nlohmann::json read_json_file(const std::string& path) {
  try {
    return nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": invalid JSON: " + e.what());
  }
}

/// Collects canonical tensors, checks each shape against the config, then writes the file.
class ModelBuilder {
 public:
  ModelBuilder(const ModelConfig& config, DType dtype, bool q8 = false) : config_(config), dtype_(dtype), q8_(q8) {
    config_.validate();
    for (TensorSpec& spec : canonical_tensors(config_)) specs_.emplace(spec.name, std::move(spec));
  }

  void put(const std::string& name, const std::vector<float>& values, const std::string& source) {
    auto spec = specs_.find(name);
    if (spec == specs_.end()) throw Error("internal: '" + name + "' is not a canonical tensor");
    std::int64_t count = 1;
    for (std::int64_t dim : spec->second.shape) count *= dim;
    if (static_cast<std::int64_t>(values.size()) != count)
      throw Error(source + " has " + std::to_string(values.size()) + " values, the config implies " + name + " " +
                  shape_string(spec->second.shape));
    if (q8_ && is_q8_weight_name(name)) {
      const std::vector<std::int64_t>& shape = spec->second.shape;
      Q8Matrix q = quantize_q8(values.data(), shape[0], shape[1], name);
      writer_.add_raw(name, DType::I8, shape, std::vector<std::uint8_t>(q.values.begin(), q.values.end()));
      writer_.add(q8_scale_name(name), DType::F32, {shape[0]}, q.scales.data());
    } else {
      writer_.add(name, dtype_, spec->second.shape, values.data());
    }
    done_.insert(name);
  }

  /// Finishes the file: every canonical tensor present, config and tokenizer in the metadata.
  TensorWriter finish(const Tokenizer& tokenizer) {
    for (const auto& [name, spec] : specs_)
      if (!done_.count(name)) throw Error("conversion produced no tensor '" + name + "'");
    if (tokenizer.vocab_size() > static_cast<std::size_t>(config_.text.vocab_size))
      throw Error("the BPE vocabulary has " + std::to_string(tokenizer.vocab_size()) +
                  " tokens but the text tower's embedding only " + std::to_string(config_.text.vocab_size));
    // The header line is free text that differs between sources ("bpe_simple_vocab_16e6.txt#version:
    // 0.2" in OpenAI's file, "#version: 0.2" in HF's); store one form so equal models give equal files.
    const std::string& merges = tokenizer.merges_text();
    writer_.add_text(merges_tensor_name, "#version: 0.2" + merges.substr(std::min(merges.find('\n'), merges.size())));
    writer_.set_metadata("format", model_format_name);
    writer_.set_metadata("format_version", model_format_version);
    writer_.set_metadata("config", to_json(config_).dump());
    return std::move(writer_);
  }

 private:
  ModelConfig config_;
  DType dtype_;
  bool q8_;
  std::map<std::string, TensorSpec> specs_;
  std::set<std::string> done_;
  TensorWriter writer_;
};

inline std::vector<float> transpose(const std::vector<float>& values, std::int64_t rows, std::int64_t cols) {
  std::vector<float> result(values.size());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) result[c * rows + r] = values[r * cols + c];
  return result;
}

/// The tokenizer named by --vocab: OpenAI's .txt.gz, a plain merges text, or a vocab.json whose
/// merges.txt sits beside it.
inline Tokenizer load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) return Tokenizer::from_bpe_gz(path);
  if (fs::path(path).extension() == ".json")
    return Tokenizer::from_hf(path, (fs::path(path).parent_path() / "merges.txt").string());
  return Tokenizer::from_merges(read_text_file(path));
}

/// A block's tensors that map one to one onto canonical ones: {checkpoint name, canonical name}
/// without the ".weight"/".bias" ending.
using BlockNames = std::array<std::pair<const char*, const char*>, 5>;
inline constexpr BlockNames hf_block_names = {{{"self_attn.out_proj", "attn.out"}, {"layer_norm1", "ln_1"},
                                               {"layer_norm2", "ln_2"}, {"mlp.fc1", "mlp.fc"}, {"mlp.fc2", "mlp.proj"}}};
inline constexpr BlockNames openai_block_names = {{{"attn.out_proj", "attn.out"}, {"ln_1", "ln_1"}, {"ln_2", "ln_2"},
                                                   {"mlp.c_fc", "mlp.fc"}, {"mlp.c_proj", "mlp.proj"}}};

template <typename Copy>
void copy_renamed_block_parts(Copy& copy, const std::string& from_block, const std::string& to_block,
                              const std::string& part, const BlockNames& names) {
  for (const auto& [from, to] : names) copy(from_block + from + "." + part, to_block + to + "." + part);
}

inline int json_int(const nlohmann::json& object, const char* key, int fallback) {
  auto found = object.find(key);
  return found != object.end() && found->is_number_integer() ? found->get<int>() : fallback;
}

/// Lists what the checkpoint held (and, once mapped, which tensors the model used) in the report.
inline void record_tensors(const CheckpointTensors& checkpoint, ConversionReport* report) {
  if (!report) return;
  report->input = checkpoint.kinds();
  report->tensors.clear();
  std::set<std::string> files;
  for (const CheckpointTensors::Entry& entry : checkpoint.entries()) {
    ConversionReport::Tensor tensor;
    tensor.name = entry.name;
    tensor.dtype = entry.view.encoding.empty() ? dtype_name(entry.view.dtype) : entry.view.encoding;
    tensor.shape = entry.view.shape;
    tensor.used = entry.used;
    tensor.file = entry.source;
    report->tensors.push_back(std::move(tensor));
    files.insert(entry.source);
  }
  report->files.assign(files.begin(), files.end());
}

/// Runs `convert` and fills the report's tensor table whether it succeeds or throws.
template <typename Convert>
TensorWriter with_report(const CheckpointTensors& checkpoint, ConversionReport* report, Convert convert) {
  try {
    TensorWriter writer = convert();
    record_tensors(checkpoint, report);
    return writer;
  } catch (...) {
    record_tensors(checkpoint, report);
    throw;
  }
}

inline void note(ConversionReport* report, const std::string& text) {
  if (report) report->notes.push_back(text);
}

/// The command-line overrides, which win over anything a checkpoint says or implies.
inline void apply_overrides(ModelConfig& config, const ConvertOptions& options) {
  if (options.vision_heads) config.vision.heads = options.vision_heads;
  if (options.text_heads) config.text.heads = options.text_heads;
  if (options.activation) config.activation = *options.activation;
  if (options.image_mean) config.image_mean = *options.image_mean;
  if (options.image_std) config.image_std = *options.image_std;
}

/// --vocab when given, else the checkpoint's own tokenizer, else the shipped CLIP vocabulary.
inline Tokenizer resolve_tokenizer(const ConvertOptions& options, std::optional<Tokenizer> own, const std::string& where,
                                   ConversionReport* report) {
  if (!options.vocab_path.empty()) {
    if (report) report->tokenizer = options.vocab_path;
    return load_tokenizer(options.vocab_path);
  }
  if (own) {
    if (report && report->tokenizer.empty()) report->tokenizer = "the checkpoint's own";
    return std::move(*own);
  }
  if (options.default_tokenizer) {
    if (report) report->tokenizer = "CLIP's BPE vocabulary (bpe_simple_vocab_16e6, built in)";
    return options.default_tokenizer();
  }
  throw Error(where + ": a state dict carries no tokenizer; pass --vocab (e.g. bpe_simple_vocab_16e6.txt.gz)");
}

/// Opens one weights file of any supported container into `checkpoint`, by its leading bytes.
inline void add_weights_file(CheckpointTensors& checkpoint, const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) throw Error(path + ": is a folder where a weights file belongs");
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw Error(path + ": cannot open");
  unsigned char head[16] = {};
  stream.read(reinterpret_cast<char*>(head), sizeof head);
  const auto got = static_cast<std::size_t>(stream.gcount());
  if (TorchCheckpoint::looks_like_torch(head, got)) return checkpoint.add_torch(path);
  if (GgufFile::looks_like_gguf(head, got)) throw Error(path + ": a GGUF file cannot be one shard of a checkpoint");
  checkpoint.add_safetensors(path);
}

// --- OpenAI / open_clip names -----------------------------------------------------------------

inline bool has_openai_names(const CheckpointTensors& checkpoint) { return checkpoint.contains("visual.conv1.weight"); }
inline bool has_hf_names(const CheckpointTensors& checkpoint) {
  return checkpoint.contains("vision_model.embeddings.patch_embedding.weight");
}

/// Shape inference as in OpenAI's build_model: heads = width / 64, QuickGELU.
inline ModelConfig infer_openai_config(const CheckpointTensors& checkpoint, ConversionReport* report) {
  const std::string where = checkpoint.describe();
  for (const char* required : {"visual.conv1.weight", "visual.positional_embedding", "token_embedding.weight",
                               "positional_embedding", "ln_final.weight", "text_projection", "visual.proj"})
    if (!checkpoint.contains(required))
      throw Error(where + ": not an OpenAI/open_clip ViT state dict (no '" + std::string(required) + "')");
  ModelConfig config;
  if (checkpoint.shape("visual.conv1.weight").size() != 4) throw Error(where + ": visual.conv1.weight is not 4-D");
  config.vision.width = static_cast<int>(checkpoint.dim("visual.conv1.weight", 0));
  config.vision.patch_size = static_cast<int>(checkpoint.dim("visual.conv1.weight", 3));
  const std::int64_t positions = checkpoint.dim("visual.positional_embedding", 0);
  const auto grid = static_cast<int>(std::lround(std::sqrt(static_cast<double>(std::max<std::int64_t>(positions - 1, 0)))));
  config.vision.image_size = grid * config.vision.patch_size;
  config.vision.layers = checkpoint.count_blocks("visual.transformer.resblocks.");
  config.vision.heads = std::max(1, config.vision.width / 64);
  config.vision.mlp_width = config.vision.layers > 0
      ? static_cast<int>(checkpoint.dim("visual.transformer.resblocks.0.mlp.c_fc.weight", 0)) : 4 * config.vision.width;
  config.text.vocab_size = static_cast<int>(checkpoint.dim("token_embedding.weight", 0));
  config.text.context_length = static_cast<int>(checkpoint.dim("positional_embedding", 0));
  config.text.width = static_cast<int>(checkpoint.dim("ln_final.weight", 0));
  config.text.layers = checkpoint.count_blocks("transformer.resblocks.");
  config.text.heads = std::max(1, config.text.width / 64);
  config.text.mlp_width = config.text.layers > 0
      ? static_cast<int>(checkpoint.dim("transformer.resblocks.0.mlp.c_fc.weight", 0)) : 4 * config.text.width;
  config.embed_dim = static_cast<int>(checkpoint.dim("text_projection", 1));
  config.activation = Activation::QuickGELU;
  note(report, "attention heads inferred as width / 64 and QuickGELU assumed, as OpenAI's build_model does "
               "(--vision-heads, --text-heads, --act override)");
  return config;
}

inline void map_openai(const CheckpointTensors& checkpoint, const ModelConfig& config, ModelBuilder& builder,
                       ConversionReport* report) {
  auto copy = [&](const std::string& from, const std::string& to) { builder.put(to, checkpoint.read(from), from); };
  auto copy_blocks = [&](const std::string& prefix, const std::string& tower, int layers) {
    for (int i = 0; i < layers; ++i) {
      const std::string in = prefix + std::to_string(i) + ".";
      const std::string out = tower + ".blocks." + std::to_string(i) + ".";
      copy(in + "attn.in_proj_weight", out + "attn.qkv.weight");
      copy(in + "attn.in_proj_bias", out + "attn.qkv.bias");
      for (const char* part : {"weight", "bias"}) copy_renamed_block_parts(copy, in, out, part, openai_block_names);
    }
  };
  copy("visual.conv1.weight", "vision.patch_embedding");
  copy("visual.class_embedding", "vision.class_embedding");
  copy("visual.positional_embedding", "vision.position_embedding");
  copy("visual.ln_pre.weight", "vision.ln_pre.weight");
  copy("visual.ln_pre.bias", "vision.ln_pre.bias");
  copy_blocks("visual.transformer.resblocks.", "vision", config.vision.layers);
  copy("visual.ln_post.weight", "vision.ln_post.weight");
  copy("visual.ln_post.bias", "vision.ln_post.bias");
  copy("visual.proj", "vision.proj");
  copy("token_embedding.weight", "text.token_embedding");
  copy("positional_embedding", "text.position_embedding");
  copy_blocks("transformer.resblocks.", "text", config.text.layers);
  copy("ln_final.weight", "text.ln_final.weight");
  copy("ln_final.bias", "text.ln_final.bias");
  copy("text_projection", "text.proj");
  if (checkpoint.contains("logit_scale")) {
    copy("logit_scale", "logit_scale");
  } else {
    builder.put("logit_scale", {static_cast<float>(std::log(1 / 0.07))}, "default logit_scale");
    note(report, "no logit_scale in the checkpoint: CLIP's initial ln(1/0.07) stored");
  }
}

// --- Hugging Face names -----------------------------------------------------------------------

/// A CLIPModel config.json. Defaults are transformers' CLIPVisionConfig / CLIPTextConfig
/// defaults, which published config files rely on by omitting keys.
inline ModelConfig hf_config_from_json(const nlohmann::json& config_json, const std::string& where) {
  if (!config_json.is_object() || !config_json.contains("vision_config") || !config_json.contains("text_config"))
    throw Error(where + ": not a CLIPModel config (no vision_config / text_config)");
  const nlohmann::json& vision = config_json["vision_config"];
  const nlohmann::json& text = config_json["text_config"];
  if (!vision.is_object() || !text.is_object()) throw Error(where + ": vision_config / text_config are not objects");
  ModelConfig config;
  config.vision = {json_int(vision, "image_size", 224), json_int(vision, "patch_size", 32),
                   json_int(vision, "hidden_size", 768), json_int(vision, "num_hidden_layers", 12),
                   json_int(vision, "num_attention_heads", 12), json_int(vision, "intermediate_size", 3072)};
  config.text = {json_int(text, "vocab_size", 49408), json_int(text, "max_position_embeddings", 77),
                 json_int(text, "hidden_size", 512),  json_int(text, "num_attention_heads", 8),
                 json_int(text, "num_hidden_layers", 12), json_int(text, "intermediate_size", 2048)};
  config.embed_dim = json_int(config_json, "projection_dim", 512);
  try {
    const std::string vision_act = vision.value("hidden_act", std::string("quick_gelu"));
    const std::string text_act = text.value("hidden_act", std::string("quick_gelu"));
    if (vision_act != text_act)
      throw Error("towers use different activations (" + vision_act + ", " + text_act + "), unsupported");
    config.activation = parse_activation(vision_act);
    config.layer_norm_eps = text.value("layer_norm_eps", 1e-5);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": " + e.what());
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return config;
}

/// An HF-named state dict without its config.json: shapes give the sizes, heads = width / 64.
inline ModelConfig infer_hf_config(const CheckpointTensors& checkpoint, ConversionReport* report) {
  ModelConfig config;
  const std::string patch = "vision_model.embeddings.patch_embedding.weight";
  config.vision.width = static_cast<int>(checkpoint.dim(patch, 0));
  config.vision.patch_size = static_cast<int>(checkpoint.dim(patch, 3));
  const std::int64_t positions = checkpoint.dim("vision_model.embeddings.position_embedding.weight", 0);
  config.vision.image_size =
      static_cast<int>(std::lround(std::sqrt(static_cast<double>(std::max<std::int64_t>(positions - 1, 0))))) * config.vision.patch_size;
  config.vision.layers = checkpoint.count_blocks("vision_model.encoder.layers.");
  config.vision.heads = std::max(1, config.vision.width / 64);
  config.vision.mlp_width = config.vision.layers ? static_cast<int>(checkpoint.dim("vision_model.encoder.layers.0.mlp.fc1.weight", 0)) : 4 * config.vision.width;
  config.text.vocab_size = static_cast<int>(checkpoint.dim("text_model.embeddings.token_embedding.weight", 0));
  config.text.width = static_cast<int>(checkpoint.dim("text_model.embeddings.token_embedding.weight", 1));
  config.text.context_length = static_cast<int>(checkpoint.dim("text_model.embeddings.position_embedding.weight", 0));
  config.text.layers = checkpoint.count_blocks("text_model.encoder.layers.");
  config.text.heads = std::max(1, config.text.width / 64);
  config.text.mlp_width = config.text.layers ? static_cast<int>(checkpoint.dim("text_model.encoder.layers.0.mlp.fc1.weight", 0)) : 4 * config.text.width;
  config.embed_dim = static_cast<int>(checkpoint.dim("visual_projection.weight", 0));
  note(report, "no config.json: sizes from the tensor shapes, heads = width / 64, QuickGELU (--vision-heads, --text-heads, --act override)");
  return config;
}

inline void map_hf(const CheckpointTensors& checkpoint, const ModelConfig& config, ModelBuilder& builder) {
  auto copy = [&](const std::string& from, const std::string& to) { builder.put(to, checkpoint.read(from), from); };
  auto copy_transposed = [&](const std::string& from, const std::string& to) {
    const auto& shape = checkpoint.shape(from);
    if (shape.size() != 2) throw Error(checkpoint.describe() + ": " + from + " is not a matrix");
    builder.put(to, transpose(checkpoint.read(from), shape[0], shape[1]), from);
  };
  auto copy_blocks = [&](const std::string& hf_prefix, const std::string& tower, int layers) {
    for (int i = 0; i < layers; ++i) {
      const std::string hf = hf_prefix + std::to_string(i) + ".";
      const std::string out = tower + ".blocks." + std::to_string(i) + ".";
      for (const char* part : {"weight", "bias"}) {
        // HF keeps q, k, v as three Linear layers; OpenAI's in_proj stacks them as rows q; k; v.
        std::vector<float> fused;
        for (const char* projection : {"q_proj", "k_proj", "v_proj"}) {
          const std::vector<float> values = checkpoint.read(hf + "self_attn." + projection + "." + part);
          fused.insert(fused.end(), values.begin(), values.end());
        }
        builder.put(out + "attn.qkv." + part, fused, hf + "self_attn.{q,k,v}_proj." + part);
        copy_renamed_block_parts(copy, hf, out, part, hf_block_names);
      }
    }
  };
  copy("vision_model.embeddings.patch_embedding.weight", "vision.patch_embedding");
  copy("vision_model.embeddings.class_embedding", "vision.class_embedding");
  copy("vision_model.embeddings.position_embedding.weight", "vision.position_embedding");
  // "pre_layrnorm" is the transformers spelling.
  copy("vision_model.pre_layrnorm.weight", "vision.ln_pre.weight");
  copy("vision_model.pre_layrnorm.bias", "vision.ln_pre.bias");
  copy_blocks("vision_model.encoder.layers.", "vision", config.vision.layers);
  copy("vision_model.post_layernorm.weight", "vision.ln_post.weight");
  copy("vision_model.post_layernorm.bias", "vision.ln_post.bias");
  copy_transposed("visual_projection.weight", "vision.proj");  // HF Linear is [out, in]
  copy("text_model.embeddings.token_embedding.weight", "text.token_embedding");
  copy("text_model.embeddings.position_embedding.weight", "text.position_embedding");
  copy_blocks("text_model.encoder.layers.", "text", config.text.layers);
  copy("text_model.final_layer_norm.weight", "text.ln_final.weight");
  copy("text_model.final_layer_norm.bias", "text.ln_final.bias");
  copy_transposed("text_projection.weight", "text.proj");
  copy("logit_scale", "logit_scale");
}

/// A tensor inside a tower that the mapping did not read is a part clip does not run (LayerScale
/// gammas, attention pooling, extra norms of other open_clip variants): converting without it
/// would give wrong features silently, so it is an error. Buffers that are not weights
/// (position_ids, attn_mask) and tensors outside the towers (optimizer state) are only listed.
inline void refuse_unused_tower_weights(const CheckpointTensors& checkpoint) {
  for (const CheckpointTensors::Entry& entry : checkpoint.entries()) {
    if (entry.used) continue;
    const std::string& name = entry.name;
    const std::size_t dot = name.rfind('.');
    const std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
    if (last == "position_ids" || last == "attn_mask") continue;
    for (const char* tower : {"visual.", "transformer.", "vision_model.", "text_model."}) {
      if (name.rfind(tower, 0) == 0)
        throw Error(entry.source + ": tensor '" + name + "' belongs to a tower but has no place in the CLIP ViT "
                    "architecture clip runs (a model variant with extra parts?); refusing to drop it silently");
    }
  }
}

/// Any checkpoint whose tensors are loaded: picks the naming, infers or takes the config, maps.
/// `hf_config` comes from a config.json; `adjust` applies a folder's own config (open_clip).
inline TensorWriter convert_tensors(CheckpointTensors& checkpoint, const ConvertOptions& options, ConversionReport* report,
                                    std::optional<ModelConfig> hf_config, std::optional<Tokenizer> own_tokenizer,
                                    const std::function<void(ModelConfig&)>& adjust = {}) {
  return with_report(checkpoint, report, [&] {
    const std::string where = checkpoint.describe();
    ModelConfig config;
    const bool openai = has_openai_names(checkpoint);
    if (openai) {
      if (report) report->layout = "OpenAI / open_clip names";
      config = infer_openai_config(checkpoint, report);
    } else if (has_hf_names(checkpoint)) {
      if (report) report->layout = "Hugging Face CLIPModel names";
      config = hf_config ? *hf_config : infer_hf_config(checkpoint, report);
    } else {
      std::string example = checkpoint.entries().empty() ? std::string("none") : checkpoint.entries().front().name;
      if (checkpoint.contains("visual.layer1.0.conv1.weight"))
        throw Error(where + ": a ResNet CLIP checkpoint; clip runs the ViT models only");
      throw Error(where + ": not an OpenAI/open_clip ViT state dict nor Hugging Face CLIPModel weights (" +
                  std::to_string(checkpoint.entries().size()) + " tensors, first '" + example +
                  "'; expected visual.conv1.weight or vision_model.*)");
    }
    if (adjust) adjust(config);
    apply_overrides(config, options);
    ModelBuilder builder(config, options.dtype, options.q8);
    if (openai) map_openai(checkpoint, config, builder, report);
    else map_hf(checkpoint, config, builder);
    refuse_unused_tower_weights(checkpoint);
    if (report) report->config = config;
    return builder.finish(resolve_tokenizer(options, std::move(own_tokenizer), where, report));
  });
}

// --- Folders ------------------------------------------------------------------------------------

/// The shard files of an index.json's weight_map, each inside `root`.
inline std::vector<std::string> shard_files(const std::filesystem::path& root, const std::filesystem::path& index) {
  const nlohmann::json index_json = read_json_file(index.string());
  std::set<std::string> shards;
  try {
    for (const auto& [name, shard] : index_json.at("weight_map").items()) shards.insert(shard.get<std::string>());
  } catch (const nlohmann::json::exception& e) {
    throw Error(index.string() + ": invalid weight_map: " + e.what());
  }
  std::vector<std::string> files;
  for (const std::string& shard : shards) {
    if (shard.empty() || shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos || shard == "..")
      throw Error(index.string() + ": shard name '" + shard + "' leaves the folder");
    files.push_back((root / shard).string());
  }
  if (files.empty()) throw Error(index.string() + ": weight_map names no shards");
  return files;
}

inline TensorWriter convert_hf_folder(const std::string& folder, const ConvertOptions& options, ConversionReport* report) {
  namespace fs = std::filesystem;
  const fs::path root(folder);
  const std::string where = (root / "config.json").string();
  ModelConfig config = hf_config_from_json(read_json_file(where), where);
  const fs::path preprocessor = root / "preprocessor_config.json";
  if (fs::exists(preprocessor)) {
    const nlohmann::json pre = read_json_file(preprocessor.string());
    try {
      if (pre.contains("image_mean")) config.image_mean = pre["image_mean"].get<std::array<float, 3>>();
      if (pre.contains("image_std")) config.image_std = pre["image_std"].get<std::array<float, 3>>();
    } catch (const nlohmann::json::exception& e) {
      throw Error(preprocessor.string() + ": invalid image_mean / image_std: " + e.what());
    }
  }

  CheckpointTensors checkpoint;
  if (fs::exists(root / "model.safetensors")) {
    checkpoint.add_safetensors((root / "model.safetensors").string());
  } else if (fs::exists(root / "model.safetensors.index.json")) {
    for (const std::string& shard : shard_files(root, root / "model.safetensors.index.json")) checkpoint.add_safetensors(shard);
  } else if (fs::exists(root / "pytorch_model.bin")) {
    checkpoint.add_torch((root / "pytorch_model.bin").string());
  } else if (fs::exists(root / "pytorch_model.bin.index.json")) {
    for (const std::string& shard : shard_files(root, root / "pytorch_model.bin.index.json")) checkpoint.add_torch(shard);
  } else {
    throw Error(folder + ": no model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json");
  }
  std::optional<Tokenizer> own;
  if (options.vocab_path.empty()) own = Tokenizer::from_hf((root / "vocab.json").string(), (root / "merges.txt").string());
  if (report) report->tokenizer = (root / "vocab.json").string() + " + merges.txt";
  // HF's config is authoritative for this folder's own weights.
  return convert_tensors(checkpoint, options, report, config, std::move(own), [&](ModelConfig& inferred) {
    if (has_hf_names(checkpoint)) inferred = config;
  });
}

/// open_clip's hub layout: open_clip_config.json ({"model_cfg": ..., "preprocess_cfg": ...})
/// beside open_clip_model.safetensors or open_clip_pytorch_model.bin.
inline TensorWriter convert_open_clip_folder(const std::string& folder, const ConvertOptions& options,
                                             ConversionReport* report) {
  namespace fs = std::filesystem;
  const fs::path root(folder);
  const std::string where = (root / "open_clip_config.json").string();
  const nlohmann::json json = read_json_file(where);
  CheckpointTensors checkpoint;
  if (fs::exists(root / "open_clip_model.safetensors")) checkpoint.add_safetensors((root / "open_clip_model.safetensors").string());
  else if (fs::exists(root / "open_clip_pytorch_model.bin")) checkpoint.add_torch((root / "open_clip_pytorch_model.bin").string());
  else throw Error(folder + ": open_clip_config.json but no open_clip_model.safetensors or open_clip_pytorch_model.bin");
  if (report) report->input = "open_clip folder";

  auto adjust = [&](ModelConfig& config) {
    try {
      const nlohmann::json model = json.value("model_cfg", nlohmann::json::object());
      const nlohmann::json vision = model.value("vision_cfg", nlohmann::json::object());
      const nlohmann::json text = model.value("text_cfg", nlohmann::json::object());
      for (const char* key : {"timm_model_name", "attentional_pool"})
        if (vision.contains(key) && !vision[key].is_null() && vision[key] != false)
          throw Error(std::string("vision_cfg.") + key + " is set: not a CLIP ViT tower clip can run");
      if (text.contains("hf_model_name") && !text["hf_model_name"].is_null())
        throw Error("text_cfg.hf_model_name is set: not a CLIP text tower clip can run");
      // open_clip's defaults: head_width 64, text heads 8, nn.GELU unless quick_gelu.
      const int head_width = vision.value("head_width", 64);
      if (head_width <= 0 || config.vision.width % head_width != 0)
        throw Error("vision_cfg.head_width " + std::to_string(head_width) + " does not divide the width " +
                    std::to_string(config.vision.width));
      config.vision.heads = config.vision.width / head_width;
      config.text.heads = text.value("heads", 8);
      config.activation = model.value("quick_gelu", false) ? Activation::QuickGELU : Activation::GELU;
      if (vision.contains("image_size") && vision["image_size"].is_number_integer() &&
          vision["image_size"].get<int>() != config.vision.image_size)
        throw Error("vision_cfg.image_size " + vision["image_size"].dump() + " disagrees with the positional embedding (" +
                    std::to_string(config.vision.image_size) + ")");
      const nlohmann::json pre = json.value("preprocess_cfg", nlohmann::json::object());
      if (pre.contains("mean")) config.image_mean = pre["mean"].get<std::array<float, 3>>();
      if (pre.contains("std")) config.image_std = pre["std"].get<std::array<float, 3>>();
      const std::string interpolation = pre.value("interpolation", std::string("bicubic"));
      if (interpolation != "bicubic")
        throw Error("preprocess_cfg.interpolation '" + interpolation + "' is not supported (clip resizes with bicubic)");
      config.resize_mode = pre.value("resize_mode", std::string("shortest"));
      if (config.resize_mode != "shortest" && config.resize_mode != "squash")
        throw Error("preprocess_cfg.resize_mode '" + config.resize_mode + "' is not supported (shortest, squash)");
    } catch (const nlohmann::json::exception& e) {
      throw Error(where + ": " + e.what());
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
    if (report && !report->notes.empty()) report->notes.back() = "heads, activation and preprocessing from open_clip_config.json";
  };
  return convert_tensors(checkpoint, options, report, std::nullopt, std::nullopt, adjust);
}

// --- GGUF (clip.cpp) ------------------------------------------------------------------------------

/// The vocabulary list (HF order) a CLIP merges text implies: byte symbols, the same with
/// "</w>", one token per merge, then <|startoftext|>, <|endoftext|>.
inline std::vector<std::string> vocabulary_tokens(const Tokenizer& tokenizer) {
  std::vector<std::string> tokens;
  auto utf8 = [](std::uint32_t code) {
    std::string out;
    if (code < 0x80) out.push_back(static_cast<char>(code));
    else {
      out.push_back(static_cast<char>(0xC0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
    return out;
  };
  // bytes_to_unicode: printable latin-1 bytes map to themselves, the others to 256 + n, in order.
  std::vector<std::string> symbols;
  std::vector<int> rest;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable) symbols.push_back(utf8(static_cast<std::uint32_t>(b)));
    else rest.push_back(b);
  }
  for (std::size_t n = 0; n < rest.size(); ++n) symbols.push_back(utf8(static_cast<std::uint32_t>(256 + n)));
  tokens = symbols;
  for (const std::string& symbol : symbols) tokens.push_back(symbol + "</w>");
  const std::string& merges = tokenizer.merges_text();
  std::size_t at = merges.find('\n');
  const std::size_t merge_count = tokenizer.vocab_size() - 514;
  while (at != std::string::npos && tokens.size() < 512 + merge_count) {
    const std::size_t end = merges.find('\n', at + 1);
    const std::string line = merges.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
    const std::size_t space = line.find(' ');
    if (space != std::string::npos) tokens.push_back(line.substr(0, space) + line.substr(space + 1));
    at = end;
  }
  tokens.push_back("<|startoftext|>");
  tokens.push_back("<|endoftext|>");
  return tokens;
}

inline TensorWriter convert_gguf(const std::string& path, const ConvertOptions& options, ConversionReport* report) {
  auto gguf = std::make_shared<GgufFile>(path);
  CheckpointTensors checkpoint;
  checkpoint.note_kind("GGUF v" + std::to_string(gguf->version()));
  for (const GgufTensor& tensor : gguf->tensors()) checkpoint.add(tensor.name, gguf->view(tensor), path);
  checkpoint.keep(gguf);
  if (report) report->layout = "clip.cpp GGUF names";
  return with_report(checkpoint, report, [&] {
    auto number = [&](const std::string& key) -> double {
      const GgufValue* value = gguf->find(key);
      if (!value || !value->is_number()) throw Error(path + ": no numeric '" + key + "' in the GGUF metadata");
      return value->float_value;
    };
    auto integer = [&](const std::string& key) -> int {
      const double value = number(key);
      if (value < 0 || value > (1 << 24) || value != std::floor(value)) throw Error(path + ": '" + key + "' is out of range");
      return static_cast<int>(value);
    };
    const GgufValue* architecture = gguf->find("general.architecture");
    if (!architecture || architecture->text != "clip") throw Error(path + ": not a clip.cpp GGUF file (general.architecture is not 'clip')");
    for (const char* tower : {"clip.has_text_encoder", "clip.has_vision_encoder"}) {
      const GgufValue* has = gguf->find(tower);
      if (has && has->type == GgufValue::Type::Bool && !has->unsigned_value)
        throw Error(path + ": holds only one tower (" + std::string(tower) + " is false); clip needs both");
    }
    ModelConfig config;
    config.vision = {integer("clip.vision.image_size"), integer("clip.vision.patch_size"),
                     integer("clip.vision.embedding_length"), integer("clip.vision.block_count"),
                     integer("clip.vision.attention.head_count"), integer("clip.vision.feed_forward_length")};
    config.text.context_length = integer("clip.text.context_length");
    config.text.width = integer("clip.text.embedding_length");
    config.text.layers = integer("clip.text.block_count");
    config.text.heads = integer("clip.text.attention.head_count");
    config.text.mlp_width = integer("clip.text.feed_forward_length");
    config.text.vocab_size = static_cast<int>(checkpoint.dim("t.token_embd.weight", 0));
    config.embed_dim = integer("clip.vision.projection_dim");
    config.layer_norm_eps = number("clip.text.attention.layer_norm_epsilon");
    // GGUF stores eps as f32; 1e-5 comes back as 9.99999975e-06: restore the decimal it was.
    config.layer_norm_eps = detail::shortest_decimal(static_cast<float>(config.layer_norm_eps));
    const GgufValue* gelu = gguf->find("clip.use_gelu");
    config.activation = gelu && gelu->unsigned_value ? Activation::GELU : Activation::QuickGELU;
    for (auto [key, target] : {std::pair{"clip.vision.image_mean", &config.image_mean}, std::pair{"clip.vision.image_std", &config.image_std}}) {
      const GgufValue* value = gguf->find(key);
      if (!value) continue;
      if (value->items.size() != 3) throw Error(path + ": '" + key + "' is not three numbers");
      for (int c = 0; c < 3; ++c) (*target)[c] = static_cast<float>(value->items[c].float_value);
    }
    apply_overrides(config, options);
    ModelBuilder builder(config, options.dtype, options.q8);
    auto copy = [&](const std::string& from, const std::string& to) { builder.put(to, checkpoint.read(from), from); };
    auto copy_transposed = [&](const std::string& from, const std::string& to) {
      const auto& shape = checkpoint.shape(from);
      if (shape.size() != 2) throw Error(path + ": " + from + " is not a matrix");
      builder.put(to, transpose(checkpoint.read(from), shape[0], shape[1]), from);
    };
    auto blocks = [&](const std::string& prefix, const std::string& tower, int layers) {
      for (int i = 0; i < layers; ++i) {
        const std::string in = prefix + std::to_string(i) + ".";
        const std::string out = tower + ".blocks." + std::to_string(i) + ".";
        for (const char* part : {"weight", "bias"}) {
          std::vector<float> fused;
          for (const char* projection : {"attn_q.", "attn_k.", "attn_v."}) {
            const std::vector<float> values = checkpoint.read(in + projection + part);
            fused.insert(fused.end(), values.begin(), values.end());
          }
          builder.put(out + "attn.qkv." + part, fused, in + "attn_{q,k,v}." + part);
          // clip.cpp's names: ffn_down is the expansion (c_fc), ffn_up the projection (c_proj).
          const std::pair<const char*, const char*> names[] = {
              {"attn_out.", "attn.out."}, {"ln1.", "ln_1."}, {"ln2.", "ln_2."}, {"ffn_down.", "mlp.fc."}, {"ffn_up.", "mlp.proj."}};
          for (const auto& [from, to] : names) copy(in + from + part, out + to + part);
        }
      }
    };
    copy("v.patch_embd.weight", "vision.patch_embedding");
    copy("v.class_embd", "vision.class_embedding");
    copy("v.position_embd.weight", "vision.position_embedding");
    copy("v.pre_ln.weight", "vision.ln_pre.weight");
    copy("v.pre_ln.bias", "vision.ln_pre.bias");
    blocks("v.blk.", "vision", config.vision.layers);
    copy("v.post_ln.weight", "vision.ln_post.weight");
    copy("v.post_ln.bias", "vision.ln_post.bias");
    copy_transposed("visual_projection.weight", "vision.proj");
    copy("t.token_embd.weight", "text.token_embedding");
    copy("t.position_embd.weight", "text.position_embedding");
    blocks("t.blk.", "text", config.text.layers);
    copy("t.post_ln.weight", "text.ln_final.weight");
    copy("t.post_ln.bias", "text.ln_final.bias");
    copy_transposed("text_projection.weight", "text.proj");
    if (checkpoint.contains("logit_scale")) {
      copy("logit_scale", "logit_scale");
    } else {
      // clip.cpp keeps no logit scale; trained CLIP models sit at the clamp, ln(100).
      builder.put("logit_scale", {static_cast<float>(std::log(100.0))}, "default logit_scale");
      note(report, "no logit_scale in the GGUF file: ln(100) stored (the value trained CLIP models reach)");
    }
    if (report) report->config = config;

    // The vocabulary: clip.cpp stores the token list but no merges. CLIP models share one
    // vocabulary; when the list is exactly CLIP's, its merges are the file's tokenizer.
    std::optional<Tokenizer> own;
    const GgufValue* tokens = gguf->find("tokenizer.ggml.tokens");
    if (options.vocab_path.empty()) {
      if (!tokens || tokens->type != GgufValue::Type::Array) throw Error(path + ": no tokenizer.ggml.tokens; pass --vocab");
      if (!options.default_tokenizer) throw Error(path + ": GGUF files store tokens without merges; pass --vocab");
      Tokenizer clip_vocabulary = options.default_tokenizer();
      const std::vector<std::string> expected = vocabulary_tokens(clip_vocabulary);
      bool same = tokens->items.size() == expected.size();
      for (std::size_t i = 0; same && i < expected.size(); ++i) same = tokens->items[i].text == expected[i];
      if (!same)
        throw Error(path + ": its " + std::to_string(tokens->items.size()) +
                    "-token vocabulary is not CLIP's; pass the matching merges with --vocab");
      own = std::move(clip_vocabulary);
      if (report) report->tokenizer = "tokenizer.ggml.tokens (CLIP's vocabulary; its merges built in)";
    }
    return builder.finish(resolve_tokenizer(options, std::move(own), path, report));
  });
}

// --- clip model files ------------------------------------------------------------------------------

/// A clip model file converted again (another dtype, or q8): config, tokenizer and tensors as
/// they are; q8 matrices are widened first (and so come back unchanged when converted to q8
/// again: each row's largest value is exactly 127 times its scale).
inline TensorWriter convert_model_file(const std::string& path, const ConvertOptions& options, ConversionReport* report) {
  const ModelFile model(path);
  CheckpointTensors checkpoint;
  checkpoint.add_safetensors(path);
  checkpoint.note_kind("clip model file");
  if (report) report->layout = "clip canonical names";
  return with_report(checkpoint, report, [&] {
    ModelConfig config = model.config();
    apply_overrides(config, options);
    ModelBuilder builder(config, options.dtype, options.q8);
    for (const TensorSpec& spec : canonical_tensors(config)) {
      const TensorInfo& stored = model.tensors().info(spec.name);
      if (stored.dtype != DType::I8) {
        builder.put(spec.name, checkpoint.read(spec.name), spec.name);
        continue;
      }
      std::vector<float> values(static_cast<std::size_t>(stored.numel()));
      detail::dequantize_q8_rows(model.tensors(), stored, 0, stored.shape[0], values.data());
      checkpoint.mark_used(spec.name);
      checkpoint.mark_used(q8_scale_name(spec.name));
      builder.put(spec.name, values, spec.name);
    }
    checkpoint.mark_used(merges_tensor_name);
    if (report) report->config = config;
    std::optional<Tokenizer> own = Tokenizer::from_merges(model.merges_text());
    if (report) report->tokenizer = "the model file's own";
    return builder.finish(resolve_tokenizer(options, std::move(own), path, report));
  });
}

inline bool is_clip_model_file(const std::string& path) {
  try {
    const TensorFile file(path);
    auto format = file.metadata().find("format");
    return format != file.metadata().end() && format->second == model_format_name;
  } catch (const Error&) {
    return false;
  }
}

inline TensorWriter convert_file(const std::string& path, const ConvertOptions& options, ConversionReport* report) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw Error(path + ": cannot open");
  unsigned char head[16] = {};
  stream.read(reinterpret_cast<char*>(head), sizeof head);
  const auto got = static_cast<std::size_t>(stream.gcount());
  stream.close();
  if (GgufFile::looks_like_gguf(head, got)) return convert_gguf(path, options, report);
  CheckpointTensors checkpoint;
  if (TorchCheckpoint::looks_like_torch(head, got)) {
    checkpoint.add_torch(path);
  } else {
    if (is_clip_model_file(path)) return convert_model_file(path, options, report);
    checkpoint.add_safetensors(path);
  }
  return convert_tensors(checkpoint, options, report, std::nullopt, std::nullopt);
}

}  // namespace detail

/// Converts any supported checkpoint into a clip model file (see docs/model-format.md):
/// a Hugging Face CLIPModel folder (safetensors or pytorch_model.bin, sharded or not), an
/// open_clip hub folder, a state dict (.safetensors, torch.save zip or legacy, DataParallel
/// prefixes, wrapped in "state_dict"/"model"), an OpenAI TorchScript archive, a clip.cpp GGUF
/// file, or a clip model file (re-converted, e.g. to another dtype). `report`, when given,
/// receives what was found and which tensors were used.
inline TensorWriter convert_checkpoint(const std::string& source, const ConvertOptions& options = {},
                                       ConversionReport* report = nullptr) {
  namespace fs = std::filesystem;
  if (report) report->source = source;
  if (fs::is_directory(source)) {
    if (fs::exists(fs::path(source) / "open_clip_config.json")) return detail::convert_open_clip_folder(source, options, report);
    if (fs::exists(fs::path(source) / "config.json")) return detail::convert_hf_folder(source, options, report);
    throw Error(source + ": a folder with neither config.json (Hugging Face) nor open_clip_config.json (open_clip)");
  }
  if (!fs::exists(source)) throw Error(source + ": no such file or folder");
  return detail::convert_file(source, options, report);
}

/// What convert_checkpoint finds in `source` (tensors, layout, config, unused tensors), without
/// writing anything; a failed conversion is reported in `error` with the tensors found so far.
inline ConversionReport inspect_checkpoint(const std::string& source, const ConvertOptions& options = {}) {
  ConversionReport report;
  try {
    convert_checkpoint(source, options, &report);
  } catch (const Error& e) {
    report.error = e.what();
  }
  return report;
}

/// Refuses an output path that would overwrite something the conversion reads: the source file,
/// any file in the source folder, or the vocabulary file.
inline void check_output_path(const std::string& output, const std::string& source, const ConvertOptions& options) {
  namespace fs = std::filesystem;
  if (!fs::exists(output)) return;
  std::error_code error;
  auto same = [&](const fs::path& a, const fs::path& b) { return fs::exists(b) && fs::equivalent(a, b, error); };
  const bool is_input = same(output, source) || (!options.vocab_path.empty() && same(output, options.vocab_path)) ||
                        (fs::is_directory(source) && same(fs::path(output).parent_path(), source)) ||
                        (fs::is_directory(source) && fs::absolute(output).parent_path() == fs::absolute(source));
  if (is_input) throw Error(output + ": refusing to write over the conversion's input");
}

/// Architecture of the published models, by open_clip name, for random test models.
inline ModelConfig named_config(const std::string& name) {
  ModelConfig config;  // defaults are ViT-B/32
  auto set = [&](int image, int patch, int width, int layers, int text_width, int text_layers, int embed) {
    config.vision = {image, patch, width, layers, width / 64, 4 * width};
    config.text = {49408, 77, text_width, text_width / 64, text_layers, 4 * text_width};
    config.embed_dim = embed;
  };
  if (name == "ViT-B-32") set(224, 32, 768, 12, 512, 12, 512);
  else if (name == "ViT-B-16") set(224, 16, 768, 12, 512, 12, 512);
  else if (name == "ViT-L-14") set(224, 14, 1024, 24, 768, 12, 768);
  else if (name == "ViT-L-14-336") set(336, 14, 1024, 24, 768, 12, 768);
  else throw Error("unknown model name '" + name + "' (ViT-B-32, ViT-B-16, ViT-L-14, ViT-L-14-336)");
  return config;
}

/// A model with random weights (normal, std 0.02; LayerNorms at identity; OpenAI's logit scale),
/// for benchmarks and tests; `q8` stores the block matrices as q8. Without BPE data the vocabulary is bytes only (no merges).
inline TensorWriter random_model(const ModelConfig& config, const std::string& merges_text, DType dtype,
                                 unsigned seed = 0, bool q8 = false) {
  detail::ModelBuilder builder(config, dtype, q8);
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (const TensorSpec& spec : canonical_tensors(config)) {
    std::int64_t count = 1;
    for (std::int64_t dim : spec.shape) count *= dim;
    std::vector<float> values(static_cast<std::size_t>(count));
    const bool is_norm = spec.name.find("ln_") != std::string::npos;
    const bool is_bias = spec.name.size() > 5 && spec.name.compare(spec.name.size() - 5, 5, ".bias") == 0;
    if (spec.name == "logit_scale") values[0] = static_cast<float>(std::log(100.0));
    else if (is_norm) std::fill(values.begin(), values.end(), is_bias ? 0.0f : 1.0f);
    else for (float& value : values) value = normal(generator);
    builder.put(spec.name, values, "random " + spec.name);
  }
  return builder.finish(Tokenizer::from_merges(merges_text.empty() ? std::string("#version: 0.2\n") : merges_text));
}

}  // namespace clip
