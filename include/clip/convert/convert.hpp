#pragma once
// Conversion of the checkpoints people download into one clip model file:
//  - a Hugging Face CLIPModel folder (config.json, model.safetensors or sharded
//    model-0000N-of-0000M.safetensors + index, vocab.json, merges.txt, preprocessor_config.json);
//  - an OpenAI / open_clip state dict saved as .safetensors, whose config is inferred from the
//    tensor shapes the way OpenAI's build_model does it.
// The tools are thin wrappers over these functions.

#include <clip/config.hpp>
#include <clip/detail/read_file.hpp>
#include <clip/formats/model_file.hpp>
#include <clip/formats/tensor_file.hpp>
#include <clip/formats/tensor_writer.hpp>
#include <clip/text/tokenizer.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <filesystem>
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
  std::string vocab_path;                   ///< BPE data: .txt.gz, merges text, or vocab.json (+ merges.txt beside it)
  std::optional<Activation> activation;     ///< state dicts only; default quick_gelu (OpenAI's)
  int vision_heads = 0;                     ///< 0: infer (HF config, or width / 64 as build_model does)
  int text_heads = 0;                       ///< 0: infer
  std::optional<std::array<float, 3>> image_mean;  ///< default: HF preprocessor_config, else CLIP's
  std::optional<std::array<float, 3>> image_std;
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

/// The tensors of a checkpoint, possibly spread over several safetensors shards.
class CheckpointTensors {
 public:
  void add_file(const std::string& path) {
    files_.push_back(std::make_unique<TensorFile>(path));
    const TensorFile& file = *files_.back();
    for (const TensorInfo& tensor : file.tensors()) {
      std::string name = tensor.name;
      if (name.rfind("module.", 0) == 0) name = name.substr(7);  // DataParallel prefix
      if (!where_.emplace(name, Location{&file, &tensor}).second)
        throw Error(path + ": tensor '" + name + "' appears in more than one shard");
    }
  }

  bool contains(const std::string& name) const { return where_.count(name) != 0; }

  const TensorInfo& info(const std::string& name) const { return *locate(name).tensor; }

  std::vector<float> read(const std::string& name) const {
    const Location& location = locate(name);
    std::vector<float> values(static_cast<std::size_t>(location.tensor->numel()));
    location.file->copy_to(*location.tensor, values.data());
    return values;
  }

  /// Number of consecutive blocks "<prefix>N." for N = 0, 1, ...
  int count_blocks(const std::string& prefix) const {
    int count = 0;
    while (true) {
      const std::string block = prefix + std::to_string(count) + ".";
      auto next = where_.lower_bound(block);
      if (next == where_.end() || next->first.rfind(block, 0) != 0) return count;
      ++count;
    }
  }

  std::string describe() const { return files_.empty() ? std::string("checkpoint") : files_.front()->path(); }

 private:
  struct Location {
    const TensorFile* file;
    const TensorInfo* tensor;
  };
  const Location& locate(const std::string& name) const {
    auto found = where_.find(name);
    if (found == where_.end()) throw Error(describe() + ": checkpoint has no tensor '" + name + "'");
    return found->second;
  }
  std::vector<std::unique_ptr<TensorFile>> files_;
  std::map<std::string, Location> where_;
};

