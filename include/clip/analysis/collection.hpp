#pragma once
// An output folder of clip-embed --output-dir, opened for search: every finished shard's
// img_emb (or text_emb) .npy memory-mapped, and the keys of its rows from its metadata, in
// shard-name order. Row r of the collection is a (shard, row) pair; key(r) names it.

#include <clip/analysis/search.hpp>
#include <clip/detail/compilation.hpp>
#include <clip/error.hpp>
#include <clip/formats/npy.hpp>

#include <cstddef>
#include <string>
#include <vector>

// Compiled once in clip_compiled under separate compilation (clip/detail/compilation.hpp).
#if CLIP_HEADER_DEFINITIONS
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#endif

namespace clip {

class EmbeddingCollection {
 public:
  enum class Kind { Images, Texts };

  explicit EmbeddingCollection(const std::string& output_dir, Kind kind = Kind::Images);

  std::size_t rows() const { return keys_.size(); }
  std::size_t dim() const { return dim_; }
  const std::vector<EmbeddingBlock>& blocks() const { return blocks_; }
  const std::string& key(std::size_t row) const { return keys_.at(row); }
  const std::string& shard(std::size_t row) const { return shards_.at(shard_of_.at(row)); }

 private:
  /// The keys of the row lines (lines with an "error" are not rows).
  static std::vector<std::string> read_keys(const std::string& path);

  std::vector<NpyFile> views_;  // the memory maps the blocks point into
  std::vector<EmbeddingBlock> blocks_;
  std::vector<std::string> keys_;
  std::vector<std::size_t> shard_of_;
  std::vector<std::string> shards_;
  std::size_t dim_ = 0;
};

// Compiled once in clip_compiled under separate compilation (clip/detail/compilation.hpp).
#if CLIP_HEADER_DEFINITIONS

CLIP_INLINE EmbeddingCollection::EmbeddingCollection(const std::string& output_dir, Kind kind) {
  namespace fs = std::filesystem;
  const std::string folder = kind == Kind::Images ? "img_emb" : "text_emb";
  const std::string prefix = kind == Kind::Images ? "img_emb_" : "text_emb_";
  const fs::path dir = fs::path(output_dir) / folder;
  std::error_code error;
  if (!fs::is_directory(dir, error)) throw Error(dir.string() + ": no such folder (not a clip-embed --output-dir?)");
  std::vector<std::string> shards;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.size() > prefix.size() + 4 && name.rfind(prefix, 0) == 0 && name.compare(name.size() - 4, 4, ".npy") == 0)
      shards.push_back(name.substr(prefix.size(), name.size() - prefix.size() - 4));
  }
  if (error) throw Error(dir.string() + ": cannot list (" + error.message() + ")");
  std::sort(shards.begin(), shards.end());
  for (const std::string& shard : shards) {
    const std::string path = (dir / (prefix + shard + ".npy")).string();
    NpyFile view(path);
    if (view.type() != NpyType::Float32) throw Error(path + ": embeddings are float64; clip-embed writes float32");
    const auto rows = static_cast<std::size_t>(view.rows()), cols = static_cast<std::size_t>(view.cols());
    if (!views_.empty() && rows && dim_ && cols != dim_)
      throw Error(path + ": rows have " + std::to_string(cols) + " values, other shards " + std::to_string(dim_));
    if (rows) dim_ = cols;
    const std::vector<std::string> keys = read_keys((fs::path(output_dir) / "metadata" / ("metadata_" + shard + ".jsonl")).string());
    if (keys.size() != rows)
      throw Error(path + ": " + std::to_string(rows) + " rows, but its metadata names " + std::to_string(keys.size()));
    blocks_.push_back(EmbeddingBlock{view.data<float>(), rows, cols, keys_.size()});
    for (const std::string& key : keys) {
      keys_.push_back(key);
      shard_of_.push_back(shards_.size());
    }
    shards_.push_back(shard);
    views_.push_back(std::move(view));
  }
}

CLIP_INLINE std::vector<std::string> EmbeddingCollection::read_keys(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error(path + ": cannot open metadata");
  std::vector<std::string> keys;
  std::size_t number = 0;
  for (std::string line; std::getline(file, line);) {
    ++number;
    if (line.empty()) continue;
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(path + ":" + std::to_string(number) + ": not JSON (" + e.what() + ")");
    }
    if (!json.is_object()) throw Error(path + ":" + std::to_string(number) + ": not a JSON object");
    if (json.contains("error")) continue;
    if (!json.contains("key") || !json["key"].is_string())
      throw Error(path + ":" + std::to_string(number) + ": row line without a string \"key\"");
    keys.push_back(json["key"].get<std::string>());
  }
  return keys;
}

#endif  // CLIP_HEADER_DEFINITIONS

}  // namespace clip
