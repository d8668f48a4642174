// Concurrent use of one clip::Model: N threads (N = 1..8) sharing it give bit-identical results to
// serial calls, for encode_images, encode_texts, the tokenizer (whose word cache is shared) and
// preprocessing, and the thread pool hands out every part exactly once when several threads call
// it at the same time. Built into its own program so the thread-sanitizer run (CMake preset
// `tsan`) builds nothing else; the bundled demo model keeps it fast under TSan.

#define CLIP_STB_IMAGE_IMPLEMENTATION
#include <clip/clip.hpp>

#include <gtest/gtest.h>

#include "concurrency_support.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace {

const std::string source_dir = CLIP_SOURCE_DIR;

template <typename Matrix>
bool bit_identical(const Matrix& a, const Matrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(typename Matrix::Scalar) * static_cast<std::size_t>(a.size())) == 0;
}

using clip_test::on_threads;

class Concurrency : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = source_dir + "/examples/models/clip-demo.safetensors";
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    model_ = new clip::Model<float>(path);
    for (const char* name : {"blue_square", "green_triangle", "purple_cross", "red_circle", "yellow_star"})
      images_.push_back(clip::decode_image_file(source_dir + "/examples/images/" + name + ".png"));
    // The demo model reads 16 tokens of a 602-token vocabulary: long texts are truncated.
    texts_ = {"a photo of a blue square", "a red circle", "a drawing of a green triangle on white",
              "yellow star", "a purple cross", "something else entirely, with punctuation!"};
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }

  static clip::Model<float>* model_;
  static std::vector<clip::Image> images_;
  static std::vector<std::string> texts_;
};

clip::Model<float>* Concurrency::model_ = nullptr;
std::vector<clip::Image> Concurrency::images_;
std::vector<std::string> Concurrency::texts_;

TEST_F(Concurrency, EncodesMatchSerialCallsBitForBit) {
  const clip::PreprocessOptions preprocess = clip::preprocess_options(model_->config());
  const int context = model_->config().text.context_length;
  // Serial results, one input at a time and as one batch, with the pool's default threads.
  std::vector<clip::RowMatrix<float>> pixels, image_features, text_features;
  std::vector<clip::TokenMatrix> tokens;
  for (const clip::Image& image : images_) {
    pixels.push_back(clip::preprocess_images({image}, preprocess));
    image_features.push_back(model_->encode_images(pixels.back()));
  }
  for (const std::string& text : texts_) {
    tokens.push_back(model_->tokenizer().tokenize({text}, context, true));
    text_features.push_back(model_->encode_texts(tokens.back()));
  }
  const clip::RowMatrix<float> all_pixels = clip::preprocess_images(images_, preprocess);
  const clip::RowMatrix<float> all_images = model_->encode_images(all_pixels);
  const clip::TokenMatrix all_tokens = model_->tokenizer().tokenize(texts_, context, true);
  const clip::RowMatrix<float> all_texts = model_->encode_texts(all_tokens);

  for (int threads = 1; threads <= 8; ++threads) {
    std::vector<int> mismatches(static_cast<std::size_t>(threads), 0);
    on_threads(threads, [&](int t) {
      int& wrong = mismatches[static_cast<std::size_t>(t)];
      for (int round = 0; round < 2; ++round) {
        // Each thread starts at a different input, so different calls overlap.
        const std::size_t i = static_cast<std::size_t>(t + round) % images_.size();
        const clip::RowMatrix<float> own_pixels = clip::preprocess_images({images_[i]}, preprocess);
        wrong += !bit_identical(own_pixels, pixels[i]);
        wrong += !bit_identical(model_->encode_images(own_pixels), image_features[i]);
        const std::size_t j = static_cast<std::size_t>(t + round) % texts_.size();
        const clip::TokenMatrix own_tokens = model_->tokenizer().tokenize({texts_[j]}, context, true);
        wrong += own_tokens != tokens[j];
        wrong += !bit_identical(model_->encode_texts(own_tokens), text_features[j]);
      }
      if (t % 2 == 0) {
        wrong += !bit_identical(model_->encode_images(all_pixels), all_images);
        wrong += model_->tokenizer().tokenize(texts_, context, true) != all_tokens;
        wrong += !bit_identical(model_->encode_texts(all_tokens), all_texts);
      }
    });
    for (int t = 0; t < threads; ++t)
      EXPECT_EQ(mismatches[static_cast<std::size_t>(t)], 0) << "thread " << t << " of " << threads;
  }
}

TEST_F(Concurrency, ThreadPoolRunsEveryPartOnceWhileSharedByCallers) {
  for (int threads = 1; threads <= 8; ++threads) {
    std::vector<long> sums(static_cast<std::size_t>(threads), 0);
    on_threads(threads, [&](int t) {
      for (int round = 0; round < 20; ++round) {
        const int parts = 1 + (t * 7 + round) % 13;
        std::vector<std::atomic<int>> runs(static_cast<std::size_t>(parts));
        clip::detail::parallel_for(parts, clip::num_threads(), [&](int part) { runs[static_cast<std::size_t>(part)]++; });
        for (int part = 0; part < parts; ++part) sums[static_cast<std::size_t>(t)] += runs[static_cast<std::size_t>(part)].load();
        sums[static_cast<std::size_t>(t)] -= parts;  // each part exactly once leaves 0
      }
    });
    for (int t = 0; t < threads; ++t) EXPECT_EQ(sums[static_cast<std::size_t>(t)], 0) << "thread " << t;
  }
}

TEST_F(Concurrency, ExceptionsFromPartsReachTheirOwnCaller) {
  on_threads(4, [&](int t) {
    try {
      clip::detail::parallel_for(8, clip::num_threads(), [&](int part) {
        if (part == t) throw clip::Error("part " + std::to_string(part));
      });
      ADD_FAILURE() << "thread " << t << ": no exception";
    } catch (const clip::Error& error) {
      EXPECT_EQ(std::string(error.what()), "part " + std::to_string(t));
    }
  });
}

}  // namespace
