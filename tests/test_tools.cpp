// The command-line programs, driven as a user drives them: clip-convert, clip-embed,
// clip-tokenize and clip-zero-shot against the reference data.

#include "test_support.hpp"

#include <clip/clip.hpp>
#include <clip/convert/convert.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

using clip_test::CommandResult;
using clip_test::quote;
using clip_test::run_command;

nlohmann::json read_json(const std::string& path) {
  std::ifstream file(path);
  return nlohmann::json::parse(file);
}

/// tiny-a converted from its Hugging Face folder, once per test binary run.
const std::string& tiny_model() {
  static const std::string path = [] {
    const auto dir = clip_test::scratch_dir("tools-model");
    const std::string file = (dir / "tiny-a.safetensors").string();
    clip::convert_checkpoint(clip_test::reference_dir() + "/tiny-a/hf").write(file);
    return file;
  }();
  return path;
}

bool is_jpeg(const std::string& file) { return file.size() > 4 && file.compare(file.size() - 4, 4, ".jpg") == 0; }

/// max |a - b| / max |b| over one vector.
double relative_error(const nlohmann::json& actual, const nlohmann::json& expected) {
  double max_diff = 0, max_ref = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(actual[i].get<double>() - expected[i].get<double>()));
    max_ref = std::max(max_ref, std::abs(expected[i].get<double>()));
  }
  return max_diff / max_ref;
}

TEST(Tools, ConvertInspectsAndRefusesBadInput) {
  CLIP_REFERENCE_OR_SKIP(hf, "tiny-a/hf");
  const auto dir = clip_test::scratch_dir("tools-convert");
  const std::string out = (dir / "tiny.safetensors").string();
  const CommandResult converted = run_command(std::string(CLIP_CONVERT_EXE) + " " + quote(hf) + " -o " + quote(out));
  ASSERT_EQ(converted.status, 0) << converted.err;
  const CommandResult inspected = run_command(std::string(CLIP_CONVERT_EXE) + " --inspect " + quote(out));
  EXPECT_EQ(inspected.status, 0) << inspected.err;
  EXPECT_NE(inspected.out.find("vision.blocks.1.attn.qkv.weight"), std::string::npos);
  EXPECT_NE(inspected.out.find("49408 tokens"), std::string::npos) << inspected.out;

  clip_test::write_bytes(dir / "bad.safetensors", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10));
  const CommandResult bad = run_command(std::string(CLIP_CONVERT_EXE) + " --inspect " + quote((dir / "bad.safetensors").string()));
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("exceeds the limit"), std::string::npos) << bad.err;

  // Writing over the input is refused and leaves the input as it was.
  const auto before = fs::file_size(out);
  const CommandResult over = run_command(std::string(CLIP_CONVERT_EXE) + " " + quote(out) + " --vocab " + quote(out) + " -o " + quote(out));
  EXPECT_NE(over.status, 0);
  EXPECT_NE(over.err.find("refusing to write over"), std::string::npos) << over.err;
  EXPECT_EQ(fs::file_size(out), before);
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << "partial file left: " << entry.path();
}

TEST(Tools, ConvertWritesQ8AndBenchReportsItsKernels) {
  const std::string demo = std::string(CLIP_SOURCE_DIR) + "/examples/models/clip-demo.safetensors";
  const auto dir = clip_test::scratch_dir("tools-q8");
  const std::string out = (dir / "demo-q8.safetensors").string();
  const CommandResult converted =
      run_command(std::string(CLIP_CONVERT_EXE) + " " + quote(demo) + " --dtype q8 -o " + quote(out));
  ASSERT_EQ(converted.status, 0) << converted.err;
  EXPECT_TRUE(clip::ModelFile(out).quantized());
  EXPECT_LT(fs::file_size(out), fs::file_size(demo) / 2);
  const CommandResult inspected = run_command(std::string(CLIP_CONVERT_EXE) + " --inspect " + quote(out) + " --json");
  ASSERT_EQ(inspected.status, 0) << inspected.err;
  const nlohmann::json report = nlohmann::json::parse(inspected.out);
  EXPECT_EQ(report["unused"], nlohmann::json::array()) << "the scale tensors are read with their matrices";

  const CommandResult bench = run_command(std::string(CLIP_BENCH_EXE) + " --model " + quote(out) +
                                          " --workloads W3 --repeat 1 --threads 1 --json");
  ASSERT_EQ(bench.status, 0) << bench.err;
  const nlohmann::json timing = nlohmann::json::parse(bench.out);
  const clip::Model<float> model(out);  // the same path selection as the tool's (CLIP_ISA)
  if (model.weights().q8_kernels() != nullptr)
    EXPECT_EQ(timing["q8"], model.weights().q8_kernels());
  else
    EXPECT_TRUE(timing["q8"].is_null());
  EXPECT_EQ(timing["isa"], clip::isa_name(model.weights().isa()));
}

