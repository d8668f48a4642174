#pragma once
// Tar archives and WebDataset shards, read as a stream: one member in memory at a time, never
// the whole archive. Reads POSIX ustar (name + prefix), GNU long names ('L' members) and pax
// extended headers ('x': path and size), optionally gzip-compressed (.tar.gz, through zlib).
// Every length comes from the file, so each is checked before it is used, and a member's data
// is read in chunks so a header that lies about its size cannot make us allocate it up front.
//
// WebDataset's rule groups consecutive members into samples: a member's key is its path up to
// the first dot of the base name, the rest is its extension ("a/b/0001.jpg" is key "a/b/0001",
// extension "jpg"; "x.seg.png" is key "x", extension "seg.png"), compared in lower case.

#include <clip/detail/compilation.hpp>
#include <clip/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

// The reading is compiled once in clip_compiled under separate compilation; the classes below
// need only zlib's stream type declared.
#if CLIP_HEADER_DEFINITIONS
#include <zlib.h>

#include <cctype>
#include <cerrno>
#endif
struct z_stream_s;

namespace clip {

/// A source of bytes read front to back.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  /// Reads up to `size` bytes; fewer only at the end. Throws clip::Error on a read error.
  virtual std::size_t read(std::uint8_t* out, std::size_t size) = 0;
};

/// Bytes in memory (not copied: they must outlive the source).
class MemorySource : public ByteSource {
 public:
  MemorySource(const void* data, std::size_t size) : data_(static_cast<const std::uint8_t*>(data)), size_(size) {}
  std::size_t read(std::uint8_t* out, std::size_t size) override {
    const std::size_t n = std::min(size, size_ - position_);
    if (n) std::memcpy(out, data_ + position_, n);
    position_ += n;
    return n;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t position_ = 0;
};

/// A file read through stdio's buffer.
class FileSource : public ByteSource {
 public:
  explicit FileSource(const std::string& path);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  std::size_t read(std::uint8_t* out, std::size_t size) override;

 private:
  std::string path_;
  std::FILE* file_;
};

/// gzip-compressed bytes from another source (concatenated gzip members are read in turn).
class GzipSource : public ByteSource {
 public:
  GzipSource(std::unique_ptr<ByteSource> compressed, std::string name);
  ~GzipSource() override;
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  std::size_t read(std::uint8_t* out, std::size_t size) override;

 private:
  std::unique_ptr<ByteSource> compressed_;
  std::string name_;
  std::vector<std::uint8_t> input_;
  std::unique_ptr<z_stream_s> stream_;  // zlib's z_stream
  bool in_member_ = false;
  bool finished_ = false;
};

/// A source that gives back the bytes it peeked at before passing the rest through.
class PeekedSource : public ByteSource {
 public:
  PeekedSource(std::unique_ptr<ByteSource> inner, std::vector<std::uint8_t> peeked)
      : inner_(std::move(inner)), peeked_(std::move(peeked)) {}
  std::size_t read(std::uint8_t* out, std::size_t size) override {
    std::size_t n = std::min(size, peeked_.size() - position_);
    if (n) std::memcpy(out, peeked_.data() + position_, n);
    position_ += n;
    if (n < size) n += inner_->read(out + n, size - n);
    return n;
  }

 private:
  std::unique_ptr<ByteSource> inner_;
  std::vector<std::uint8_t> peeked_;
  std::size_t position_ = 0;
};

/// `source`, decompressed if it starts with gzip's magic bytes (1f 8b).
std::unique_ptr<ByteSource> maybe_gunzip(std::unique_ptr<ByteSource> source, const std::string& name);

struct TarLimits {
  /// Largest member data held in memory (an image, a caption).
  std::uint64_t max_member_bytes = std::uint64_t{1} << 30;
  /// Largest GNU long-name or pax header member.
  std::uint64_t max_header_bytes = std::uint64_t{1} << 20;
};

/// One regular file of an archive.
struct TarMember {
  std::string path;
  std::vector<std::uint8_t> data;
};

namespace detail {
constexpr std::size_t kTarBlock = 512;
}  // namespace detail

/// Reads the regular files of a tar archive in order; directories, links and other entries are
/// skipped. next() throws clip::Error naming the archive for a malformed or truncated archive.
class TarReader {
 public:
  TarReader(std::unique_ptr<ByteSource> source, std::string name, TarLimits limits = {})
      : source_(std::move(source)), name_(std::move(name)), limits_(limits) {}

