#pragma once
// ModelConfig: the architecture and preprocessing constants a model file carries in its metadata,
// and the canonical tensor layout that follows from them.

#include <clip/detail/compilation.hpp>
#include <clip/error.hpp>

// The JSON reading and writing below is compiled once in clip_compiled (CLIP_HEADER_DEFINITIONS);
// a file that only calls the API sees nlohmann::json declared, never its parser.
#if CLIP_HEADER_DEFINITIONS
#include <nlohmann/json.hpp>
#else
#include <nlohmann/json_fwd.hpp>
#endif

#include <array>
#include <charconv>
#include <cstdlib>
#include <cstdint>
#include <string>
#include <vector>

namespace clip {

enum class Activation { QuickGELU, GELU };

inline const char* activation_name(Activation activation) {
  return activation == Activation::QuickGELU ? "quick_gelu" : "gelu";
}

inline Activation parse_activation(const std::string& name) {
  if (name == "quick_gelu") return Activation::QuickGELU;
  if (name == "gelu") return Activation::GELU;
  throw Error("unknown activation '" + name + "' (quick_gelu or gelu)");
}

struct VisionConfig {
  int image_size = 224;
  int patch_size = 32;
  int width = 768;
  int layers = 12;
  int heads = 12;
  int mlp_width = 3072;

  int grid_size() const { return image_size / patch_size; }
  int tokens() const { return grid_size() * grid_size() + 1; }  // patches + class token
};

struct TextConfig {
  int vocab_size = 49408;
  int context_length = 77;
  int width = 512;
  int heads = 8;
  int layers = 12;
  int mlp_width = 2048;
};

struct ModelConfig {
  VisionConfig vision;
  TextConfig text;
  int embed_dim = 512;
  Activation activation = Activation::QuickGELU;
  double layer_norm_eps = 1e-5;
  std::array<float, 3> image_mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> image_std{0.26862954f, 0.26130258f, 0.27577711f};
  /// How images reach image_size: "shortest" (OpenAI's short-side resize then center crop) or
  /// "squash" (open_clip's resize of both sides to image_size, no crop; DFN models use it).
  std::string resize_mode = "shortest";

