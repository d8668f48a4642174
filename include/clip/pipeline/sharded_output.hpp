#pragma once
// Per-shard output in clip-retrieval's layout, committed so that a killed run leaves only
// whole shards:
//   OUT/img_emb/img_emb_<shard>.npy        float32 [rows, embed_dim], one row per embedded image
//   OUT/text_emb/text_emb_<shard>.npy      float32 [rows, embed_dim] (when the shard has captions;
//                                          a row without a caption is zeros)
//   OUT/metadata/metadata_<shard>.jsonl    {"key": ..., "caption": ...} per row, in row order,
//                                          then {"key": ..., "error": ...} per failed item
// Each file is written to a temporary name and renamed; the image .npy is renamed last and
// marks the shard finished, so a rerun skips shards that have it and redoes the others. The
// bytes depend only on the shard's inputs and the options, so a rerun after kill -9 writes
// what an uninterrupted run writes.

#include <clip/detail/compilation.hpp>
#include <clip/error.hpp>
#include <clip/pipeline/embedding_pipeline.hpp>
#include <clip/pipeline/inputs.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

// The writing (tar reading, .npy and JSON lines) is compiled once in clip_compiled under
// separate compilation, for float and double (clip/detail/compilation.hpp).
#if CLIP_HEADER_DEFINITIONS
#include <clip/detail/atomic_write.hpp>
#include <clip/detail/read_file.hpp>
#include <clip/formats/npy.hpp>
#include <clip/formats/tar.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#endif