TEST(Tools, EmbedReproducesTheGoldenFeaturesTokensAndLogits) {
  CLIP_REFERENCE_OR_SKIP(golden_path, "tiny-a/golden.json");
  const nlohmann::json golden = read_json(golden_path);
  const std::string dir = clip_test::reference_dir() + "/tiny-a/";
  const auto scratch = clip_test::scratch_dir("tools-embed");
  std::ofstream texts(scratch / "texts.jsonl");
  for (const auto& text : golden["texts"]) texts << text["text"].dump() << "\n";
  texts.close();
  // The golden tokens are clip.tokenize(truncate=True)'s.
  std::string command = std::string(CLIP_EMBED_EXE) + " --json --truncate --model " + quote(tiny_model()) + " --texts-jsonl " +
                        quote((scratch / "texts.jsonl").string());
  for (const auto& image : golden["images"]) command += " --image " + quote(dir + image["file"].get<std::string>());
  const CommandResult embedded = run_command(command);
  ASSERT_EQ(embedded.status, 0) << embedded.err;
  const nlohmann::json output = nlohmann::json::parse(embedded.out);
  EXPECT_EQ(output["embed_dim"], golden["embed_dim"]);
  EXPECT_NEAR(output["logit_scale"].get<double>(), golden["logit_scale"].get<double>(), 1e-4);

  // The encoder issue's float tolerance: max |a - b| <= 1e-4 * max |b| per vector. JPEG files
  // are decoded by stb_image rather than libjpeg, so their pixels (and features) differ slightly;
  // their parity is tested on the golden pixel values in the encoder tests instead.
  double worst = 0;
  for (std::size_t i = 0; i < golden["images"].size(); ++i) {
    const auto& expected = golden["images"][i];
    const auto& actual = output["images"][i];
    ASSERT_TRUE(actual.contains("features")) << actual.dump();
    if (is_jpeg(expected["file"])) continue;
    const double error = relative_error(actual["features"], expected["image_features"]);
    worst = std::max(worst, error);
    EXPECT_LE(error, 1e-4) << expected["file"];
  }
  for (std::size_t t = 0; t < golden["texts"].size(); ++t) {
    const auto& expected = golden["texts"][t];
    const auto& actual = output["texts"][t];
    EXPECT_EQ(actual["tokens"], expected["tokens"]) << expected["text"];
    const double error = relative_error(actual["features"], expected["text_features"]);
    worst = std::max(worst, error);
    EXPECT_LE(error, 1e-4) << expected["text"];
  }
  for (std::size_t i = 0; i < golden["images"].size(); ++i) {
    if (is_jpeg(golden["images"][i]["file"])) continue;
    const double error = relative_error(output["logits_per_image"][i], golden["logits_per_image"][i]);
    worst = std::max(worst, error);
    EXPECT_LE(error, 1e-4) << golden["images"][i]["file"];
  }
  std::cout << "[ clip-embed ] worst relative error vs golden.json: " << worst << "\n";
}

const std::string demo_model = std::string(CLIP_SOURCE_DIR) + "/examples/models/clip-demo.safetensors";
const std::string demo_images = std::string(CLIP_SOURCE_DIR) + "/examples/images/";

TEST(Tools, EmbedReportsBadItemsAndGoesOn) {
  const auto scratch = clip_test::scratch_dir("tools-embed-bad");
  clip_test::write_bytes(scratch / "broken.png", "\x89PNG\r\n\x1a\n broken");
  std::string long_text;
  for (int i = 0; i < 20; ++i) long_text += "word ";  // 20 tokens: more than the 16 of the demo model's context
  const CommandResult embedded = run_command(std::string(CLIP_EMBED_EXE) + " --model " + quote(demo_model) + " --image " +
                           quote((scratch / "broken.png").string()) + " " + quote(demo_images + "red_circle.png") +
                           " --text " + quote(long_text) + " --text ok --npy " + quote((scratch / "out").string()));
  EXPECT_EQ(embedded.status, 1) << embedded.err;
  const nlohmann::json index = read_json((scratch / "out.json").string());
  EXPECT_TRUE(index["images"][0].contains("error"));
  EXPECT_EQ(index["images"][1]["row"], 0);
  EXPECT_TRUE(index["texts"][0].contains("error"));
  EXPECT_EQ(index["texts"][1]["row"], 0);
  EXPECT_EQ(fs::file_size(scratch / "out.images.npy"), 128u + 64u * 4u);  // 128-byte header, one row of 64
}