  const std::string& name() const { return name_; }

  /// The path of the member whose data was being read when next() last threw (else empty).
  const std::string& failed_path() const { return failed_path_; }

  /// The next regular file, or false at the end of the archive.
  bool next(TarMember& member);

 private:
  std::size_t read_fully(std::uint8_t* out, std::size_t size);

  void check_checksum(const std::uint8_t* header);

  /// `size` bytes of data and the padding to the next block, read in chunks.
  std::vector<std::uint8_t> read_data(std::uint64_t size, const std::string& what);

  void skip_data(std::uint64_t size, const std::string& path);

  void skip_padding(std::uint64_t size);

  /// pax records: "<length> <key>=<value>\n", length counting the whole record.
  void parse_pax(const std::vector<std::uint8_t>& data, std::string& path, std::optional<std::uint64_t>& size);

  std::unique_ptr<ByteSource> source_;
  std::string name_;
  TarLimits limits_;
  std::uint64_t offset_ = 0;
  bool finished_ = false;
  std::string failed_path_;
};

/// Opens a .tar or .tar.gz file (compression detected from its first bytes).
TarReader open_tar_file(const std::string& path, TarLimits limits = {});

/// A tar archive held in memory (not copied).
TarReader open_tar_memory(const void* data, std::size_t size, const std::string& name, TarLimits limits = {});

// ----------------------------------------------------------------------------------------------
// WebDataset samples.

/// One sample of a shard: its key, its image's bytes and extension, its caption if any; or an
/// error that says why the sample cannot be used (no image, duplicate key, unsupported format).
struct WebDatasetSample {
  std::string key;
  std::string image_extension;  // "jpg", "png", ... (lower case); empty without an image
  std::vector<std::uint8_t> image;
  std::optional<std::string> caption;
  std::string error;  // non-empty: skip this sample and report it
};

/// The image extensions read, in preference order when a sample has several.
const std::vector<std::string>& webdataset_image_extensions();


/// Groups a tar's members into WebDataset samples (consecutive members with the same key).
/// Members without an extension (no dot in the base name) are ignored, as WebDataset does.
/// A key seen before in the shard gives an error sample, as does a sample without an image.
class WebDatasetReader {
 public:
  explicit WebDatasetReader(TarReader tar, bool webp_supported = false)
      : tar_(std::move(tar)), webp_supported_(webp_supported) {}

  const std::string& name() const { return tar_.name(); }

  /// The next sample, or false at the end. Throws clip::Error (once, after the samples
  /// before the break) when the archive itself is broken: truncated, a corrupt header. A sample
  /// whose own member is cut off comes back with that error before the throw.
  bool next(WebDatasetSample& sample);

 private:
  struct Pending {
    std::string key;
    std::string extension;
    std::vector<std::uint8_t> data;
  };

  /// Reads members until one with a WebDataset name (or the end, or a break).
  void read_ahead();

  void add_member(WebDatasetSample& sample, Pending& member, std::vector<std::string>& extensions);

  void finish(WebDatasetSample& sample, const std::vector<std::string>& extensions);

