// The converter on every checkpoint kind users download: tiny-a as PyTorch wrote it
// (../shared/reference/tiny-a/formats: torch.save state dict, TorchScript archive, sharded HF
// folder, open_clip folder, clip.cpp GGUF) must give the same model file as the safetensors
// path (bit-identical F32 tensors) and golden.json's features; training checkpoints (module.
// prefixes, {"state_dict": ...}), the legacy format, HF pytorch_model.bin, F16 storages,
// strided views and I64 buffers are built here from the reference tensors. Hostile files fail
// with clip::Error. The squash resize is checked against Pillow (tests/data/squash).

#include "formats/builders.hpp"
#include "test_support.hpp"

#include <clip/analysis/similarity.hpp>
#include <clip/convert/convert.hpp>
#include <clip/image/preprocess.hpp>
#include <clip/model/model.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include <sys/wait.h>

namespace {

namespace fs = std::filesystem;

clip::ConvertOptions options_with_vocabulary() {
  clip::ConvertOptions options;
  // What clip-convert builds in, from the source tree (the file tools/ embeds).
  options.default_tokenizer = [] { return clip::Tokenizer::from_bpe_gz(std::string(CLIP_SOURCE_DIR) + "/tools/vocab/bpe_simple_vocab_16e6.txt.gz"); };
  return options;
}

std::string convert_to(const std::string& source, const std::string& name, clip::ConvertOptions options,
                       clip::ConversionReport* report = nullptr) {
  static const fs::path dir = clip_test::scratch_dir("convert-formats");
  const std::string out = (dir / (name + ".safetensors")).string();
  clip::convert_checkpoint(source, options, report).write(out);
  return out;
}

/// tiny-a from openai.safetensors: the conversion every other input is compared with.
const std::string& reference_model() {
  static const std::string path = [] {
    clip::ConvertOptions options = options_with_vocabulary();
    options.text_heads = 2;  // build_model's width / 64 says 1 for tiny-a's 64-wide text tower
    return convert_to(clip_test::reference_dir() + "/tiny-a/openai.safetensors", "reference", options);
  }();
  return path;
}

/// Compares every canonical tensor of `path` with the reference conversion: bit for bit, except
/// the names in `rounded_f16`, which must be the reference rounded once to F16.
void expect_same_model(const std::string& path, const std::set<std::string>& rounded_f16 = {}) {
  const clip::ModelFile a(reference_model()), b(path);
  EXPECT_EQ(clip::to_json(a.config()), clip::to_json(b.config()));
  EXPECT_TRUE(a.merges_text() == b.merges_text()) << "the stored BPE merges differ";
  for (const clip::TensorSpec& spec : clip::canonical_tensors(a.config())) {
    const auto x = a.tensors().read<float>(spec.name), y = b.tensors().read<float>(spec.name);
    ASSERT_EQ(x.size(), y.size()) << spec.name;
    const bool f16 = rounded_f16.count(spec.name) != 0;
    std::size_t different = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float expected = f16 ? clip::detail::half_to_float(clip::detail::float_to_half(x[i])) : x[i];
      different += std::memcmp(&expected, &y[i], 4) != 0;
    }
    EXPECT_EQ(different, 0u) << spec.name << " differs from the safetensors conversion in " << different << " values";
  }
}

struct Golden {
  clip::RowMatrix<float> pixels, image_features, text_features;
  clip::TokenMatrix tokens;
};

const Golden& golden() {
  static const Golden g = [] {
    std::ifstream stream(clip_test::reference_dir() + "/tiny-a/golden.json");
    const nlohmann::json json = nlohmann::json::parse(stream);
    auto rows = [&](const char* list, const char* key) {
      const auto& items = json.at(list);
      clip::RowMatrix<float> m(items.size(), items.at(0).at(key).size());
      for (std::size_t r = 0; r < items.size(); ++r)
        for (std::size_t c = 0; c < items[r][key].size(); ++c) m(r, c) = items[r][key][c].get<float>();
      return m;
    };
    Golden out;
    out.pixels = rows("images", "pixel_values");
    out.image_features = rows("images", "image_features");
    out.text_features = rows("texts", "text_features");
    out.tokens = rows("texts", "tokens").cast<std::int32_t>();
    return out;
  }();
  return g;
}