TEST(Tools, TokenizeRawReproducesThePublicCorpus) {
  CLIP_REFERENCE_OR_SKIP(corpus, "tokenizer/public.jsonl");
  const std::string vocab = clip_test::reference_dir() + "/tokenizer/bpe_simple_vocab_16e6.txt.gz";
  const auto scratch = clip_test::scratch_dir("tools-tokenize");
  std::vector<nlohmann::json> expected;
  {
    std::ifstream in(corpus);
    std::ofstream texts(scratch / "texts.jsonl");
    for (std::string line; std::getline(in, line);) {
      expected.push_back(nlohmann::json::parse(line));
      texts << expected.back()["text"].dump() << "\n";
    }
  }
  const CommandResult tokenized = run_command(std::string(CLIP_TOKENIZE_EXE) + " --raw --jsonl --vocab " + quote(vocab) + " < " +
                            quote((scratch / "texts.jsonl").string()));
  ASSERT_EQ(tokenized.status, 0) << tokenized.err;
  std::istringstream lines(tokenized.out);
  std::size_t matched = 0, count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    ASSERT_LT(count, expected.size());
    if (nlohmann::json::parse(line) == expected[count]["ids"]) ++matched;
    else ADD_FAILURE() << "ids differ for " << expected[count]["text"].dump();
  }
  EXPECT_EQ(count, expected.size());
  std::cout << "[ clip-tokenize ] " << matched << "/" << expected.size() << " lines exact\n";
}

/// The golden zero-shot labels and template, run over the golden PNG images.
struct ZeroShotRun {
  std::string command;
  nlohmann::json golden;
};

ZeroShotRun zero_shot_command(const std::string& model, const std::string& extra) {
  const nlohmann::json golden = read_json(clip_test::reference_dir() + "/tiny-a/golden.json")["zeroshot"];
  std::string labels;
  for (const auto& label : golden["labels"]) labels += (labels.empty() ? "" : ",") + label.get<std::string>();
  std::string command = std::string(CLIP_ZERO_SHOT_EXE) + " --json --model " + quote(model) + " --labels " + quote(labels) +
                        " --template " + quote(golden["template"].get<std::string>()) + " " + extra;
  return {command, golden};
}

