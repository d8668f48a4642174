// The bundled demo model end to end: the C++ pipeline (decode, preprocess, tokenize, encode,
// classify) agrees with every prediction PyTorch recorded on the held-out renders.

#include <clip/clip.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace {

const std::string source_dir = CLIP_SOURCE_DIR;

TEST(DemoModel, AgreesWithPyTorchOnTheHeldOutSet) {
  const std::string model_path = source_dir + "/examples/models/clip-demo.safetensors";
  const std::string data_dir = source_dir + "/tests/data/demo";
  ASSERT_TRUE(std::filesystem::exists(model_path)) << model_path;
  std::ifstream file(data_dir + "/predictions.json");
  ASSERT_TRUE(file) << data_dir << "/predictions.json";
  const nlohmann::json recorded = nlohmann::json::parse(file);

  const clip::Model<float> model(model_path);
  const clip::ZeroShotClassifier classifier(model, recorded["labels"].get<std::vector<std::string>>(),
                                            recorded["templates"].get<std::vector<std::string>>());
  clip::PreprocessOptions preprocess = clip::preprocess_options(model.config());
  EXPECT_EQ(recorded["mean"].get<std::vector<float>>(), std::vector<float>(preprocess.mean.begin(), preprocess.mean.end()));
  EXPECT_EQ(recorded["std"].get<std::vector<float>>(), std::vector<float>(preprocess.std.begin(), preprocess.std.end()));

  std::vector<clip::Image> images;
  for (const auto& image : recorded["images"]) images.push_back(clip::decode_image_file(data_dir + "/" + image["file"].get<std::string>()));
  const auto ranked = classifier.classify(model.encode_images(clip::preprocess_images(images, preprocess)));

  std::size_t agree = 0, correct = 0;
  double worst = 0;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const auto& expected = recorded["images"][i];
    const std::string predicted = classifier.labels()[ranked[i].front().label_index];
    agree += predicted == expected["predicted"];
    correct += predicted == expected["label"];
    EXPECT_EQ(predicted, expected["predicted"]) << expected["file"];
    for (const clip::Prediction& p : ranked[i]) {
      const double difference = std::abs(p.probability - expected["probabilities"][p.label_index].get<double>());
      worst = std::max(worst, difference);
      // The bound: both sides compute in float32, so 1e-4 leaves room for the different
      // summation orders of two BLAS libraries, and a wrong step moves probabilities by far more.
      EXPECT_LE(difference, 1e-4) << expected["file"] << " " << classifier.labels()[p.label_index];
    }
  }
  std::cout << "[ demo model ] " << agree << "/" << images.size() << " predictions agree with PyTorch, top-1 accuracy "
            << correct << "/" << images.size() << ", worst probability difference " << worst << "\n";
}

}  // namespace
