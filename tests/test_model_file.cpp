// The model file: safetensors reader validation, writer round trips, ModelFile checks, and the
// converter's equivalence of the two checkpoint layouts in the reference data.

#include "test_support.hpp"

#include <clip/config.hpp>
#include <clip/formats/model_file.hpp>
#include <clip/formats/tensor_file.hpp>
#include <clip/formats/tensor_writer.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <random>
#include <cstring>
#include <string>
#include <vector>

namespace {

using clip::DType;
using clip::TensorFile;
using clip::TensorWriter;

/// Builds a safetensors file image from a raw header text and data bytes.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string file(8, '\0');
  const std::uint64_t length = header.size();
  for (int b = 0; b < 8; ++b) file[b] = static_cast<char>(length >> (8 * b));
  return file + header + data;
}

/// Writes `bytes` to a scratch file and returns the error TensorFile raises on it ("" if none).
std::string reader_error(const std::string& name, const std::string& bytes) {
  const auto path = clip_test::scratch_dir("reader") / name;
  clip_test::write_bytes(path, bytes);
  try {
    TensorFile file(path.string());
  } catch (const clip::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << "error does not name the file: " << message;
    return message;
  }
  return "";
}

TEST(TensorFile, RoundTripsEveryDtypeAndMetadata) {
  const std::vector<float> values = {1.0f, -2.5f, 3.25f, 65504.0f, 1e-8f, -0.0f};
  TensorWriter writer;
  writer.set_metadata("purpose", "test");
  writer.add("a.f32", DType::F32, {2, 3}, values.data());
  writer.add("b.f16", DType::F16, {6}, values.data());
  writer.add("c.bf16", DType::BF16, {3, 2}, values.data());
  writer.add_text("d.text", "merges\nline");
  const auto path = clip_test::scratch_dir("roundtrip") / "file.safetensors";
  writer.write(path.string());

  TensorFile file(path.string());
  EXPECT_EQ(file.metadata().at("purpose"), "test");
  EXPECT_EQ(file.info("a.f32").shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(file.read<float>("a.f32"), values);
  ASSERT_NE(file.mapped_f32(file.info("a.f32")), nullptr) << "F32 data should be usable in place";
  const auto halves = file.read<float>("b.f16");
  const auto bfloats = file.read<float>("c.bf16");
  for (std::size_t i = 0; i < values.size(); ++i) {
    // Exactly the value rounded to the storage type (round to nearest even).
    EXPECT_EQ(halves[i], clip::detail::half_to_float(clip::detail::float_to_half(values[i])));
    EXPECT_EQ(bfloats[i], clip::detail::bfloat16_to_float(clip::detail::float_to_bfloat16(values[i])));
  }
  EXPECT_EQ(file.read_text("d.text"), "merges\nline");
  EXPECT_THROW(file.info("missing"), clip::Error);
  EXPECT_THROW(file.read<float>("d.text"), clip::Error);
}

TEST(HalfPrecision, ConversionsAreExactAndRoundToNearestEven) {
  using namespace clip::detail;
  for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float value = half_to_float(static_cast<std::uint16_t>(bits));
    if (std::isnan(value)) continue;
    ASSERT_EQ(float_to_half(value), bits) << "half " << bits << " does not round-trip";
  }
  EXPECT_EQ(half_to_float(0x3C00), 1.0f);
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie rounds to even
  EXPECT_EQ(float_to_half(1e6f), 0x7C00);                           // overflow to infinity
  EXPECT_EQ(float_to_bfloat16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);  // tie rounds to even
  EXPECT_EQ(bfloat16_to_float(0x3F80), 1.0f);
}

struct MalformedCase {
  const char* name;
  std::string bytes;
  const char* expected_message;
};

