#pragma once
// ZipArchive: the entries of a ZIP file held in memory (or mapped), as PyTorch writes them:
// stored (uncompressed) entries, ZIP64 records once the archive passes 4 GB. The central
// directory is read with every offset and size checked against the file; compressed or
// encrypted entries are refused with a message that says so, since torch.save never writes them.
// Entry data is returned as a view into the caller's bytes: nothing is copied.

#include <clip/error.hpp>
#include <clip/formats/detail/bytes.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace clip {

struct ZipEntry {
  std::string name;
  std::uint64_t data_offset = 0;  ///< of the entry's bytes from the start of the archive
  std::uint64_t size = 0;
  std::uint16_t method = 0;       ///< 0 stored, 8 deflate, ...
  bool encrypted = false;
};

class ZipArchive {
 public:
  /// Reads the central directory of `size` bytes at `data` (which must outlive the archive);
  /// `source` names the file in errors.
  ZipArchive(const std::uint8_t* data, std::size_t size, std::string source)
      : data_(data), size_(size), source_(std::move(source)) {
    read_central_directory();
  }

  const std::string& source() const { return source_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }

  const ZipEntry* find(const std::string& name) const {
    auto found = index_.find(name);
    return found == index_.end() ? nullptr : &entries_[found->second];
  }

  /// The bytes of a stored entry, or clip::Error for one that is compressed or encrypted.
  const std::uint8_t* data(const ZipEntry& entry) const {
    if (entry.encrypted) fail("entry '" + entry.name + "' is encrypted, which clip cannot read");
    if (entry.method != 0)
      fail("entry '" + entry.name + "' is compressed (method " + std::to_string(entry.method) +
           "); clip reads stored entries only, as torch.save writes them (re-save the checkpoint with torch.save)");
    return data_ + entry.data_offset;
  }

  std::string text(const ZipEntry& entry) const {
    return std::string(reinterpret_cast<const char*>(data(entry)), static_cast<std::size_t>(entry.size));
  }

  /// True when the bytes start like a ZIP local file header.
  static bool looks_like_zip(const std::uint8_t* data, std::size_t size) {
    return size >= 4 && data[0] == 'P' && data[1] == 'K' && data[2] == 3 && data[3] == 4;
  }