/// Collects canonical tensors, checks each shape against the config, then writes the file.
class ModelBuilder {
 public:
  ModelBuilder(const ModelConfig& config, DType dtype) : config_(config), dtype_(dtype) {
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
    writer_.add(name, dtype_, spec->second.shape, values.data());
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

inline TensorWriter convert_hf_folder(const std::string& folder, const ConvertOptions& options) {
  namespace fs = std::filesystem;
  const fs::path root(folder);
  const nlohmann::json config_json = read_json_file((root / "config.json").string());
  const std::string where = (root / "config.json").string();
  if (!config_json.contains("vision_config") || !config_json.contains("text_config"))
    throw Error(where + ": not a CLIPModel config (no vision_config / text_config)");
  const nlohmann::json& vision = config_json["vision_config"];
  const nlohmann::json& text = config_json["text_config"];

  // Defaults are transformers' CLIPVisionConfig / CLIPTextConfig defaults, which published
  // config files rely on by omitting keys.
  ModelConfig config;
  config.vision = {json_int(vision, "image_size", 224), json_int(vision, "patch_size", 32),
                   json_int(vision, "hidden_size", 768), json_int(vision, "num_hidden_layers", 12),
                   json_int(vision, "num_attention_heads", 12), json_int(vision, "intermediate_size", 3072)};
  config.text = {json_int(text, "vocab_size", 49408), json_int(text, "max_position_embeddings", 77),
                 json_int(text, "hidden_size", 512),  json_int(text, "num_attention_heads", 8),
                 json_int(text, "num_hidden_layers", 12), json_int(text, "intermediate_size", 2048)};
  config.embed_dim = json_int(config_json, "projection_dim", 512);
  const std::string vision_act = vision.value("hidden_act", std::string("quick_gelu"));
  const std::string text_act = text.value("hidden_act", std::string("quick_gelu"));
  if (vision_act != text_act)
    throw Error(where + ": towers use different activations (" + vision_act + ", " + text_act + "), unsupported");
  try {
    config.activation = parse_activation(vision_act);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  config.layer_norm_eps = text.value("layer_norm_eps", 1e-5);
  if (options.vision_heads) config.vision.heads = options.vision_heads;
  if (options.text_heads) config.text.heads = options.text_heads;

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
  if (options.image_mean) config.image_mean = *options.image_mean;
  if (options.image_std) config.image_std = *options.image_std;

  CheckpointTensors checkpoint;
  const fs::path index = root / "model.safetensors.index.json";
  if (fs::exists(root / "model.safetensors")) {
    checkpoint.add_file((root / "model.safetensors").string());
  } else if (fs::exists(index)) {
    const nlohmann::json index_json = read_json_file(index.string());
    std::set<std::string> shards;
    try {
      for (const auto& [name, shard] : index_json.at("weight_map").items()) shards.insert(shard.get<std::string>());
    } catch (const nlohmann::json::exception& e) {
      throw Error(index.string() + ": invalid weight_map: " + e.what());
    }
    for (const std::string& shard : shards) {
      if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
        throw Error(index.string() + ": shard name '" + shard + "' leaves the folder");
      checkpoint.add_file((root / shard).string());
    }
  } else {
    throw Error(folder + ": no model.safetensors or model.safetensors.index.json (convert .bin weights to safetensors first)");
  }

  ModelBuilder builder(config, options.dtype);
  auto copy = [&](const std::string& from, const std::string& to) { builder.put(to, checkpoint.read(from), from); };
  auto copy_transposed = [&](const std::string& from, const std::string& to) {
    const TensorInfo& info = checkpoint.info(from);
    if (info.shape.size() != 2) throw Error(from + " is not a matrix");
    builder.put(to, transpose(checkpoint.read(from), info.shape[0], info.shape[1]), from);
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

  return builder.finish(options.vocab_path.empty()
                            ? Tokenizer::from_hf((root / "vocab.json").string(), (root / "merges.txt").string())
                            : load_tokenizer(options.vocab_path));
}

inline TensorWriter convert_state_dict(const std::string& path, const ConvertOptions& options) {
  if (options.vocab_path.empty())
    throw Error(path + ": a state dict carries no tokenizer; pass --vocab (e.g. bpe_simple_vocab_16e6.txt.gz)");
  CheckpointTensors checkpoint;
  checkpoint.add_file(path);
  for (const char* required : {"visual.conv1.weight", "visual.positional_embedding", "token_embedding.weight",
                               "positional_embedding", "ln_final.weight", "text_projection", "visual.proj"})
    if (!checkpoint.contains(required))
      throw Error(path + ": not an OpenAI/open_clip ViT state dict (no '" + std::string(required) + "')");

  // Shape inference as in OpenAI's build_model.
  ModelConfig config;
  const TensorInfo& conv = checkpoint.info("visual.conv1.weight");
  if (conv.shape.size() != 4) throw Error(path + ": visual.conv1.weight is not 4-D");
  config.vision.width = static_cast<int>(conv.shape[0]);
  config.vision.patch_size = static_cast<int>(conv.shape[3]);
  const std::int64_t positions = checkpoint.info("visual.positional_embedding").shape.at(0);
  const auto grid = static_cast<int>(std::lround(std::sqrt(static_cast<double>(positions - 1))));
  config.vision.image_size = grid * config.vision.patch_size;
  config.vision.layers = checkpoint.count_blocks("visual.transformer.resblocks.");
  config.vision.heads = options.vision_heads ? options.vision_heads : std::max(1, config.vision.width / 64);
  config.vision.mlp_width = config.vision.layers > 0
      ? static_cast<int>(checkpoint.info("visual.transformer.resblocks.0.mlp.c_fc.weight").shape.at(0))
      : 4 * config.vision.width;
  const TensorInfo& token_embedding = checkpoint.info("token_embedding.weight");
  config.text.vocab_size = static_cast<int>(token_embedding.shape.at(0));
  config.text.context_length = static_cast<int>(checkpoint.info("positional_embedding").shape.at(0));
  config.text.width = static_cast<int>(checkpoint.info("ln_final.weight").shape.at(0));
  config.text.layers = checkpoint.count_blocks("transformer.resblocks.");
  config.text.heads = options.text_heads ? options.text_heads : std::max(1, config.text.width / 64);
  config.text.mlp_width = config.text.layers > 0
      ? static_cast<int>(checkpoint.info("transformer.resblocks.0.mlp.c_fc.weight").shape.at(0))
      : 4 * config.text.width;
  config.embed_dim = static_cast<int>(checkpoint.info("text_projection").shape.at(1));
  config.activation = options.activation.value_or(Activation::QuickGELU);
  if (options.image_mean) config.image_mean = *options.image_mean;
  if (options.image_std) config.image_std = *options.image_std;

  ModelBuilder builder(config, options.dtype);
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
  }
  return builder.finish(load_tokenizer(options.vocab_path));
}

}  // namespace detail

/// Converts a Hugging Face CLIPModel folder or an OpenAI/open_clip .safetensors state dict.
inline TensorWriter convert_checkpoint(const std::string& source, const ConvertOptions& options = {}) {
  if (std::filesystem::is_directory(source)) return detail::convert_hf_folder(source, options);
  if (!std::filesystem::exists(source)) throw Error(source + ": no such file or folder");
  return detail::convert_state_dict(source, options);
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
/// for benchmarks and tests. Without BPE data the vocabulary is bytes only (no merges).
inline TensorWriter random_model(const ModelConfig& config, const std::string& merges_text, DType dtype,
                                 unsigned seed = 0) {
  detail::ModelBuilder builder(config, dtype);
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