/// Worst over rows of max|a - b| / max|b| (the measure of tests/test_encoders.cpp).
double worst_relative_error(const clip::RowMatrix<float>& actual, const clip::RowMatrix<float>& expected) {
  EXPECT_EQ(actual.rows(), expected.rows());
  double worst = 0;
  for (Eigen::Index r = 0; r < expected.rows(); ++r)
    worst = std::max(worst, static_cast<double>((actual.row(r) - expected.row(r)).cwiseAbs().maxCoeff() /
                                                expected.row(r).cwiseAbs().maxCoeff()));
  return worst;
}

// Tolerances as for the safetensors path (tests/test_encoders.cpp): 1e-4 of a feature's largest
// entry in float; 1e-2 where a weight was stored in F16 (GGUF's patch kernel, F16 storages),
// which bounds one half-precision rounding of each weight spread through the towers.
constexpr double float_tolerance = 1e-4;
constexpr double f16_tolerance = 1e-2;

void expect_golden_features(const std::string& path, double tolerance, const std::string& label) {
  const clip::Model<float> model(path);
  const double image_error = worst_relative_error(model.encode_images(golden().pixels), golden().image_features);
  const double text_error = worst_relative_error(model.encode_texts(golden().tokens), golden().text_features);
  std::cout << "[ " << label << " ] worst relative error: images " << image_error << ", texts " << text_error
            << " (tolerance " << tolerance << ")\n";
  EXPECT_LE(image_error, tolerance) << label;
  EXPECT_LE(text_error, tolerance) << label;
}

#define REFERENCE_OR_SKIP(variable, relative) CLIP_REFERENCE_OR_SKIP(variable, relative)

TEST(ConvertFormats, TorchSaveStateDict) {
  REFERENCE_OR_SKIP(source, "tiny-a/formats/openai-state-dict.pt");
  clip::ConvertOptions options = options_with_vocabulary();
  options.text_heads = 2;
  clip::ConversionReport report;
  const std::string out = convert_to(source, "state-dict", options, &report);
  EXPECT_EQ(report.input, "PyTorch zip checkpoint");
  EXPECT_TRUE(report.unused().empty());
  expect_same_model(out);
  expect_golden_features(out, float_tolerance, "openai-state-dict.pt");
}

TEST(ConvertFormats, TorchScriptArchive) {
  REFERENCE_OR_SKIP(source, "tiny-a/formats/openai-jit.pt");
  clip::ConvertOptions options = options_with_vocabulary();
  options.text_heads = 2;  // a traced archive records heads only in its code: the flag says
  clip::ConversionReport report;
  const std::string out = convert_to(source, "jit", options, &report);
  EXPECT_EQ(report.input, "TorchScript archive");
  expect_same_model(out);
  expect_golden_features(out, float_tolerance, "openai-jit.pt");
  // Without the flag, build_model's rule gives 128 / 64 = 2 vision heads and 64 / 64 = 1 text head.
  const clip::ConversionReport inferred = clip::inspect_checkpoint(source, options_with_vocabulary());
  ASSERT_TRUE(inferred.config) << inferred.error;
  EXPECT_EQ(inferred.config->vision.heads, 2);
  EXPECT_EQ(inferred.config->text.heads, 1);
  EXPECT_EQ(inferred.config->activation, clip::Activation::QuickGELU);
}