  TarReader tar_;
  bool webp_supported_;
  std::optional<Pending> pending_;
  bool ended_ = false;
  std::optional<std::string> broken_;  // why the archive stopped early
  std::string broken_key_;             // the key of the member cut off, if any
  std::unordered_set<std::string> seen_keys_;
};

// Compiled once in clip_compiled under separate compilation (clip/detail/compilation.hpp).
#if CLIP_HEADER_DEFINITIONS

namespace detail {

/// A numeric header field: octal digits (space/NUL padded), or GNU base-256 when the first
/// byte has its high bit set.
inline std::uint64_t tar_number(const std::uint8_t* field, std::size_t size, const std::string& name, const char* what) {
  if (field[0] & 0x80) {
    if (field[0] != 0x80) throw Error(name + ": negative or oversized base-256 " + what + " in a tar header");
    std::uint64_t value = 0;
    for (std::size_t i = 1; i < size; ++i) {
      if (value >> 56) throw Error(name + ": " + what + " in a tar header overflows 64 bits");
      value = (value << 8) | field[i];
    }
    return value;
  }
  std::size_t i = 0;
  while (i < size && field[i] == ' ') ++i;
  std::uint64_t value = 0;
  for (; i < size && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (value >> 60) throw Error(name + ": " + what + " in a tar header overflows 64 bits");
    value = value * 8 + (field[i] - '0');
  }
  for (; i < size; ++i)
    if (field[i] != ' ' && field[i] != '\0')
      throw Error(name + ": " + what + " field of a tar header is not an octal number");
  return value;
}

inline std::string tar_string(const std::uint8_t* field, std::size_t size) {
  const void* end = std::memchr(field, 0, size);
  return std::string(reinterpret_cast<const char*>(field),
                     end ? static_cast<const std::uint8_t*>(end) - field : size);
}

inline bool all_zero(const std::uint8_t* block) {
  return std::all_of(block, block + kTarBlock, [](std::uint8_t b) { return b == 0; });
}

}  // namespace detail

namespace detail {

/// WebDataset's base_plus_ext: key up to the first dot of the base name, extension after it.
inline bool split_webdataset_path(const std::string& path, std::string& key, std::string& extension) {
  const std::size_t slash = path.rfind('/');
  const std::size_t base = slash == std::string::npos ? 0 : slash + 1;
  const std::size_t dot = path.find('.', base);
  if (dot == std::string::npos || dot == base) return false;
  key = path.substr(0, dot);
  extension = path.substr(dot + 1);
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return true;
}

}  // namespace detail

CLIP_INLINE std::unique_ptr<ByteSource> maybe_gunzip(std::unique_ptr<ByteSource> source, const std::string& name) {
  std::vector<std::uint8_t> magic(2);
  magic.resize(source->read(magic.data(), 2));
  const bool gzip = magic.size() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  auto whole = std::make_unique<PeekedSource>(std::move(source), std::move(magic));
  if (!gzip) return whole;
  return std::make_unique<GzipSource>(std::move(whole), name);
}

CLIP_INLINE TarReader open_tar_file(const std::string& path, TarLimits limits) {
  return TarReader(maybe_gunzip(std::make_unique<FileSource>(path), path), path, limits);
}

CLIP_INLINE TarReader open_tar_memory(const void* data, std::size_t size, const std::string& name, TarLimits limits) {
  return TarReader(maybe_gunzip(std::make_unique<MemorySource>(data, size), name), name, limits);
}

CLIP_INLINE const std::vector<std::string>& webdataset_image_extensions() {
  static const std::vector<std::string> extensions = {"jpg", "jpeg", "png", "webp", "bmp"};
  return extensions;
}

CLIP_INLINE GzipSource::GzipSource(std::unique_ptr<ByteSource> compressed, std::string name)
    : compressed_(std::move(compressed)), name_(std::move(name)), input_(1 << 16),
      stream_(std::make_unique<z_stream>()) {  // value-initialised: zeroed, as inflateInit2 wants
  if (inflateInit2(stream_.get(), 15 + 16) != Z_OK) throw Error(name_ + ": cannot start zlib");
}

CLIP_INLINE GzipSource::~GzipSource() { inflateEnd(stream_.get()); }

CLIP_INLINE std::size_t GzipSource::read(std::uint8_t* out, std::size_t size) {
  std::size_t produced = 0;
  while (produced < size && !finished_) {
    if (stream_->avail_in == 0) {
      stream_->next_in = input_.data();
      stream_->avail_in = static_cast<uInt>(compressed_->read(input_.data(), input_.size()));
      if (stream_->avail_in == 0) {
        if (in_member_) throw Error(name_ + ": truncated gzip data");
        finished_ = true;
        break;
      }
    }
    if (!in_member_) {  // a new gzip member starts here
      if (inflateReset(stream_.get()) != Z_OK) throw Error(name_ + ": zlib reset failed");
      in_member_ = true;
    }
    stream_->next_out = out + produced;
    stream_->avail_out = static_cast<uInt>(std::min<std::size_t>(size - produced, 1u << 30));
    const int status = inflate(stream_.get(), Z_NO_FLUSH);
    produced = static_cast<std::size_t>(stream_->next_out - out);
    if (status == Z_STREAM_END) {
      in_member_ = false;
    } else if (status != Z_OK && status != Z_BUF_ERROR) {
      throw Error(name_ + ": corrupt gzip data (" + (stream_->msg ? stream_->msg : "zlib error " + std::to_string(status)) + ")");
    }
  }
  return produced;
}

CLIP_INLINE FileSource::FileSource(const std::string& path) : path_(path), file_(std::fopen(path.c_str(), "rb")) {
  if (!file_) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
}

CLIP_INLINE FileSource::~FileSource() { std::fclose(file_); }

CLIP_INLINE std::size_t FileSource::read(std::uint8_t* out, std::size_t size) {
  const std::size_t n = std::fread(out, 1, size, file_);
  if (n < size && std::ferror(file_)) throw Error(path_ + ": read error (" + std::strerror(errno) + ")");
  return n;
}

CLIP_INLINE bool TarReader::next(TarMember& member) {
  failed_path_.clear();
  std::string long_name, pax_path;
  std::optional<std::uint64_t> pax_size;
  std::uint8_t header[detail::kTarBlock];
  for (;;) {
    if (finished_) return false;
    const std::size_t got = read_fully(header, detail::kTarBlock);
    if (got == 0) {  // the end without the two zero blocks: accepted, as GNU tar does
      if (!long_name.empty() || !pax_path.empty() || pax_size)
        throw Error(name_ + ": archive ends after an extended header, before its member");
      finished_ = true;
      return false;
    }
    if (got < detail::kTarBlock) throw Error(name_ + ": truncated tar header at byte " + std::to_string(offset_ - got));
    if (detail::all_zero(header)) {  // end-of-archive marker
      finished_ = true;
      return false;
    }
    check_checksum(header);
    const std::uint64_t header_offset = offset_ - detail::kTarBlock;
    std::uint64_t size = detail::tar_number(header + 124, 12, name_, "size");
    const char type = static_cast<char>(header[156]);
    if (type == 'x' || type == 'L') {
      if (size > limits_.max_header_bytes)
        throw Error(name_ + ": extended header at byte " + std::to_string(header_offset) + " of " +
                    std::to_string(size) + " bytes is larger than the limit of " +
                    std::to_string(limits_.max_header_bytes));
      const std::vector<std::uint8_t> data = read_data(size, "extended header");
      if (type == 'L') {
        long_name = detail::tar_string(data.data(), data.size());
      } else {
        parse_pax(data, pax_path, pax_size);
      }
      continue;
    }
    if (pax_size) size = *pax_size;
    std::string path;
    if (!pax_path.empty()) {
      path = pax_path;
    } else if (!long_name.empty()) {
      path = long_name;
    } else {
      path = detail::tar_string(header, 100);
      const bool ustar = std::memcmp(header + 257, "ustar", 5) == 0;
      const std::string prefix = ustar && header[263] == '0' ? detail::tar_string(header + 345, 155) : "";
      if (!prefix.empty()) path = prefix + "/" + path;
    }
    long_name.clear();
    pax_path.clear();
    pax_size.reset();
    if (type == '0' || type == '\0' || type == '7') {
      if (size > limits_.max_member_bytes)
        throw Error(name_ + ": member '" + path + "' of " + std::to_string(size) +
                    " bytes is larger than the limit of " + std::to_string(limits_.max_member_bytes));
      failed_path_ = path;
      member.data = read_data(size, "member '" + path + "'");
      failed_path_.clear();
      member.path = std::move(path);
      return true;
    }
    // Directories, links, devices, global pax headers: skip their data, if any.
    if (type != '1' && type != '2' && type != '3' && type != '4' && type != '5' && type != '6') skip_data(size, path);
  }
}

CLIP_INLINE std::size_t TarReader::read_fully(std::uint8_t* out, std::size_t size) {
  std::size_t total = 0;
  while (total < size) {
    const std::size_t n = source_->read(out + total, size - total);
    if (n == 0) break;
    total += n;
  }
  offset_ += total;
  return total;
}

CLIP_INLINE void TarReader::check_checksum(const std::uint8_t* header) {
  const std::uint64_t stored = detail::tar_number(header + 148, 8, name_, "checksum");
  std::uint64_t unsigned_sum = 0;
  std::int64_t signed_sum = 0;
  for (std::size_t i = 0; i < detail::kTarBlock; ++i) {
    const std::uint8_t b = (i >= 148 && i < 156) ? ' ' : header[i];
    unsigned_sum += b;
    signed_sum += static_cast<std::int8_t>(b);
  }
  if (stored != unsigned_sum && static_cast<std::int64_t>(stored) != signed_sum)
    throw Error(name_ + ": tar header at byte " + std::to_string(offset_ - detail::kTarBlock) +
                " has a wrong checksum (not a tar archive, or corrupt)");
}

CLIP_INLINE std::vector<std::uint8_t> TarReader::read_data(std::uint64_t size, const std::string& what) {
  std::vector<std::uint8_t> data;
  constexpr std::uint64_t kChunk = 1 << 20;
  while (data.size() < size) {
    const std::size_t have = data.size();
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - have));
    data.resize(have + want);
    const std::size_t got = read_fully(data.data() + have, want);
    if (got < want)
      throw Error(name_ + ": " + what + " is truncated: the header says " + std::to_string(size) +
                  " bytes, the archive ends after " + std::to_string(have + got));
  }
  skip_padding(size);
  return data;
}

