#pragma once
// What a large embedding job reads, cut into shards: WebDataset tar shards given as a brace
// pattern ('shards/{000000..000123}.tar', also .tar.gz), a folder of images (recursive), or a
// text file listing image paths. Folders and lists are cut into shards of `shard_size` items
// named 000000, 000001, ... in sorted (folder) or listed order, so the cut is the same every run.

#include <clip/detail/compilation.hpp>
#include <clip/error.hpp>

#include <cstddef>
#include <string>
#include <vector>

// Compiled once in clip_compiled under separate compilation (clip/detail/compilation.hpp).
#if CLIP_HEADER_DEFINITIONS
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <system_error>
#endif

namespace clip {

/// One image of a folder or list input, with the caption found beside it (same stem, .txt).
struct FileItem {
  std::string key;   // the path relative to the folder, or the path as listed
  std::string path;  // where to read it
  std::string caption_path;  // "<stem>.txt" beside it when that file exists, else empty
};

/// One unit of work: a tar shard, or a slice of a folder/list. `name` names its output files.
struct ShardInput {
  std::string name;
  std::string tar_path;         // a WebDataset shard, or empty
  std::vector<FileItem> files;  // otherwise: the images of this slice
};

/// The file extensions a folder input picks up (lower case).
bool is_image_file_name(const std::string& name);

bool is_tar_name(const std::string& path);

/// A tar path's shard name: its file name without .tar / .tar.gz / .tgz.
std::string tar_shard_name(const std::string& path);

/// Shell-style brace expansion: "{000..012}" counts (zero-padded to the first bound's width),
/// "{a,b}" lists; several braces multiply. Refuses more than `limit` results.
std::vector<std::string> expand_braces(const std::string& pattern, std::size_t limit = 100'000'000);

/// The shards of `source`: a tar path or brace pattern of tar paths (one shard each), a folder
/// (its images, recursively, sorted by path), or a list file (one image path a line).
std::vector<ShardInput> plan_shards(const std::string& source, std::size_t shard_size);

/// Every `count`-th shard starting at `index` (0-based): worker index/count's share.
std::vector<ShardInput> shards_for_worker(std::vector<ShardInput> shards, std::size_t index, std::size_t count);

#if CLIP_HEADER_DEFINITIONS

namespace detail {

inline std::string caption_beside(const std::filesystem::path& image) {
  std::filesystem::path caption = image;
  caption.replace_extension(".txt");
  std::error_code error;
  return std::filesystem::is_regular_file(caption, error) ? caption.string() : std::string();
}

inline std::vector<ShardInput> cut_into_shards(std::vector<FileItem> items, std::size_t shard_size) {
  if (shard_size == 0) throw Error("shard size must be at least 1");
  std::vector<ShardInput> shards;
  for (std::size_t first = 0; first < items.size(); first += shard_size) {
    char name[32];
    std::snprintf(name, sizeof name, "%06zu", shards.size());
    ShardInput shard;
    shard.name = name;
    const std::size_t last = std::min(items.size(), first + shard_size);
    shard.files.assign(std::make_move_iterator(items.begin() + first), std::make_move_iterator(items.begin() + last));
    shards.push_back(std::move(shard));
  }
  return shards;
}

}  // namespace detail

CLIP_INLINE bool is_image_file_name(const std::string& name) {
  const std::size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string extension = name.substr(dot + 1);
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::set<std::string> extensions = {"jpg", "jpeg", "png", "bmp", "gif", "webp", "tga", "ppm", "pgm"};
  return extensions.count(extension) != 0;
}

CLIP_INLINE bool is_tar_name(const std::string& path) {
  auto ends = [&](const char* suffix) {
    const std::string s = suffix;
    return path.size() > s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".tar") || ends(".tar.gz") || ends(".tgz");
}

CLIP_INLINE std::string tar_shard_name(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  for (const char* suffix : {".tar.gz", ".tgz", ".tar"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      name.resize(name.size() - s.size());
      break;
    }
  }
  return name;
}

CLIP_INLINE std::vector<std::string> expand_braces(const std::string& pattern, std::size_t limit) {
  const std::size_t open = pattern.find('{');
  if (open == std::string::npos) return {pattern};
  const std::size_t close = pattern.find('}', open);
  if (close == std::string::npos) throw Error("'" + pattern + "': '{' without a closing '}'");
  const std::string inside = pattern.substr(open + 1, close - open - 1);
  const std::string head = pattern.substr(0, open);
  std::vector<std::string> choices;
  const std::size_t dots = inside.find("..");
  if (dots != std::string::npos) {
    const std::string first = inside.substr(0, dots), last = inside.substr(dots + 2);
    const auto digits = [](const std::string& s) {
      return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (!digits(first) || !digits(last))
      throw Error("'" + pattern + "': a range needs two whole numbers, as in {000000..000123}");
    const unsigned long long from = std::stoull(first), to = std::stoull(last);
    if (to < from) throw Error("'" + pattern + "': range {" + inside + "} counts down");
    if (to - from >= limit) throw Error("'" + pattern + "': more than " + std::to_string(limit) + " names");
    for (unsigned long long n = from; n <= to; ++n) {
      std::string number = std::to_string(n);
      if (number.size() < first.size()) number.insert(0, first.size() - number.size(), '0');
      choices.push_back(number);
    }
  } else {
    std::size_t start = 0;
    for (;;) {
      const std::size_t comma = inside.find(',', start);
      choices.push_back(inside.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  const std::vector<std::string> tails = expand_braces(pattern.substr(close + 1), limit);
  if (choices.size() * tails.size() > limit) throw Error("'" + pattern + "': more than " + std::to_string(limit) + " names");
  std::vector<std::string> out;
  out.reserve(choices.size() * tails.size());
  for (const std::string& choice : choices)
    for (const std::string& tail : tails) out.push_back(head + choice + tail);
  return out;
}

CLIP_INLINE std::vector<ShardInput> plan_shards(const std::string& source, std::size_t shard_size) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (source.empty()) throw Error("--input is empty");
  if (source.find('{') != std::string::npos || is_tar_name(source)) {
    std::vector<ShardInput> shards;
    std::set<std::string> names;
    for (const std::string& path : expand_braces(source)) {
      if (!is_tar_name(path)) throw Error(path + ": a shard must be a .tar, .tar.gz or .tgz file");
      ShardInput shard;
      shard.name = tar_shard_name(path);
      shard.tar_path = path;
      if (!names.insert(shard.name).second)
        throw Error(path + ": another shard of --input has the same name '" + shard.name + "'");
      shards.push_back(std::move(shard));
    }
    return shards;
  }
  if (fs::is_directory(source, error)) {
    std::vector<FileItem> items;
    fs::recursive_directory_iterator walk(source, fs::directory_options::skip_permission_denied, error);
    if (error) throw Error(source + ": cannot list folder (" + error.message() + ")");
    for (auto end = fs::recursive_directory_iterator(); walk != end; walk.increment(error)) {
      if (error) throw Error(source + ": cannot list folder (" + error.message() + ")");
      if (!walk->is_regular_file(error) || !is_image_file_name(walk->path().filename().string())) continue;
      const std::string relative = fs::relative(walk->path(), source, error).generic_string();
      items.push_back(FileItem{relative, walk->path().string(), detail::caption_beside(walk->path())});
    }
    std::sort(items.begin(), items.end(), [](const FileItem& a, const FileItem& b) { return a.key < b.key; });
    return detail::cut_into_shards(std::move(items), shard_size);
  }
  if (fs::is_regular_file(source, error)) {
    std::ifstream list(source, std::ios::binary);
    if (!list) throw Error(source + ": cannot open list file");
    std::vector<FileItem> items;
    for (std::string line; std::getline(list, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      items.push_back(FileItem{line, line, detail::caption_beside(line)});
    }
    return detail::cut_into_shards(std::move(items), shard_size);
  }
  throw Error(source + ": no such folder, list file or tar shard");
}

CLIP_INLINE std::vector<ShardInput> shards_for_worker(std::vector<ShardInput> shards, std::size_t index, std::size_t count) {
  if (count == 0 || index >= count)
    throw Error("worker " + std::to_string(index) + "/" + std::to_string(count) + ": need 0 <= I < N");
  std::vector<ShardInput> mine;
  for (std::size_t i = index; i < shards.size(); i += count) mine.push_back(std::move(shards[i]));
  return mine;
}

#endif  // CLIP_HEADER_DEFINITIONS

}  // namespace clip