TEST(ConvertFormats, OpenClipFolder) {
  REFERENCE_OR_SKIP(source, "tiny-a/formats/open_clip");
  clip::ConversionReport report;
  const std::string out = convert_to(source, "open_clip", options_with_vocabulary(), &report);  // heads from its config
  expect_same_model(out);
  expect_golden_features(out, float_tolerance, "open_clip folder");

  // The config decides heads, activation and preprocessing: a copy with other values.
  const fs::path copy = clip_test::scratch_dir("open-clip-squash");
  fs::copy_file(source + "/open_clip_pytorch_model.bin", copy / "open_clip_pytorch_model.bin");
  std::ifstream in(source + "/open_clip_config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["model_cfg"]["quick_gelu"] = false;
  config["model_cfg"]["vision_cfg"]["head_width"] = 32;
  config["model_cfg"]["text_cfg"]["heads"] = 4;
  config["preprocess_cfg"]["resize_mode"] = "squash";
  config["preprocess_cfg"]["mean"] = {0.5, 0.5, 0.5};
  std::ofstream((copy / "open_clip_config.json").string()) << config.dump();
  const clip::ModelFile squashed(convert_to(copy.string(), "open_clip_squash", options_with_vocabulary()));
  EXPECT_EQ(squashed.config().vision.heads, 4);
  EXPECT_EQ(squashed.config().text.heads, 4);
  EXPECT_EQ(squashed.config().activation, clip::Activation::GELU);
  EXPECT_EQ(squashed.config().resize_mode, "squash");
  EXPECT_EQ(squashed.config().image_mean[1], 0.5f);
  EXPECT_TRUE(clip::preprocess_options(squashed.config()).squash);
  config["preprocess_cfg"]["interpolation"] = "bilinear";
  std::ofstream((copy / "open_clip_config.json").string()) << config.dump();
  EXPECT_THROW(convert_to(copy.string(), "open_clip_bilinear", options_with_vocabulary()), clip::Error);
}

TEST(ConvertFormats, ShardedHuggingFaceFolder) {
  REFERENCE_OR_SKIP(source, "tiny-a/formats/hf-sharded");
  clip::ConversionReport report;
  const std::string out = convert_to(source, "hf-sharded", {}, &report);
  EXPECT_EQ(report.files.size(), 2u);
  expect_same_model(out);
  expect_golden_features(out, float_tolerance, "hf-sharded");
}

TEST(ConvertFormats, ClipCppGguf) {
  REFERENCE_OR_SKIP(source, "tiny-a/formats/clipcpp-f32.gguf");
  clip::ConversionReport report;
  const std::string out = convert_to(source, "gguf", options_with_vocabulary(), &report);
  // clip.cpp stores the patch kernel in F16; everything else is F32 and must be exact.
  expect_same_model(out, {"vision.patch_embedding"});
  expect_golden_features(out, f16_tolerance, "clipcpp-f32.gguf");
  EXPECT_NE(report.tokenizer.find("tokenizer.ggml.tokens"), std::string::npos) << report.tokenizer;
  // Without a vocabulary to check the token list against, the converter asks for one.
  EXPECT_THROW(clip::convert_checkpoint(source), clip::Error);
}

/// The reference tensors with OpenAI names, for building checkpoints in the tests.
std::map<std::string, std::pair<std::vector<std::int64_t>, std::vector<float>>> reference_tensors(const std::string& file) {
  const clip::TensorFile tensors(file);
  std::map<std::string, std::pair<std::vector<std::int64_t>, std::vector<float>>> out;
  for (const clip::TensorInfo& info : tensors.tensors()) out[info.name] = {info.shape, tensors.read<float>(info.name)};
  return out;
}

/// A torch.save zip of `tensors` under `prefix` names, as F32 (or F16) storages, optionally
/// wrapped in {"epoch": 7, "state_dict": ...}; `transposed` names are stored as a transposed view.
std::string torch_file(const std::map<std::string, std::pair<std::vector<std::int64_t>, std::vector<float>>>& tensors,
                       const std::string& prefix, bool wrap, bool legacy, bool half = false,
                       const std::set<std::string>& transposed = {}, bool with_position_ids = false) {
  clip_test::Pickle p;
  p.proto(2);
  if (wrap) p.op('}').mark().str("epoch").integer(7).str("state_dict");
  p.global("collections", "OrderedDict").empty_tuple().reduce().mark();
  std::vector<std::pair<std::string, std::string>> storages;
  for (const auto& [name, tensor] : tensors) {
    const auto& [shape, values] = tensor;
    const std::string key = std::to_string(storages.size());
    std::vector<std::int64_t> stride(shape.size(), 1);
    for (std::size_t d = shape.size(); d-- > 1;) stride[d - 1] = stride[d] * shape[d];
    std::vector<float> stored = values;
    if (transposed.count(name) && shape.size() == 2) {
      // Storage holds the transpose; the tensor is its .t() view (strides 1, rows).
      stored = clip::detail::transpose(values, shape[0], shape[1]);
      stride = {1, shape[0]};
    }
    std::string bytes;
    if (half) {
      for (float v : stored) clip_test::put_le(bytes, clip::detail::float_to_half(v), 2);
    } else {
      bytes = clip_test::float_bytes(stored);
    }
    storages.push_back({key, bytes});
    p.str(prefix + name).tensor(half ? "HalfStorage" : "FloatStorage", key, static_cast<std::int64_t>(stored.size()), 0, shape, stride);
  }
  if (with_position_ids) {
    // transformers < 4.31 saved this I64 buffer; the model does not use it.
    std::string ids;
    for (int i = 0; i < 77; ++i) clip_test::put_le(ids, i, 8);
    storages.push_back({"ids", ids});
    p.str(prefix + "text_model.embeddings.position_ids").tensor("LongStorage", "ids", 77, 0, {1, 77}, {77, 1});
  }
  p.op('u');
  if (wrap) p.op('u');
  p.stop();
  return legacy ? clip_test::make_legacy(p.bytes, storages, half ? 2 : 4) : clip_test::make_torch_zip(p.bytes, storages);
}

TEST(ConvertFormats, TrainingCheckpointsLegacyFilesAndViewsConvertBitIdentically) {
  REFERENCE_OR_SKIP(source, "tiny-a/openai.safetensors");
  const auto tensors = reference_tensors(source);
  const fs::path dir = clip_test::scratch_dir("training-checkpoints");
  clip::ConvertOptions options = options_with_vocabulary();
  options.text_heads = 2;
  struct Case {
    const char* name;
    std::string bytes;
  };
  const Case cases[] = {
      {"dataparallel.pt", torch_file(tensors, "module.", true, false, false, {"visual.proj", "text_projection"})},
      {"legacy.pt", torch_file(tensors, "", false, true)},
      {"legacy-dataparallel.pt", torch_file(tensors, "module.", true, true, false, {"visual.proj"})},
  };
  for (const Case& c : cases) {
    clip_test::write_bytes(dir / c.name, c.bytes);
    SCOPED_TRACE(c.name);
    expect_same_model(convert_to((dir / c.name).string(), c.name, options));
  }
  // F16 storages: each weight rounded once, as the file holds it.
  clip_test::write_bytes(dir / "half.pt", torch_file(tensors, "", false, false, true));
  const clip::ModelFile half(convert_to((dir / "half.pt").string(), "half", options));
  const clip::ModelFile reference(reference_model());
  for (const clip::TensorSpec& spec : clip::canonical_tensors(reference.config())) {
    const auto x = reference.tensors().read<float>(spec.name), y = half.tensors().read<float>(spec.name);
    for (std::size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(y[i], clip::detail::half_to_float(clip::detail::float_to_half(x[i]))) << spec.name << "[" << i << "]";
  }
}

TEST(ConvertFormats, RefusesTowerWeightsItWouldDrop) {
  // An open_clip variant with LayerScale: converting without its gammas would give wrong
  // features silently, so the extra tower tensor is an error naming it.
  REFERENCE_OR_SKIP(source, "tiny-a/openai.safetensors");
  auto tensors = reference_tensors(source);
  tensors["visual.transformer.resblocks.0.ls_1.gamma"] = {{128}, std::vector<float>(128, 1.0f)};
  const fs::path dir = clip_test::scratch_dir("layer-scale");
  clip_test::write_bytes(dir / "ls.pt", torch_file(tensors, "", false, false));
  try {
    clip::convert_checkpoint((dir / "ls.pt").string(), options_with_vocabulary());
    FAIL() << "converted a checkpoint with an unused tower weight";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("ls_1.gamma"), std::string::npos) << e.what();
  }
  const clip::ConversionReport report = clip::inspect_checkpoint((dir / "ls.pt").string(), options_with_vocabulary());
  EXPECT_NE(report.error.find("ls_1.gamma"), std::string::npos);
  EXPECT_EQ(report.tensors.size(), tensors.size());
}

/// A copy of the reference HF folder's text files, with the weights given.
fs::path hf_folder(const std::string& name) {
  const fs::path dir = clip_test::scratch_dir(name);
  for (const char* file : {"config.json", "vocab.json", "merges.txt", "preprocessor_config.json"})
    fs::copy_file(clip_test::reference_dir() + "/tiny-a/hf/" + file, dir / file);
  return dir;
}

TEST(ConvertFormats, HuggingFacePytorchModelBinWithPositionIds) {
  REFERENCE_OR_SKIP(hf, "tiny-a/hf/model.safetensors");
  const auto tensors = reference_tensors(hf);
  const fs::path dir = hf_folder("hf-bin");
  clip_test::write_bytes(dir / "pytorch_model.bin", torch_file(tensors, "", false, false, false, {}, true));
  clip::ConversionReport report;
  expect_same_model(convert_to(dir.string(), "hf-bin", {}, &report));
  EXPECT_EQ(report.unused(), std::vector<std::string>{"text_model.embeddings.position_ids"});

  // Sharded .bin with an index.
  const fs::path sharded = hf_folder("hf-bin-sharded");
  std::map<std::string, std::pair<std::vector<std::int64_t>, std::vector<float>>> first, second;
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& [name, tensor] : tensors) {
    const bool vision = name.rfind("vision_model.", 0) == 0;
    (vision ? first : second)[name] = tensor;
    index["weight_map"][name] = vision ? "pytorch_model-00001-of-00002.bin" : "pytorch_model-00002-of-00002.bin";
  }
  clip_test::write_bytes(sharded / "pytorch_model-00001-of-00002.bin", torch_file(first, "", false, false));
  clip_test::write_bytes(sharded / "pytorch_model-00002-of-00002.bin", torch_file(second, "", false, false));
  std::ofstream((sharded / "pytorch_model.bin.index.json").string()) << index.dump();
  expect_same_model(convert_to(sharded.string(), "hf-bin-sharded", {}));
  index["weight_map"]["x"] = "../escape.bin";
  std::ofstream((sharded / "pytorch_model.bin.index.json").string()) << index.dump();
  EXPECT_THROW(convert_to(sharded.string(), "hf-escape", {}), clip::Error);
}