  /// Entries are at most this many; far more than any checkpoint (a ViT-bigG has ~1000).
  static constexpr std::uint64_t max_entries = 1u << 20;

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(source_ + ": " + what); }

  void read_central_directory() {
    detail::ByteReader reader(data_, size_, source_ + " (zip)");
    // End of central directory: 22 bytes plus a comment of up to 65535, at the very end.
    constexpr std::size_t eocd_size = 22;
    if (size_ < eocd_size) fail("too short to be a zip archive (" + std::to_string(size_) + " bytes)");
    std::size_t eocd = SIZE_MAX;
    const std::size_t lowest = size_ >= eocd_size + 65535 ? size_ - eocd_size - 65535 : 0;
    for (std::size_t at = size_ - eocd_size + 1; at-- > lowest;) {
      if (data_[at] == 'P' && data_[at + 1] == 'K' && data_[at + 2] == 5 && data_[at + 3] == 6) {
        eocd = at;
        break;
      }
    }
    if (eocd == SIZE_MAX) fail("no zip end-of-central-directory record (truncated or not a zip archive)");
    reader.seek(eocd + 4, "end of central directory");
    const std::uint16_t disk = reader.u16("disk number");
    const std::uint16_t cd_disk = reader.u16("central directory disk");
    reader.u16("entries on this disk");
    std::uint64_t count = reader.u16("entry count");
    std::uint64_t cd_size = reader.u32("central directory size");
    std::uint64_t cd_offset = reader.u32("central directory offset");
    if (disk != 0 || cd_disk != 0) fail("multi-part zip archives are not supported");

    if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu) {
      // ZIP64: a locator just before the end record points at the ZIP64 end record.
      if (eocd < 20) fail("ZIP64 fields set but no ZIP64 locator");
      reader.seek(eocd - 20, "ZIP64 locator");
      if (reader.u32("ZIP64 locator signature") != 0x07064b50u) fail("ZIP64 fields set but no ZIP64 locator");
      reader.u32("ZIP64 end record disk");
      const std::uint64_t record = reader.u64("ZIP64 end record offset");
      reader.seek(record, "ZIP64 end of central directory");
      if (reader.u32("ZIP64 end record signature") != 0x06064b50u) fail("bad ZIP64 end-of-central-directory signature");
      reader.u64("ZIP64 record size");
      reader.u16("version made by");
      reader.u16("version needed");
      reader.u32("disk number");
      reader.u32("central directory disk");
      reader.u64("entries on this disk");
      count = reader.u64("entry count");
      cd_size = reader.u64("central directory size");
      cd_offset = reader.u64("central directory offset");
    }
    if (cd_offset > size_ || cd_size > size_ - cd_offset)
      fail("central directory (" + std::to_string(cd_size) + " bytes at " + std::to_string(cd_offset) +
           ") runs past the end of the file (" + std::to_string(size_) + " bytes): truncated archive");
    // Each central directory record takes at least 46 bytes, so the count cannot exceed this.
    if (count > cd_size / 46 || count > max_entries)
      fail("central directory claims " + std::to_string(count) + " entries in " + std::to_string(cd_size) + " bytes");

    detail::ByteReader directory(data_ + cd_offset, static_cast<std::size_t>(cd_size), source_ + " (zip central directory)");
    entries_.reserve(static_cast<std::size_t>(count));
    for (std::uint64_t i = 0; i < count; ++i) {
      if (directory.u32("entry signature") != 0x02014b50u)
        fail("central directory entry " + std::to_string(i) + " has a bad signature");
      directory.u16("version made by");
      directory.u16("version needed");
      const std::uint16_t flags = directory.u16("flags");
      ZipEntry entry;
      entry.method = directory.u16("method");
      entry.encrypted = (flags & 1u) != 0;
      directory.u32("time and date");
      directory.u32("crc");
      std::uint64_t compressed = directory.u32("compressed size");
      std::uint64_t uncompressed = directory.u32("uncompressed size");
      const std::uint16_t name_length = directory.u16("name length");
      const std::uint16_t extra_length = directory.u16("extra length");
      const std::uint16_t comment_length = directory.u16("comment length");
      directory.u16("disk");
      directory.u16("internal attributes");
      directory.u32("external attributes");
      std::uint64_t local_offset = directory.u32("local header offset");
      entry.name = directory.string(name_length, "entry name");
      detail::ByteReader extra(directory.take(extra_length, "extra field"), extra_length, source_ + " (zip extra field)");
      directory.take(comment_length, "entry comment");
      while (extra.remaining() >= 4) {
        const std::uint16_t id = extra.u16("extra id");
        const std::uint16_t length = extra.u16("extra length");
        detail::ByteReader field(extra.take(length, "extra data"), length, extra.source());
        if (id != 0x0001) continue;
        // ZIP64 extended information: only the fields whose 32-bit value is saturated, in order.
        if (uncompressed == 0xFFFFFFFFu) uncompressed = field.u64("ZIP64 uncompressed size");
        if (compressed == 0xFFFFFFFFu) compressed = field.u64("ZIP64 compressed size");
        if (local_offset == 0xFFFFFFFFu) local_offset = field.u64("ZIP64 local header offset");
      }
      entry.size = uncompressed;
      if (entry.method == 0 && !entry.encrypted && compressed != uncompressed)
        fail("stored entry '" + entry.name + "' has compressed size " + std::to_string(compressed) +
             " but uncompressed size " + std::to_string(uncompressed));

      // The data follows the local header, whose name and extra lengths may differ from the
      // central directory's (torch pads the local extra field to align the data).
      detail::ByteReader local(data_, size_, source_ + " (zip entry '" + entry.name + "')");
      local.seek(local_offset, "local header");
      if (local.u32("local header signature") != 0x04034b50u)
        fail("entry '" + entry.name + "' has no local header at byte " + std::to_string(local_offset));
      local.take(22, "local header");
      const std::uint16_t local_name = local.u16("local name length");
      const std::uint16_t local_extra = local.u16("local extra length");
      local.take(static_cast<std::uint64_t>(local_name) + local_extra, "local name and extra field");
      entry.data_offset = local.position();
      const std::uint64_t stored = entry.method == 0 ? entry.size : compressed;
      if (stored > size_ - entry.data_offset)
        fail("entry '" + entry.name + "' (" + std::to_string(stored) + " bytes at " + std::to_string(entry.data_offset) +
             ") runs past the end of the file (" + std::to_string(size_) + " bytes): truncated archive");
      if (!index_.emplace(entry.name, entries_.size()).second) fail("entry '" + entry.name + "' appears twice");
      entries_.push_back(std::move(entry));
    }
  }

  const std::uint8_t* data_;
  std::size_t size_;
  std::string source_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, std::size_t> index_;
};

}  // namespace clip
