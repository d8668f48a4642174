// Concurrent use of one clip::Model through the batch pipeline: N threads (N = 1..8), each with
// its own EmbeddingPipeline over the same shared Model, give bit-identical results to the same
// pipeline run alone. A pipeline is one run's plan (run() is not documented as reentrant), so the
// honest concurrent use is N pipelines, which is what clip-embed-like hosts do per request. Each
// run itself has decode threads and the encoder's pool threads; under the thread sanitizer (CMake
// preset `tsan`) this checks the pipeline's queues, the shared tokenizer cache and the shared pool
// together. Part of clip_concurrency_tests (label `concurrency`).

#include <clip/clip.hpp>
#include <clip/pipeline/embedding_pipeline.hpp>

#include <gtest/gtest.h>

#include "concurrency_support.hpp"

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace {

const std::string source_dir = CLIP_SOURCE_DIR;

using Batches = std::vector<std::vector<clip::PipelineResult>>;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  // A failed item has no features: an empty vector's data() may be null, which memcmp must not get.
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0);
}

/// Every batch the same size, every result the same key, caption, error and feature bits.
bool same_batches(const Batches& a, const Batches& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return false;
    for (std::size_t j = 0; j < a[i].size(); ++j) {
      const clip::PipelineResult &x = a[i][j], &y = b[i][j];
      if (x.key != y.key || x.caption != y.caption || x.error != y.error || !same_bits(x.image_features, y.image_features) ||
          !same_bits(x.caption_features, y.caption_features))
        return false;
    }
  }
  return true;
}

using clip_test::on_threads;

class PipelineConcurrency : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = source_dir + "/examples/models/clip-demo.safetensors";
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    model_ = new clip::Model<float>(path);
    // 12 items: images read from files and from bytes, captions on some, a corrupt image and an
    // item that failed before decoding (each fails alone; the rest of its batch goes on).
    const char* captions[] = {"a photo of a blue square", "a red circle", "a drawing of a green triangle on white"};
    for (int i = 0; i < 9; ++i) {
      char name[16];
      std::snprintf(name, sizeof name, "%03d.png", i);
      clip::PipelineItem item;
      item.key = "img" + std::to_string(i);
      item.path = source_dir + "/tests/data/demo/" + name;
      if (i % 3 != 2) item.caption = captions[i % 3];
      if (i == 4) {  // the same image given as bytes
        std::ifstream file(item.path, std::ios::binary);
        item.encoded.assign(std::istreambuf_iterator<char>(file), {});
        ASSERT_FALSE(item.encoded.empty()) << item.path;
      }
      items_.push_back(item);
    }
    clip::PipelineItem corrupt;
    corrupt.key = "corrupt";
    corrupt.encoded = {'n', 'o', 'p', 'e'};
    corrupt.caption = "never embedded";
    items_.insert(items_.begin() + 2, corrupt);
    clip::PipelineItem failed;
    failed.key = "failed-before";
    failed.error = "reader said no";
    items_.insert(items_.begin() + 6, failed);
    clip::PipelineItem last;
    last.key = "last";
    last.path = source_dir + "/tests/data/demo/009.png";
    last.caption = "yellow star";
    items_.push_back(last);
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }

  /// One whole run of a pipeline of its own over the shared model.
  static Batches run(const clip::PipelineOptions& options) {
    clip::EmbeddingPipeline<float> pipeline(*model_, options);
    std::size_t next = 0;
    Batches batches;
    pipeline.run(
        [&](clip::PipelineItem& item) {
          if (next == items_.size()) return false;
          item = items_[next++];
          return true;
        },
        [&](std::vector<clip::PipelineResult>& batch) { batches.push_back(batch); });
    return batches;
  }

  static clip::Model<float>* model_;
  static std::vector<clip::PipelineItem> items_;
};

clip::Model<float>* PipelineConcurrency::model_ = nullptr;
std::vector<clip::PipelineItem> PipelineConcurrency::items_;

TEST_F(PipelineConcurrency, PipelinesSharingOneModelMatchSerialRunsBitForBit) {
  // Two plans, alternated between threads so that different batch shapes overlap.
  std::vector<clip::PipelineOptions> plans(2);
  plans[0].batch_size = 4;
  plans[0].decode_threads = 2;
  plans[1].batch_size = 5;
  plans[1].decode_threads = 1;
  plans[1].queued_batches = 1;
  plans[1].normalize = true;

  // Serial: each plan run alone, its results checked against the model called directly on the
  // same batch compositions (the pipeline's promise: fixed batches give the same bits).
  std::vector<Batches> serial;
  const clip::PreprocessOptions preprocess = clip::preprocess_options(model_->config());
  const int context = model_->config().text.context_length;
  for (const clip::PipelineOptions& plan : plans) {
    serial.push_back(run(plan));
    const Batches& batches = serial.back();
    ASSERT_EQ(batches.size(), (items_.size() + plan.batch_size - 1) / plan.batch_size);
    std::size_t index = 0;
    for (const auto& batch : batches) {
      std::vector<clip::Image> images;
      std::vector<std::string> texts;
      std::vector<std::size_t> image_rows, text_rows;
      for (std::size_t b = 0; b < batch.size(); ++b) {
        const clip::PipelineItem& item = items_[index + b];
        ASSERT_EQ(batch[b].key, item.key);
        if (item.key == "corrupt" || item.key == "failed-before") {
          EXPECT_FALSE(batch[b].ok());
          EXPECT_TRUE(batch[b].image_features.empty());
          EXPECT_TRUE(batch[b].caption_features.empty());
          continue;
        }
        ASSERT_TRUE(batch[b].ok()) << item.key << ": " << batch[b].error;
        images.push_back(clip::decode_image_file(item.path));
        image_rows.push_back(b);
        if (item.caption) {
          texts.push_back(*item.caption);
          text_rows.push_back(b);
        } else {
          EXPECT_TRUE(batch[b].caption_features.empty());
        }
      }
      clip::RowMatrix<float> direct_images = model_->encode_images(clip::preprocess_images(images, preprocess));
      clip::RowMatrix<float> direct_texts =
          texts.empty() ? clip::RowMatrix<float>() : model_->encode_texts(model_->tokenizer().tokenize(texts, context, true));
      if (plan.normalize) {
        direct_images.rowwise().normalize();
        if (direct_texts.size()) direct_texts.rowwise().normalize();
      }
      for (std::size_t r = 0; r < image_rows.size(); ++r) {
        const std::vector<float> want(direct_images.row(r).data(), direct_images.row(r).data() + direct_images.cols());
        EXPECT_TRUE(same_bits(batch[image_rows[r]].image_features, want)) << batch[image_rows[r]].key;
      }
      for (std::size_t r = 0; r < text_rows.size(); ++r) {
        const std::vector<float> want(direct_texts.row(r).data(), direct_texts.row(r).data() + direct_texts.cols());
        EXPECT_TRUE(same_bits(batch[text_rows[r]].caption_features, want)) << batch[text_rows[r]].key;
      }
      index += batch.size();
    }
  }

  for (int threads = 1; threads <= 8; ++threads) {
    std::vector<int> mismatches(static_cast<std::size_t>(threads), 0);
    on_threads(threads, [&](int t) {
      const std::size_t plan = static_cast<std::size_t>(t) % plans.size();
      mismatches[static_cast<std::size_t>(t)] += !same_batches(run(plans[plan]), serial[plan]);
    });
    for (int t = 0; t < threads; ++t)
      EXPECT_EQ(mismatches[static_cast<std::size_t>(t)], 0) << "thread " << t << " of " << threads;
  }
}

}  // namespace