TEST(ConvertFormats, PositionIdsInSafetensorsAreListedAndIgnored) {
  // The defect of issue 18: transformers < 4.31 wrote I64 position_ids into model.safetensors.
  REFERENCE_OR_SKIP(hf, "tiny-a/hf/model.safetensors");
  const clip::TensorFile original(hf);
  clip::TensorWriter writer;
  for (const clip::TensorInfo& info : original.tensors())
    writer.add_raw(info.name, info.dtype, info.shape, std::vector<std::uint8_t>(original.bytes(info), original.bytes(info) + info.nbytes));
  for (const char* tower : {"text_model", "vision_model"}) {
    std::vector<std::uint8_t> ids;
    const int count = std::string(tower) == "text_model" ? 77 : 17;
    for (int i = 0; i < count; ++i)
      for (int b = 0; b < 8; ++b) ids.push_back(static_cast<std::uint8_t>(b == 0 ? i : 0));
    writer.add_raw(std::string(tower) + ".embeddings.position_ids", clip::DType::I64, {1, count}, ids);
  }
  const fs::path dir = hf_folder("hf-position-ids");
  writer.write((dir / "model.safetensors").string());
  clip::ConversionReport report;
  expect_same_model(convert_to(dir.string(), "hf-position-ids", {}, &report));
  EXPECT_EQ(report.unused(), (std::vector<std::string>{"text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"}));
  const nlohmann::json json = report.to_json();
  EXPECT_EQ(json["unused"].size(), 2u);
}