CLIP_INLINE void TarReader::skip_data(std::uint64_t size, const std::string& path) {
  std::uint8_t buffer[4096];
  std::uint64_t left = size;
  while (left) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, sizeof buffer));
    if (read_fully(buffer, want) < want) throw Error(name_ + ": entry '" + path + "' is truncated");
    left -= want;
  }
  skip_padding(size);
}

CLIP_INLINE void TarReader::skip_padding(std::uint64_t size) {
  std::uint8_t padding[detail::kTarBlock];
  const std::size_t pad = static_cast<std::size_t>((detail::kTarBlock - size % detail::kTarBlock) % detail::kTarBlock);
  // A missing final padding is tolerated; a following header read then finds the end.
  read_fully(padding, pad);
}

CLIP_INLINE void TarReader::parse_pax(const std::vector<std::uint8_t>& data, std::string& path, std::optional<std::uint64_t>& size) {
  std::size_t pos = 0;
  while (pos < data.size()) {
    std::size_t length = 0, digits = pos;
    while (digits < data.size() && data[digits] >= '0' && data[digits] <= '9' && length < data.size())
      length = length * 10 + (data[digits++] - '0');
    if (digits == pos || digits >= data.size() || data[digits] != ' ' || length <= digits - pos + 1 ||
        length > data.size() - pos || data[pos + length - 1] != '\n')
      throw Error(name_ + ": malformed pax extended header record");
    const std::string record(reinterpret_cast<const char*>(data.data()) + digits + 1, pos + length - 1 - (digits + 1));
    const std::size_t equals = record.find('=');
    if (equals == std::string::npos) throw Error(name_ + ": pax record without '='");
    const std::string key = record.substr(0, equals), value = record.substr(equals + 1);
    if (key == "path") {
      path = value;
    } else if (key == "size") {
      std::uint64_t parsed = 0;
      if (value.empty() || value.size() > 19 || value.find_first_not_of("0123456789") != std::string::npos)
        throw Error(name_ + ": pax size '" + value + "' is not a number");
      for (char c : value) parsed = parsed * 10 + (c - '0');
      size = parsed;
    }
    pos += length;
  }
}