namespace clip {

/// Where a shard's three files go.
struct ShardPaths {
  std::string image_embeddings, text_embeddings, metadata;
};

ShardPaths shard_paths(const std::string& output_dir, const std::string& shard);

/// A shard is finished when its image .npy exists (it is committed last).
bool shard_finished(const std::string& output_dir, const std::string& shard);

/// What embedding one shard gave.
struct ShardReport {
  std::string name;
  std::size_t rows = 0;                // images embedded
  std::vector<std::string> errors;     // "key: why" per failed item, and a broken archive
  bool committed = false;              // its files are in place
};

/// Embeds one shard with `pipeline` and commits its files under `output_dir`. Items that fail
/// (and a tar that breaks part way) are reported in the metadata and the report; a shard that
/// cannot be read at all, or whose files cannot be written, throws clip::Error and leaves no
/// file of it behind.
template <typename Scalar>
ShardReport embed_shard(EmbeddingPipeline<Scalar>& pipeline, const ShardInput& shard, const std::string& output_dir,
                        std::size_t embed_dim, const std::function<void(std::size_t)>& on_items = {});

#if CLIP_HEADER_DEFINITIONS

namespace detail {

/// Removes temporary files a killed run left beside `target` (write_file_atomically's names).
inline void remove_stale_temporaries(const std::string& target) {
  namespace fs = std::filesystem;
  const fs::path path(target);
  const std::string prefix = path.filename().string() + ".tmp-";
  std::error_code error;
  for (fs::directory_iterator it(path.parent_path(), error), end; !error && it != end; it.increment(error))
    if (it->path().filename().string().rfind(prefix, 0) == 0) fs::remove(it->path(), error);
}

/// One JSON line, keys in the order given ("key" first, as clip-retrieval's columns).
inline std::string dump_json_line(const nlohmann::ordered_json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

/// A caption file beside an image: a few bytes normally; 16 MiB at most.
constexpr std::size_t kMaxCaptionFileBytes = std::size_t{16} << 20;

}  // namespace detail

CLIP_INLINE ShardPaths shard_paths(const std::string& output_dir, const std::string& shard) {
const std::filesystem::path out(output_dir);
return {(out / "img_emb" / ("img_emb_" + shard + ".npy")).string(),
        (out / "text_emb" / ("text_emb_" + shard + ".npy")).string(),
        (out / "metadata" / ("metadata_" + shard + ".jsonl")).string()};
}

CLIP_INLINE bool shard_finished(const std::string& output_dir, const std::string& shard) {
std::error_code error;
return std::filesystem::is_regular_file(shard_paths(output_dir, shard).image_embeddings, error);
}

template <typename Scalar>
ShardReport embed_shard(EmbeddingPipeline<Scalar>& pipeline, const ShardInput& shard, const std::string& output_dir,
                        std::size_t embed_dim, const std::function<void(std::size_t)>& on_items) {
const ShardPaths paths = shard_paths(output_dir, shard.name);
ShardReport report;
report.name = shard.name;

std::vector<float> image_rows, text_rows;
std::string row_lines, error_lines;
bool any_caption = false;
const auto sink = [&](std::vector<PipelineResult>& batch) {
  for (PipelineResult& result : batch) {
    if (!result.ok()) {
      report.errors.push_back(result.key + ": " + result.error);
      error_lines += detail::dump_json_line({{"key", result.key}, {"error", result.error}});
      continue;
    }
    ++report.rows;
    image_rows.insert(image_rows.end(), result.image_features.begin(), result.image_features.end());
    if (result.caption_features.size() == embed_dim) {
      any_caption = true;
      text_rows.insert(text_rows.end(), result.caption_features.begin(), result.caption_features.end());
    } else {
      text_rows.insert(text_rows.end(), embed_dim, 0.0f);
    }
    nlohmann::ordered_json line = {{"key", result.key}, {"caption", nullptr}};
    if (result.caption) line["caption"] = *result.caption;
    row_lines += detail::dump_json_line(line);
  }
  if (on_items) on_items(batch.size());
};

try {
  if (!shard.tar_path.empty()) {
    WebDatasetReader reader(open_tar_file(shard.tar_path));  // throws when it cannot be opened
    pipeline.run(
        [&](PipelineItem& item) {
          WebDatasetSample sample;
          if (!reader.next(sample)) return false;
          item.key = std::move(sample.key);
          item.path = shard.tar_path + ":" + item.key + "." + sample.image_extension;
          item.encoded = std::move(sample.image);
          item.caption = std::move(sample.caption);
          item.error = std::move(sample.error);
          if (item.error.empty() && item.encoded.empty()) item.error = "empty image member";
          return true;
        },
        sink);
  } else {
    std::size_t next = 0;
    pipeline.run(
        [&](PipelineItem& item) {
          if (next == shard.files.size()) return false;
          const FileItem& file = shard.files[next++];
          item.key = file.key;
          item.path = file.path;
          if (!file.caption_path.empty()) {
            try {
              item.caption = detail::read_file(file.caption_path, detail::kMaxCaptionFileBytes, "caption file");
            } catch (const Error& error) {
              item.error = error.what();
            }
          }
          return true;
        },
        sink);
  }
} catch (const Error& error) {
  if (!shard.tar_path.empty() && report.rows == 0 && report.errors.empty() && row_lines.empty()) {
    // Nothing read at all: the shard is unreadable; leave it for a rerun.
    throw Error(std::string(error.what()));
  }
  // The archive broke part way: what came before it stands; the break is reported with it.
  report.errors.push_back(shard.name + ": " + error.what());
  error_lines += detail::dump_json_line({{"shard", shard.name}, {"error", error.what()}});
}

namespace fs = std::filesystem;
std::error_code made;
for (const std::string& file : {paths.image_embeddings, paths.text_embeddings, paths.metadata}) {
  fs::create_directories(fs::path(file).parent_path(), made);
  if (made) throw Error(fs::path(file).parent_path().string() + ": cannot create folder (" + made.message() + ")");
  detail::remove_stale_temporaries(file);
}
std::vector<std::string> written;
try {
  if (!any_caption) std::remove(paths.text_embeddings.c_str());  // an older run's, of other inputs
  if (any_caption) {
    detail::write_file_atomically(paths.text_embeddings,
                                  npy_bytes<float>(text_rows.data(), report.rows, embed_dim));
    written.push_back(paths.text_embeddings);
  }
  detail::write_file_atomically(paths.metadata, row_lines + error_lines);
  written.push_back(paths.metadata);
  detail::write_file_atomically(paths.image_embeddings,
                                npy_bytes<float>(image_rows.data(), report.rows, embed_dim));
} catch (const Error&) {
  for (const std::string& file : written) std::remove(file.c_str());  // no shard half there
  throw;
}
report.committed = true;
return report;
}

#endif  // CLIP_HEADER_DEFINITIONS

#define CLIP_DETAIL_EMBED_SHARD(Scalar)                                                                      \
  CLIP_INSTANTIATE(ShardReport embed_shard(EmbeddingPipeline<Scalar>&, const ShardInput&, const std::string&, \
                                           std::size_t, const std::function<void(std::size_t)>&))
CLIP_DETAIL_EMBED_SHARD(float)
CLIP_DETAIL_EMBED_SHARD(double)
#undef CLIP_DETAIL_EMBED_SHARD

}  // namespace clip