TEST(TensorFile, RejectsMalformedFilesWithClearMessages) {
  const std::string good_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  std::string huge_length(8, '\0');
  huge_length[5] = 0x10;  // 2^44 bytes of header
  std::string past_eof(8, '\0');
  past_eof[0] = 100;  // a 100-byte header in an 8-byte file
  const std::vector<MalformedCase> cases = {
      {"empty", "", "too short"},
      {"truncated_length", std::string("\x05\x00\x00", 3), "too short"},
      {"huge_header", huge_length + "{}", "exceeds the limit"},
      {"header_past_eof", past_eof, "past the end of the file"},
      {"invalid_json", safetensors_bytes("{\"t\": [", ""), "not valid JSON"},
      {"not_object", safetensors_bytes("[1,2]", ""), "not a JSON object"},
      // F64, I64 and the other dtypes of the specification are accepted in the table (issue 18);
      // a name outside it is not.
      {"unknown_dtype", safetensors_bytes(R"({"t":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", std::string(8, 'x')),
       "dtype C64, which the safetensors specification does not define"},
      {"span_past_end", safetensors_bytes("{" + good_entry + "}", std::string(4, 'x')), "data section has 4 bytes"},
      {"shape_mismatch", safetensors_bytes(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 'x')),
       "needs 12 bytes, its span has 8"},
      {"overlap", safetensors_bytes("{" + good_entry + R"(,"u":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                    std::string(8, 'x')),
       "overlap"},
      {"negative_dim", safetensors_bytes(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, 'x')),
       "invalid shape"},
      {"overflowing_shape",
       safetensors_bytes(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", std::string(4, 'x')),
       "absurdly large shape"},
      {"begin_after_end", safetensors_bytes(R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", std::string(4, 'x')),
       "begin after end"},
      {"no_offsets", safetensors_bytes(R"({"t":{"dtype":"U8","shape":[1]}})", "x"), "data_offsets"},
      {"metadata_not_string", safetensors_bytes(R"({"__metadata__":{"a":1}})", ""), "not a string"},
  };
  for (const MalformedCase& c : cases) {
    const std::string message = reader_error(c.name, c.bytes);
    EXPECT_NE(message.find(c.expected_message), std::string::npos)
        << c.name << ": expected '" << c.expected_message << "' in: " << message;
  }
  EXPECT_THROW(TensorFile("/nonexistent/clip/model.safetensors"), clip::Error);
}

/// A minimal model file written directly (not through the converter), so the ModelFile checks
/// are tested on their own; `mutate` may damage it.
clip::ModelConfig tiny_config() {
  clip::ModelConfig config;
  config.vision = {8, 4, 8, 1, 2, 16};
  config.text = {600, 6, 8, 2, 1, 16};
  config.embed_dim = 4;
  return config;
}

template <typename Mutate>
std::string write_tiny_model(const std::string& name, Mutate mutate) {
  const clip::ModelConfig config = tiny_config();
  TensorWriter writer;
  nlohmann::json config_json = clip::to_json(config);
  std::vector<clip::TensorSpec> specs = clip::canonical_tensors(config);
  mutate(config_json, specs);
  for (const clip::TensorSpec& spec : specs) {
    std::int64_t count = 1;
    for (auto dim : spec.shape) count *= dim;
    std::vector<float> zeros(static_cast<std::size_t>(count), 0.5f);
    writer.add(spec.name, DType::F32, spec.shape, zeros.data());
  }
  writer.add_text(clip::merges_tensor_name, "#version: 0.2\n");
  writer.set_metadata("format", "clip");
  writer.set_metadata("format_version", "1");
  writer.set_metadata("config", config_json.dump());
  const auto path = clip_test::scratch_dir("model-" + name) / "model.safetensors";
  writer.write(path.string());
  return path.string();
}

std::string model_error(const std::string& path) {
  try {
    clip::ModelFile model(path);
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelFile, AcceptsAConsistentFile) {
  const std::string path = write_tiny_model("good", [](auto&, auto&) {});
  clip::ModelFile model(path);
  EXPECT_EQ(model.config().vision.grid_size(), 2);
  EXPECT_EQ(model.config().text.vocab_size, 600);
  EXPECT_EQ(model.merges_text(), "#version: 0.2\n");
}

TEST(ModelFile, RejectsMissingTensorsAndContradictingConfigs) {
  const std::string missing = write_tiny_model("missing", [](auto&, std::vector<clip::TensorSpec>& specs) {
    specs.erase(specs.begin() + 3);  // vision.ln_pre.weight
  });
  EXPECT_NE(model_error(missing).find("missing tensor 'vision.ln_pre.weight'"), std::string::npos) << model_error(missing);

  const std::string contradicts = write_tiny_model("contradicts", [](nlohmann::json& config, auto&) {
    config["text"]["width"] = 16;  // the tensors are 8 wide
  });
  EXPECT_NE(model_error(contradicts).find("the config implies"), std::string::npos) << model_error(contradicts);

  const std::string bad_config = write_tiny_model("badconfig", [](nlohmann::json& config, auto&) {
    config["vision"]["patch_size"] = 3;  // 8 is not a multiple of 3
  });
  EXPECT_NE(model_error(bad_config).find("not a multiple of patch_size"), std::string::npos) << model_error(bad_config);

  const std::string no_heads = write_tiny_model("noheads", [](nlohmann::json& config, auto&) {
    config["text"].erase("heads");
  });
  EXPECT_NE(model_error(no_heads).find("invalid model config"), std::string::npos) << model_error(no_heads);

  // A plain safetensors file that is not a clip model.
  TensorWriter plain;
  const float one = 1.0f;
  plain.add("x", DType::F32, {1}, &one);
  const auto plain_path = clip_test::scratch_dir("plain") / "plain.safetensors";
  plain.write(plain_path.string());
  EXPECT_NE(model_error(plain_path.string()).find("not a clip model file"), std::string::npos);
}

TEST(ModelFile, TruncatedOrCorruptedCopiesFailCleanly) {
  const std::string path = write_tiny_model("fuzz-source", [](auto&, auto&) {});
  std::ifstream in(path, std::ios::binary);
  const std::string original((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto dir = clip_test::scratch_dir("fuzz");
  const std::string damaged = (dir / "damaged.safetensors").string();
  // Every truncation is an error (the data section or the header is cut short).
  for (std::size_t cut = 0; cut < original.size(); cut += 1 + cut / 16) {
    clip_test::write_bytes(damaged, original.substr(0, cut));
    EXPECT_THROW(clip::ModelFile{damaged}, clip::Error) << "truncated at " << cut;
  }
  // Random byte changes anywhere in the header: an error or a valid file, never a crash.
  std::mt19937 random(1234);
  const std::size_t header_end = 8 + static_cast<unsigned char>(original[0]) + 256u * static_cast<unsigned char>(original[1]);
  for (int trial = 0; trial < 500; ++trial) {
    std::string copy = original;
    for (int change = 0; change < 3; ++change)
      copy[random() % header_end] = static_cast<char>(random() % 256);
    clip_test::write_bytes(damaged, copy);
    try {
      clip::ModelFile model(damaged);
    } catch (const clip::Error&) {
    }
  }
}

}  // namespace