CLIP_INLINE bool WebDatasetReader::next(WebDatasetSample& sample) {
  if (!pending_ && !ended_) read_ahead();
  if (!pending_) {
    if (broken_) {
      const std::string message = *broken_;
      broken_.reset();
      throw Error(message);
    }
    return false;
  }
  sample = WebDatasetSample{};
  sample.key = pending_->key;
  std::vector<std::string> extensions;
  while (pending_ && pending_->key == sample.key) {  // this key's consecutive members
    add_member(sample, *pending_, extensions);
    pending_.reset();
    read_ahead();
  }
  finish(sample, extensions);
  if (broken_ && broken_key_ == sample.key) {
    sample.error = *broken_;
    sample.image.clear();
  }
  return true;
}

CLIP_INLINE void WebDatasetReader::read_ahead() {
  TarMember member;
  try {
    while (tar_.next(member)) {
      std::string key, extension;
      if (!detail::split_webdataset_path(member.path, key, extension)) continue;
      pending_ = Pending{std::move(key), std::move(extension), std::move(member.data)};
      return;
    }
  } catch (const Error& error) {
    broken_ = error.what();
    std::string key, extension;
    if (detail::split_webdataset_path(tar_.failed_path(), key, extension)) broken_key_ = key;
  }
  ended_ = true;
}

