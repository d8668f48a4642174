// The pipelined batch path and the sharded output: same features as embedding each image
// alone, input order, per-item errors, whole-shard commits, and bad shards.

#include "tar_builder.hpp"
#include "test_support.hpp"

#include <clip/formats/npy.hpp>
#include <clip/pipeline/embedding_pipeline.hpp>
#include <clip/pipeline/inputs.hpp>
#include <clip/pipeline/sharded_output.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using clip_test::TarBuilder;

const std::string source_dir = CLIP_SOURCE_DIR;

const clip::Model<float>& demo_model() {
  static const clip::Model<float> model(source_dir + "/examples/models/clip-demo.safetensors");
  return model;
}

std::string demo_image(int i) {
  char name[16];
  std::snprintf(name, sizeof name, "%03d.png", i);
  return source_dir + "/tests/data/demo/" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

/// The features of one image embedded alone (a batch of one), as clip-embed --image does.
std::vector<float> embed_alone(const std::string& path) {
  const clip::Model<float>& model = demo_model();
  const clip::RowMatrix<float> pixels =
      clip::preprocess_images({clip::decode_image_file(path)}, clip::preprocess_options(model.config()));
  const clip::RowMatrix<float> features = model.encode_images(pixels);
  return std::vector<float>(features.data(), features.data() + features.size());
}

double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

/// A PNG header claiming width x height (8-bit gray) with a one-byte IDAT: a decompression bomb.
std::string png_header(std::uint32_t width, std::uint32_t height) {
  std::string png = std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  for (std::uint32_t v : {width, height})
    for (int shift = 24; shift >= 0; shift -= 8) png.push_back(static_cast<char>(v >> shift));
  png += std::string("\x08\0\0\0\0\0\0\0\0", 9);
  png += std::string("\0\0\0\x01IDATx\0\0\0\0", 13);
  return png;
}

/// A decompression bomb refused for its size before decoding (DecodeOptions::max_pixels).
bool is_size_refusal(const std::string& error) { return error.find("exceeds the limit") != std::string::npos; }

TEST(EmbeddingPipeline, KeepsOrderAndErrorsAndMatchesBatchesAndSingleImages) {
  const clip::Model<float>& model = demo_model();
  // 23 items, batch 5: good images, a corrupt one, one failed before decoding, a bomb.
  std::vector<clip::PipelineItem> items;
  for (int i = 0; i < 20; ++i) items.push_back({"img" + std::to_string(i), demo_image(i), {}, {}, {}});
  items.insert(items.begin() + 3, clip::PipelineItem{"corrupt", "", {'n', 'o', 'p', 'e'}, {}, {}});
  items.insert(items.begin() + 7, clip::PipelineItem{"failed-before", "", {}, {}, "reader said no"});
  const std::string bomb = png_header(100000, 100000);
  items.insert(items.begin() + 12, clip::PipelineItem{"bomb", "", std::vector<std::uint8_t>(bomb.begin(), bomb.end()), {}, {}});

  for (int decode_threads : {1, 3}) {
    clip::PipelineOptions options;
    options.batch_size = 5;
    options.decode_threads = decode_threads;
    options.queued_batches = 2;
    clip::EmbeddingPipeline<float> pipeline(model, options);
    std::size_t next = 0;
    std::vector<std::vector<clip::PipelineResult>> batches;
    pipeline.run(
        [&](clip::PipelineItem& item) {
          if (next == items.size()) return false;
          item = items[next++];
          return true;
        },
        [&](std::vector<clip::PipelineResult>& batch) { batches.push_back(batch); });

    ASSERT_EQ(batches.size(), 5u);  // 5 + 5 + 5 + 5 + 3
    std::size_t index = 0;
    for (const auto& batch : batches) {
      EXPECT_EQ(batch.size(), std::min<std::size_t>(5, items.size() - index));
      // The same batch composition encoded directly: bit-identical features.
      std::vector<clip::Image> images;
      std::vector<std::size_t> rows;
      for (std::size_t b = 0; b < batch.size(); ++b) {
        const clip::PipelineItem& item = items[index + b];
        const clip::PipelineResult& result = batch[b];
        EXPECT_EQ(result.key, item.key);
        if (item.key == "corrupt" || item.key == "failed-before" || item.key == "bomb") {
          EXPECT_FALSE(result.ok()) << item.key;
          EXPECT_TRUE(result.image_features.empty());
          if (item.key == "bomb") {
            EXPECT_TRUE(is_size_refusal(result.error)) << result.error;
          }
          if (item.key == "failed-before") {
            EXPECT_EQ(result.error, "reader said no");
          }
          continue;
        }
        ASSERT_TRUE(result.ok()) << item.key << ": " << result.error;
        images.push_back(clip::decode_image_file(item.path));
        rows.push_back(b);
        // Alone: the encoder may split one image's work differently from a batch's.
        EXPECT_LE(relative_difference(result.image_features, embed_alone(item.path)), 1e-6) << item.key;
      }
      const clip::RowMatrix<float> direct =
          model.encode_images(clip::preprocess_images(images, clip::preprocess_options(model.config())));
      for (std::size_t r = 0; r < rows.size(); ++r) {
        const std::vector<float> want(direct.row(r).data(), direct.row(r).data() + direct.cols());
        EXPECT_EQ(batch[rows[r]].image_features, want) << batch[rows[r]].key;
      }
      index += batch.size();
    }
  }
}

TEST(EmbeddingPipeline, SourceErrorEndsTheInputAfterItsItems) {
  clip::PipelineOptions options;
  options.batch_size = 4;
  clip::EmbeddingPipeline<float> pipeline(demo_model(), options);
  int next = 0;
  std::size_t delivered = 0;
  EXPECT_THROW(pipeline.run(
                   [&](clip::PipelineItem& item) {
                     if (next == 6) throw clip::Error("shard broke");
                     item.key = std::to_string(next);
                     item.path = demo_image(next++);
                     return true;
                   },
                   [&](std::vector<clip::PipelineResult>& batch) { delivered += batch.size(); }),
               clip::Error);
  EXPECT_EQ(delivered, 6u);
  // A failing sink stops the pipeline (and the decoders) and its error comes out.
  next = 0;
  EXPECT_THROW(pipeline.run(
                   [&](clip::PipelineItem& item) {
                     item.key = std::to_string(next);
                     item.path = demo_image(next++ % 200);
                     return true;  // endless source
                   },
                   [&](std::vector<clip::PipelineResult>&) { throw clip::Error("disk full"); }),
               clip::Error);
}

// ----------------------------------------------------------------------------------------------

std::vector<nlohmann::json> jsonl(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream file(path);
  for (std::string line; std::getline(file, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

std::vector<float> npy_row(const std::string& path, std::size_t row) {
  const clip::NpyFile view(path);
  const float* data = view.data<float>();
  return std::vector<float>(data + row * view.cols(), data + (row + 1) * view.cols());
}

TEST(ShardedOutput, TarShardGivesEachImagesOwnFeaturesAndReportsBadSamples) {
  const auto dir = clip_test::scratch_dir("sharded-tar");
  TarBuilder tar;
  tar.file("s/000.png", read_file(demo_image(0))).file("s/000.txt", "a red circle")
      .file("s/001.png", read_file(demo_image(1)))
      .file("s/002.png", "corrupt bytes").file("s/002.txt", "caption of a corrupt image")
      .file("s/003.txt", "a caption without an image")
      .file("s/004.png", png_header(100000, 100000))
      .file("s/000.png", read_file(demo_image(2)))  // duplicate key
      .file("s/005.png", read_file(demo_image(5))).file("s/005.txt", "five")
      .end();
  tar.write((dir / "shard-a.tar").string());

  clip::PipelineOptions options;
  options.batch_size = 3;
  clip::EmbeddingPipeline<float> pipeline(demo_model(), options);
  const auto shards = clip::plan_shards((dir / "shard-a.tar").string(), 100);
  ASSERT_EQ(shards.size(), 1u);
  const std::string out = (dir / "out").string();
  EXPECT_FALSE(clip::shard_finished(out, "shard-a"));
  const clip::ShardReport report = clip::embed_shard(pipeline, shards[0], out, 64);
  EXPECT_TRUE(report.committed);
  EXPECT_EQ(report.rows, 3u);
  EXPECT_EQ(report.errors.size(), 4u);
  EXPECT_TRUE(clip::shard_finished(out, "shard-a"));

  const clip::ShardPaths paths = clip::shard_paths(out, "shard-a");
  const auto lines = jsonl(paths.metadata);
  ASSERT_EQ(lines.size(), 7u);  // 3 rows, then 4 errors
  EXPECT_EQ(lines[0], (nlohmann::json{{"key", "s/000"}, {"caption", "a red circle"}}));
  EXPECT_EQ(lines[1], (nlohmann::json{{"key", "s/001"}, {"caption", nullptr}}));
  EXPECT_EQ(lines[2], (nlohmann::json{{"key", "s/005"}, {"caption", "five"}}));
  EXPECT_EQ(lines[3]["key"], "s/002");
  EXPECT_EQ(lines[4]["key"], "s/003");
  EXPECT_NE(lines[4]["error"].get<std::string>().find("caption without an image"), std::string::npos);
  EXPECT_EQ(lines[5]["key"], "s/004");
  EXPECT_TRUE(is_size_refusal(lines[5]["error"].get<std::string>())) << lines[5];
  EXPECT_EQ(lines[6]["key"], "s/000");
  EXPECT_NE(lines[6]["error"].get<std::string>().find("duplicate key"), std::string::npos);

  const clip::NpyFile images(paths.image_embeddings);
  EXPECT_EQ(images.rows(), 3u);
  EXPECT_EQ(images.cols(), 64u);
  const int sources[] = {0, 1, 5};
  for (std::size_t row = 0; row < 3; ++row)
    EXPECT_LE(relative_difference(npy_row(paths.image_embeddings, row), embed_alone(demo_image(sources[row]))), 1e-6)
        << row;
  // Captions: row 1 has none (zeros); the others equal encode_texts of the caption.
  const clip::Model<float>& model = demo_model();
  const clip::NpyFile texts(paths.text_embeddings);
  EXPECT_EQ(texts.rows(), 3u);
  const auto caption = [&](const std::string& text) {
    const clip::RowMatrix<float> f =
        model.encode_texts(model.tokenizer().tokenize({text}, model.config().text.context_length, true));
    return std::vector<float>(f.data(), f.data() + f.size());
  };
  EXPECT_LE(relative_difference(npy_row(paths.text_embeddings, 0), caption("a red circle")), 1e-6);
  EXPECT_EQ(npy_row(paths.text_embeddings, 1), std::vector<float>(64, 0.0f));
  EXPECT_LE(relative_difference(npy_row(paths.text_embeddings, 2), caption("five")), 1e-6);

  // Nothing but the three files.
  std::size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(out)) files += entry.is_regular_file();
  EXPECT_EQ(files, 3u);
}

TEST(ShardedOutput, TruncatedTarCommitsWhatCameBeforeAndSaysSo) {
  const auto dir = clip_test::scratch_dir("sharded-truncated");
  TarBuilder tar;
  tar.file("000.png", read_file(demo_image(0))).file("001.png", read_file(demo_image(1)))
      .truncated_file("002.png", 900, read_file(demo_image(2)).substr(0, 100));
  tar.write((dir / "cut.tar").string());
  clip::EmbeddingPipeline<float> pipeline(demo_model());
  const std::string out = (dir / "out").string();
  const clip::ShardReport report = clip::embed_shard(pipeline, clip::plan_shards((dir / "cut.tar").string(), 1)[0], out, 64);
  EXPECT_EQ(report.rows, 2u);
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_NE(report.errors[0].find("truncated"), std::string::npos) << report.errors[0];
  const auto lines = jsonl(clip::shard_paths(out, "cut").metadata);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2]["shard"], "cut");
  EXPECT_FALSE(fs::exists(clip::shard_paths(out, "cut").text_embeddings));  // no captions
}

TEST(ShardedOutput, UnreadableShardThrowsAndLeavesNothing) {
  const auto dir = clip_test::scratch_dir("sharded-unreadable");
  clip::EmbeddingPipeline<float> pipeline(demo_model());
  const std::string out = (dir / "out").string();
  clip::ShardInput missing;
  missing.name = "missing";
  missing.tar_path = (dir / "missing.tar").string();
  EXPECT_THROW(clip::embed_shard(pipeline, missing, out, 64), clip::Error);
  clip_test::write_bytes(dir / "garbage.tar", std::string(4096, 'g'));
  clip::ShardInput garbage{"garbage", (dir / "garbage.tar").string(), {}};
  EXPECT_THROW(clip::embed_shard(pipeline, garbage, out, 64), clip::Error);
  EXPECT_FALSE(fs::exists(out) && !fs::is_empty(out));
}

TEST(ShardedOutput, FullDiskLeavesNoHalfShard) {
  const auto dir = clip_test::scratch_dir("sharded-full-disk");
  const fs::path mount_point = dir / "small";
  fs::create_directories(mount_point);
  if (::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=16k") != 0)
    GTEST_SKIP() << "cannot mount a small tmpfs (needs root): " << std::strerror(errno);
  struct Unmount {
    fs::path path;
    ~Unmount() { ::umount(path.c_str()); }
  } unmount{mount_point};
  // 60 images x 64 floats = 15 KiB of embeddings plus metadata: more than the 16 KiB disk
  // holds once the folder entries are counted.
  std::vector<clip::FileItem> files;
  for (int i = 0; i < 60; ++i) files.push_back({"k" + std::to_string(i), demo_image(i), ""});
  clip::ShardInput shard{"big", "", files};
  clip::EmbeddingPipeline<float> pipeline(demo_model());
  const std::string out = (mount_point / "out").string();
  try {
    clip::embed_shard(pipeline, shard, out, 64);
    ADD_FAILURE() << "a full disk went unnoticed";
  } catch (const clip::Error& error) {
    EXPECT_NE(std::string(error.what()).find("write failed"), std::string::npos) << error.what();
  }
  for (const auto& entry : fs::recursive_directory_iterator(out))
    EXPECT_FALSE(entry.is_regular_file()) << "left behind: " << entry.path();
  // A small shard still fits afterwards: the failure left the disk as it was.
  clip::ShardInput small{"small", "", {files.begin(), files.begin() + 2}};
  EXPECT_TRUE(clip::embed_shard(pipeline, small, out, 64).committed);
}

// ----------------------------------------------------------------------------------------------

TEST(Inputs, BracePatternsFoldersListsAndWorkers) {
  EXPECT_EQ(clip::expand_braces("s/{000..003}.tar"),
            (std::vector<std::string>{"s/000.tar", "s/001.tar", "s/002.tar", "s/003.tar"}));
  EXPECT_EQ(clip::expand_braces("{a,b}-{8..10}.tar.gz"),
            (std::vector<std::string>{"a-8.tar.gz", "a-9.tar.gz", "a-10.tar.gz", "b-8.tar.gz", "b-9.tar.gz", "b-10.tar.gz"}));
  EXPECT_THROW(clip::expand_braces("{5..1}.tar"), clip::Error);
  EXPECT_THROW(clip::expand_braces("{0..99999999999}.tar"), clip::Error);
  EXPECT_THROW(clip::expand_braces("{0..x}.tar"), clip::Error);
  EXPECT_THROW(clip::plan_shards("s/{a,b}.txt", 10), clip::Error);  // not tar files

  const auto shards = clip::plan_shards("shards/{000000..000009}.tar.gz", 10);
  ASSERT_EQ(shards.size(), 10u);
  EXPECT_EQ(shards[3].name, "000003");
  EXPECT_EQ(shards[3].tar_path, "shards/000003.tar.gz");
  const auto mine = clip::shards_for_worker(shards, 1, 4);
  ASSERT_EQ(mine.size(), 3u);  // 1, 5, 9
  EXPECT_EQ(mine[2].name, "000009");
  EXPECT_THROW(clip::shards_for_worker(shards, 4, 4), clip::Error);

  const auto dir = clip_test::scratch_dir("inputs");
  fs::create_directories(dir / "b" / "deep");
  for (const char* file : {"b/deep/z.png", "a.JPG", "b/c.png", "notes.txt", "b/c.txt"}) clip_test::write_bytes(dir / file, "x");
  const auto folder = clip::plan_shards(dir.string(), 2);
  ASSERT_EQ(folder.size(), 2u);
  ASSERT_EQ(folder[0].files.size(), 2u);
  EXPECT_EQ(folder[0].name, "000000");
  EXPECT_EQ(folder[0].files[0].key, "a.JPG");
  EXPECT_EQ(folder[0].files[1].key, "b/c.png");
  EXPECT_EQ(folder[0].files[1].caption_path, (dir / "b" / "c.txt").string());
  EXPECT_EQ(folder[1].files[0].key, "b/deep/z.png");
  EXPECT_TRUE(folder[1].files[0].caption_path.empty());

  clip_test::write_bytes(dir / "list.txt", "one.png\r\ntwo.png\n\nthree.png\n");
  const auto list = clip::plan_shards((dir / "list.txt").string(), 2);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].files[0].key, "three.png");
  EXPECT_THROW(clip::plan_shards((dir / "nothing-here").string(), 2), clip::Error);
}

}  // namespace