TEST(Tools, ZeroShotMatchesTheReferenceAndCachesLabels) {
  CLIP_REFERENCE_OR_SKIP(golden_path, "tiny-a/golden.json");
  const std::string dir = clip_test::reference_dir() + "/tiny-a/";
  const auto scratch = clip_test::scratch_dir("tools-zero-shot");
  const std::string cache = (scratch / "labels.cache").string();
  auto [command, golden] = zero_shot_command(tiny_model(), "--cache " + quote(cache));
  std::vector<nlohmann::json> expected;
  for (const auto& image : golden["images"]) {
    if (is_jpeg(image["file"])) continue;
    command += " --image " + quote(dir + image["file"].get<std::string>());
    expected.push_back(image);
  }
  const CommandResult first = run_command(command);
  ASSERT_EQ(first.status, 0) << first.err;
  const nlohmann::json output = nlohmann::json::parse(first.out);
  ASSERT_EQ(output["images"].size(), expected.size());
  const auto& labels = golden["labels"];
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& predictions = output["images"][i]["predictions"];
    ASSERT_EQ(predictions.size(), labels.size());
    double max_logit = 0;
    for (const auto& logit : expected[i]["logits"]) max_logit = std::max(max_logit, std::abs(logit.get<double>()));
    for (std::size_t rank = 0; rank < predictions.size(); ++rank) {
      const std::string label = predictions[rank]["label"];
      const std::size_t l = std::find(labels.begin(), labels.end(), label) - labels.begin();
      ASSERT_LT(l, labels.size());
      // Probabilities are in [0, 1]; 1e-5 absolute is float rounding through two encoders.
      EXPECT_NEAR(predictions[rank]["probability"].get<double>(), expected[i]["probs"][l].get<double>(), 1e-5);
      // The encoder tolerance, 1e-4 of the largest logit of the row.
      EXPECT_NEAR(predictions[rank]["logit"].get<double>(), expected[i]["logits"][l].get<double>(), 1e-4 * max_logit);
      if (rank > 0) {
        EXPECT_GE(predictions[rank - 1]["probability"], predictions[rank]["probability"]);
      }
    }
  }
  ASSERT_TRUE(fs::exists(cache));

  // The same numbers straight from the library's encoders, without the classifier.
  const clip::Model<float> model(tiny_model());
  std::vector<std::string> prompts;
  for (const auto& label : labels) prompts.push_back("a photo of a " + label.get<std::string>() + ".");
  const auto pixels = clip::preprocess_images({clip::decode_image_file(dir + expected[0]["file"].get<std::string>())},
                                              clip::preprocess_options(model.config()));
  const auto direct = clip::logits(model.encode_images(pixels), model.encode_texts(model.tokenizer().tokenize(prompts)),
                                   model.logit_scale());
  const auto direct_probabilities = clip::softmax_rows(direct.per_image);
  for (const auto& prediction : output["images"][0]["predictions"]) {
    const auto l = static_cast<Eigen::Index>(std::find(labels.begin(), labels.end(), prediction["label"]) - labels.begin());
    EXPECT_NEAR(prediction["probability"].get<double>(), direct_probabilities(0, l), 1e-6);
    EXPECT_NEAR(prediction["logit"].get<double>(), direct.per_image(0, l), 1e-5);
  }

  // The second run reuses the cache silently and prints the same.
  const CommandResult second = run_command(command);
  EXPECT_EQ(second.status, 0);
  EXPECT_EQ(second.out, first.out);
  EXPECT_EQ(second.err.find("ignoring cache"), std::string::npos) << second.err;

  // Another label list, template or model: the cache is ignored with a notice, never misused.
  const std::string one_image = " --image " + quote(dir + "gradient_64x64.png");
  const CommandResult other_labels = run_command(std::string(CLIP_ZERO_SHOT_EXE) + " --model " + quote(tiny_model()) +
                               " --labels cat,dog --cache " + quote(cache) + one_image);
  EXPECT_EQ(other_labels.status, 0);
  EXPECT_NE(other_labels.err.find("ignoring cache"), std::string::npos) << other_labels.err;
  const CommandResult other_template = run_command(command + " --template " + quote("a drawing of a {}."));
  EXPECT_NE(other_template.err.find("ignoring cache"), std::string::npos) << other_template.err;
  clip::ConvertOptions f16;
  f16.dtype = clip::DType::F16;
  const std::string other_model = (scratch / "f16.safetensors").string();
  clip::convert_checkpoint(dir + "hf", f16).write(other_model);
  const CommandResult different_model = run_command(zero_shot_command(other_model, "--cache " + quote(cache) + one_image).command);
  EXPECT_NE(different_model.err.find("ignoring cache"), std::string::npos) << different_model.err;
}

TEST(Tools, ZeroShotSkipsACorruptFileAndSaysSo) {
  const auto scratch = clip_test::scratch_dir("tools-zero-shot-dir");
  fs::copy_file(demo_images + "red_circle.png", scratch / "a.png");
  fs::copy_file(demo_images + "blue_square.png", scratch / "b.png");
  clip_test::write_bytes(scratch / "c.jpg", std::string("\xff\xd8\xff\xe0 not really a jpeg", 22));
  const CommandResult result = run_command(std::string(CLIP_ZERO_SHOT_EXE) + " --json --top-k 2 --model " + quote(demo_model) +
                         " --labels 'red circle,blue square,green star' --input " + quote(scratch.string()));
  EXPECT_EQ(result.status, 1);
  EXPECT_NE(result.err.find("c.jpg"), std::string::npos) << result.err;
  const nlohmann::json output = nlohmann::json::parse(result.out);
  ASSERT_EQ(output["images"].size(), 3u);  // in input order, the corrupt file with its error
  EXPECT_EQ(output["images"][0]["predictions"].size(), 2u);
  EXPECT_EQ(output["images"][1]["predictions"].size(), 2u);
  EXPECT_NE(output["images"][2]["path"].get<std::string>().find("c.jpg"), std::string::npos);
  EXPECT_TRUE(output["images"][2].contains("error"));
}

}  // namespace