CLIP_INLINE void WebDatasetReader::add_member(WebDatasetSample& sample, Pending& member, std::vector<std::string>& extensions) {
  if (std::find(extensions.begin(), extensions.end(), member.extension) != extensions.end() && sample.error.empty())
    sample.error = "duplicate member '" + sample.key + "." + member.extension + "' in " + name() +
                   " (which one is meant is unclear)";
  extensions.push_back(member.extension);
  const auto& images = webdataset_image_extensions();
  const auto rank = [&](const std::string& e) { return std::find(images.begin(), images.end(), e) - images.begin(); };
  if (member.extension == "txt") {
    if (!sample.caption) sample.caption = std::string(member.data.begin(), member.data.end());
  } else if (rank(member.extension) < static_cast<std::ptrdiff_t>(images.size())) {
    if (sample.image_extension.empty() || rank(member.extension) < rank(sample.image_extension)) {
      sample.image_extension = member.extension;
      sample.image = std::move(member.data);
    }
  }
}

CLIP_INLINE void WebDatasetReader::finish(WebDatasetSample& sample, const std::vector<std::string>& extensions) {
  if (!seen_keys_.insert(sample.key).second && sample.error.empty()) {
    sample.error = "duplicate key '" + sample.key + "' in " + name() + " (an earlier sample has it)";
  } else if (!sample.error.empty()) {
    // a duplicate member, set while collecting
  } else if (sample.image_extension.empty()) {
    std::string found;
    for (const std::string& e : extensions) found += (found.empty() ? "." : ", .") + e;
    sample.error = (sample.caption ? "caption without an image (members: " : "no image (members: ") + found + ")";
  } else if (sample.image_extension == "webp" && !webp_supported_) {
    sample.error = "webp images are not supported by this build";
  }
  if (!sample.error.empty()) sample.image.clear();
}

#endif  // CLIP_HEADER_DEFINITIONS

}  // namespace clip