  /// Throws clip::Error when the numbers cannot describe a working model.
  void validate() const {
    auto require = [](bool ok, const std::string& what) {
      if (!ok) throw Error("invalid model config: " + what);
    };
    // Upper bounds keep a hostile file from asking for absurd allocations.
    auto in_range = [&](int value, int low, int high, const char* name) {
      require(value >= low && value <= high,
              std::string(name) + " = " + std::to_string(value) + " is outside [" +
                  std::to_string(low) + ", " + std::to_string(high) + "]");
    };
    in_range(vision.image_size, 1, 4096, "vision.image_size");
    in_range(vision.patch_size, 1, 1024, "vision.patch_size");
    in_range(vision.width, 1, 16384, "vision.width");
    in_range(vision.layers, 0, 256, "vision.layers");
    in_range(vision.heads, 1, 1024, "vision.heads");
    in_range(vision.mlp_width, 1, 65536, "vision.mlp_width");
    in_range(text.vocab_size, 3, 1 << 22, "text.vocab_size");
    in_range(text.context_length, 2, 65536, "text.context_length");
    in_range(text.width, 1, 16384, "text.width");
    in_range(text.layers, 0, 256, "text.layers");
    in_range(text.heads, 1, 1024, "text.heads");
    in_range(text.mlp_width, 1, 65536, "text.mlp_width");
    in_range(embed_dim, 1, 16384, "embed_dim");
    require(vision.image_size % vision.patch_size == 0,
            "vision.image_size " + std::to_string(vision.image_size) + " is not a multiple of patch_size " +
                std::to_string(vision.patch_size));
    require(vision.width % vision.heads == 0, "vision.width is not a multiple of vision.heads");
    require(text.width % text.heads == 0, "text.width is not a multiple of text.heads");
    require(layer_norm_eps > 0 && layer_norm_eps < 1, "layer_norm_eps must be in (0, 1)");
    for (int c = 0; c < 3; ++c) require(image_std[c] > 0, "image_std must be positive");
    require(resize_mode == "shortest" || resize_mode == "squash",
            "resize_mode '" + resize_mode + "' is not supported (shortest or squash)");
  }
};

namespace detail {

/// A float as the shortest decimal that reads back as the same float ("0.48145466", not the
/// "0.48145467042922974" a widening to double would print).
inline double shortest_decimal(float value) {
  char text[32];
  const auto end = std::to_chars(text, text + sizeof text, value).ptr;
  return std::strtod(std::string(text, end).c_str(), nullptr);
}

}  // namespace detail

/// The config as the JSON object a model file's "config" metadata holds.
nlohmann::json to_json(const ModelConfig& config);

/// Parses and validates the "config" metadata of a model file; `source` names it in errors.
ModelConfig config_from_json(const nlohmann::json& json, const std::string& source);

#if CLIP_HEADER_DEFINITIONS

namespace detail {

inline nlohmann::json shortest_decimals(const std::array<float, 3>& values) {
  return {shortest_decimal(values[0]), shortest_decimal(values[1]), shortest_decimal(values[2])};
}

}  // namespace detail

CLIP_INLINE nlohmann::json to_json(const ModelConfig& config) {
  const VisionConfig& v = config.vision;
  const TextConfig& t = config.text;
  return {
      {"vision", {{"image_size", v.image_size}, {"patch_size", v.patch_size}, {"width", v.width},
                  {"layers", v.layers}, {"heads", v.heads}, {"mlp_width", v.mlp_width}}},
      {"text", {{"vocab_size", t.vocab_size}, {"context_length", t.context_length}, {"width", t.width},
                {"layers", t.layers}, {"heads", t.heads}, {"mlp_width", t.mlp_width}}},
      {"embed_dim", config.embed_dim},
      {"activation", activation_name(config.activation)},
      {"layer_norm_eps", config.layer_norm_eps},
      {"image_mean", detail::shortest_decimals(config.image_mean)},
      {"image_std", detail::shortest_decimals(config.image_std)},
      {"resize_mode", config.resize_mode},
  };
}

CLIP_INLINE ModelConfig config_from_json(const nlohmann::json& json, const std::string& source) {
  ModelConfig config;
  try {
    const auto& v = json.at("vision");
    const auto& t = json.at("text");
    config.vision = {v.at("image_size").get<int>(), v.at("patch_size").get<int>(), v.at("width").get<int>(),
                     v.at("layers").get<int>(),     v.at("heads").get<int>(),      v.at("mlp_width").get<int>()};
    config.text = {t.at("vocab_size").get<int>(), t.at("context_length").get<int>(), t.at("width").get<int>(),
                   t.at("heads").get<int>(),      t.at("layers").get<int>(),         t.at("mlp_width").get<int>()};
    config.embed_dim = json.at("embed_dim").get<int>();
    config.activation = parse_activation(json.at("activation").get<std::string>());
    config.layer_norm_eps = json.at("layer_norm_eps").get<double>();
    config.image_mean = json.at("image_mean").get<std::array<float, 3>>();
    config.image_std = json.at("image_std").get<std::array<float, 3>>();
    // Files written before resize_mode existed were all "shortest".
    config.resize_mode = json.value("resize_mode", std::string("shortest"));
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": invalid model config: " + e.what());
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  try {
    config.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  return config;
}

#endif  // CLIP_HEADER_DEFINITIONS

/// One tensor the canonical layout requires: its name, shape and meaning (docs/model-format.md).
struct TensorSpec {
  std::string name;
  std::vector<std::int64_t> shape;
  std::string meaning;
};

/// Every floating-point tensor a model file with this config must hold, in canonical order.
inline std::vector<TensorSpec> canonical_tensors(const ModelConfig& config) {
  std::vector<TensorSpec> specs;
  auto add_blocks = [&](const std::string& tower, int layers, std::int64_t width, std::int64_t mlp) {
    for (int i = 0; i < layers; ++i) {
      const std::string block = tower + ".blocks." + std::to_string(i) + ".";
      specs.push_back({block + "ln_1.weight", {width}, "LayerNorm before attention: scale"});
      specs.push_back({block + "ln_1.bias", {width}, "LayerNorm before attention: shift"});
      specs.push_back({block + "attn.qkv.weight", {3 * width, width}, "fused q, k, v projection rows [out, in]"});
      specs.push_back({block + "attn.qkv.bias", {3 * width}, "fused q, k, v bias"});
      specs.push_back({block + "attn.out.weight", {width, width}, "attention output projection [out, in]"});
      specs.push_back({block + "attn.out.bias", {width}, "attention output bias"});
      specs.push_back({block + "ln_2.weight", {width}, "LayerNorm before the MLP: scale"});
      specs.push_back({block + "ln_2.bias", {width}, "LayerNorm before the MLP: shift"});
      specs.push_back({block + "mlp.fc.weight", {mlp, width}, "MLP expansion (c_fc) [out, in]"});
      specs.push_back({block + "mlp.fc.bias", {mlp}, "MLP expansion bias"});
      specs.push_back({block + "mlp.proj.weight", {width, mlp}, "MLP projection (c_proj) [out, in]"});
      specs.push_back({block + "mlp.proj.bias", {width}, "MLP projection bias"});
    }
  };
  const VisionConfig& v = config.vision;
  const TextConfig& t = config.text;
  specs.push_back({"vision.patch_embedding", {v.width, 3, v.patch_size, v.patch_size}, "patch conv (conv1), no bias"});
  specs.push_back({"vision.class_embedding", {v.width}, "class token"});
  specs.push_back({"vision.position_embedding", {v.grid_size() * v.grid_size() + 1, v.width}, "class + patch positions"});
  specs.push_back({"vision.ln_pre.weight", {v.width}, "ln_pre scale"});
  specs.push_back({"vision.ln_pre.bias", {v.width}, "ln_pre shift"});
  add_blocks("vision", v.layers, v.width, v.mlp_width);
  specs.push_back({"vision.ln_post.weight", {v.width}, "ln_post scale (class token)"});
  specs.push_back({"vision.ln_post.bias", {v.width}, "ln_post shift"});
  specs.push_back({"vision.proj", {v.width, config.embed_dim}, "image projection, features = x @ proj"});
  specs.push_back({"text.token_embedding", {t.vocab_size, t.width}, "token embedding"});
  specs.push_back({"text.position_embedding", {t.context_length, t.width}, "positional embedding"});
  add_blocks("text", t.layers, t.width, t.mlp_width);
  specs.push_back({"text.ln_final.weight", {t.width}, "ln_final scale"});
  specs.push_back({"text.ln_final.bias", {t.width}, "ln_final shift"});
  specs.push_back({"text.proj", {t.width, config.embed_dim}, "text projection, features = x @ proj"});
  specs.push_back({"logit_scale", {}, "log of the logit scale (logits use exp(logit_scale))"});
  return specs;
}

}  // namespace clip