TEST(ConvertFormats, ModelFilesReconvertWithoutVocabulary) {
  REFERENCE_OR_SKIP(source, "tiny-a/openai.safetensors");
  clip::ConvertOptions options;  // no vocabulary at all: the model file carries its own
  options.dtype = clip::DType::F16;
  const clip::ModelFile f16(convert_to(reference_model(), "reconverted-f16", options));
  const clip::ModelFile f32(reference_model());
  EXPECT_TRUE(f16.merges_text() == f32.merges_text());
  EXPECT_EQ(clip::to_json(f16.config()), clip::to_json(f32.config()));
  EXPECT_EQ(f16.tensors().info("vision.proj").dtype, clip::DType::F16);
  const auto x = f32.tensors().read<float>("text.proj"), y = f16.tensors().read<float>("text.proj");
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], clip::detail::half_to_float(clip::detail::float_to_half(x[i])));
  options.dtype = clip::DType::F32;
  expect_same_model(convert_to(reference_model(), "reconverted-f32", options));
}

TEST(ConvertFormats, HostileCheckpointsFailClearlyAndRunNothing) {
  const fs::path dir = clip_test::scratch_dir("hostile-checkpoints");
  const fs::path marker = dir / "ran";
  const std::string system = "cos\nsystem\n(S'touch " + marker.string() + "'\ntR.";
  clip_test::write_bytes(dir / "system.pt", clip_test::make_torch_zip(system, {}));
  try {
    clip::convert_checkpoint((dir / "system.pt").string(), options_with_vocabulary());
    FAIL() << "a pickle calling os.system converted";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("os.system"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("system.pt"), std::string::npos) << e.what();
  }
  clip_test::write_bytes(dir / "legacy-system.pt", clip_test::make_legacy(system, {}));
  EXPECT_THROW(clip::convert_checkpoint((dir / "legacy-system.pt").string(), options_with_vocabulary()), clip::Error);
  EXPECT_FALSE(fs::exists(marker)) << "a checkpoint ran a command";

  // Not CLIP, a ResNet CLIP, a folder where a file belongs, an empty file.
  clip_test::write_bytes(dir / "other.pt", clip_test::make_torch_zip(clip_test::state_dict_pickle({{"fc.weight", "0", {1}, {}, 1}}),
                                                                    {{"0", clip_test::float_bytes({1})}}));
  EXPECT_THROW(clip::convert_checkpoint((dir / "other.pt").string(), options_with_vocabulary()), clip::Error);
  clip_test::write_bytes(dir / "empty.pt", "");
  EXPECT_THROW(clip::convert_checkpoint((dir / "empty.pt").string(), options_with_vocabulary()), clip::Error);
  fs::create_directories(dir / "folder" / "pytorch_model.bin");
  std::ofstream((dir / "folder" / "config.json").string()) << R"({"vision_config": {}, "text_config": {}})";
  EXPECT_THROW(clip::convert_checkpoint((dir / "folder").string(), options_with_vocabulary()), clip::Error);

  // The reference files cut short: clean errors at every tenth of the file.
  const std::string reference = clip_test::reference_dir();
  if (reference.empty()) return;
  for (const char* name : {"openai-state-dict.pt", "openai-jit.pt", "clipcpp-f32.gguf"}) {
    std::ifstream in(reference + "/tiny-a/formats/" + name, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (int tenth = 1; tenth < 10; ++tenth) {
      const fs::path cut = dir / ("cut-" + std::to_string(tenth) + "-" + name);
      clip_test::write_bytes(cut, bytes.substr(0, bytes.size() * tenth / 10));
      EXPECT_THROW(clip::convert_checkpoint(cut.string(), options_with_vocabulary()), clip::Error) << cut;
    }
  }
}

#ifdef CLIP_CONVERT_EXE
/// Runs a command, returning its exit status and standard output.
std::pair<int, std::string> run(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>/dev/null").c_str(), "r");
  if (!pipe) return {-1, out};
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(ConvertFormats, ToolConvertsWithItsBuiltInVocabularyAndInspectsAsJson) {
  REFERENCE_OR_SKIP(source, "tiny-a/formats/openai-state-dict.pt");
  const fs::path dir = clip_test::scratch_dir("tool-formats");
  const std::string out = (dir / "tiny.safetensors").string();
  // No --vocab: the BPE vocabulary built into the binary is used.
  const auto converted = run(std::string(CLIP_CONVERT_EXE) + " '" + source + "' --text-heads 2 -o '" + out + "'");
  ASSERT_EQ(converted.first, 0);
  expect_same_model(out);
  const auto inspected = run(std::string(CLIP_CONVERT_EXE) + " --inspect '" + clip_test::reference_dir() +
                             "/tiny-a/formats/openai-jit.pt' --json");
  ASSERT_EQ(inspected.first, 0);
  const nlohmann::json json = nlohmann::json::parse(inspected.second);
  EXPECT_EQ(json["input"], "TorchScript archive");
  EXPECT_EQ(json["config"]["text"]["heads"], 1);  // width / 64, as build_model infers it
  EXPECT_GT(json["tensors"].size(), 60u);
  EXPECT_TRUE(json["unused"].empty());
}
#endif

/// The pattern tests/data/squash/make_fixtures.py draws.
clip::Image pattern(int width, int height, bool rgb) {
  clip::Image image;
  image.width = width;
  image.height = height;
  image.mode = rgb ? clip::PixelMode::RGB : clip::PixelMode::Gray;
  const int channels = rgb ? 3 : 1;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c) image.pixels.push_back(static_cast<std::uint8_t>((x * 7 + y * 13 + c * 50 + (x * y) % 31) & 255));
  return image;
}

TEST(Preprocess, SquashMatchesPillowsResizeOfBothSides) {
  const std::string data = std::string(CLIP_SOURCE_DIR) + "/tests/data/squash/";
  struct Case {
    int width, height;
    bool rgb;
    int size;
    const char* expected;
  } cases[] = {{97, 53, true, 40, "pattern_RGB_97x53_squash40.png"}, {31, 77, false, 24, "pattern_L_31x77_squash24.png"}};
  for (const Case& c : cases) {
    const clip::Image expected = clip::decode_image_file(data + c.expected);
    const clip::Image squashed = clip::resize_and_crop(pattern(c.width, c.height, c.rgb), c.size, {true});
    ASSERT_EQ(squashed.width, c.size);
    ASSERT_EQ(squashed.height, c.size);
    EXPECT_TRUE(squashed.pixels == expected.pixels) << c.expected << ": not pixel-exact with Pillow";
    // And through preprocess_image with the option set from a model config.
    clip::PreprocessOptions options;
    options.image_size = c.size;
    options.squash = true;
    std::vector<float> out(3 * c.size * c.size);
    clip::preprocess_image(pattern(c.width, c.height, c.rgb), options, out.data());
    EXPECT_FLOAT_EQ(out[0], (expected.pixels[0] / 255.0f - options.mean[0]) / options.std[0]);
  }
}

}  // namespace
