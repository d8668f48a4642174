#pragma once
// Builds tar archives byte by byte for tests (ustar headers with correct checksums, GNU long
// names, pax headers), so each test states exactly what the archive holds.

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace clip_test {

class TarBuilder {
 public:
  /// A regular file; names over 100 bytes need gnu_long_name or pax_path.
  TarBuilder& file(const std::string& path, const std::string& data, char type = '0') {
    header(path, data.size(), type, "");
    body(data);
    return *this;
  }
  TarBuilder& file(const std::string& path, const std::vector<std::uint8_t>& data) {
    return file(path, std::string(data.begin(), data.end()));
  }
  /// ustar name split into prefix and name.
  TarBuilder& file_with_prefix(const std::string& prefix, const std::string& name, const std::string& data) {
    header(name, data.size(), '0', prefix);
    body(data);
    return *this;
  }
  TarBuilder& gnu_long_name(const std::string& path, const std::string& data) {
    const std::string name = path + '\0';
    header("././@LongLink", name.size(), 'L', "");
    body(name);
    return file(path.substr(0, 99), data);
  }
  TarBuilder& pax_path(const std::string& path, const std::string& data) {
    std::string record = " path=" + path + "\n";
    std::size_t length = record.size() + 1;
    while (std::to_string(length).size() + record.size() != length) ++length;
    record = std::to_string(length) + record;
    header("PaxHeaders/x", record.size(), 'x', "");
    body(record);
    return file("truncated-name-ignored", data);
  }
  TarBuilder& directory(const std::string& path) {
    header(path, 0, '5', "");
    return *this;
  }
  /// Header claims `claimed` bytes but only `data` follows (then the archive stops).
  TarBuilder& truncated_file(const std::string& path, std::size_t claimed, const std::string& data) {
    header(path, claimed, '0', "");
    bytes_ += data;
    return *this;
  }
  TarBuilder& end() {
    bytes_.append(1024, '\0');
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

  void write(const std::string& path) const { std::ofstream(path, std::ios::binary) << bytes_; }
  void write_gzip(const std::string& path) const {
    gzFile file = gzopen(path.c_str(), "wb");
    gzwrite(file, bytes_.data(), static_cast<unsigned>(bytes_.size()));
    gzclose(file);
  }

 private:
  void header(const std::string& name, std::size_t size, char type, const std::string& prefix) {
    char h[512];
    std::memset(h, 0, sizeof h);
    std::memcpy(h, name.data(), std::min<std::size_t>(name.size(), 100));
    std::snprintf(h + 100, 8, "%07o", 0644);
    std::snprintf(h + 108, 8, "%07o", 0);
    std::snprintf(h + 116, 8, "%07o", 0);
    std::snprintf(h + 124, 12, "%011llo", static_cast<unsigned long long>(size));
    std::snprintf(h + 136, 12, "%011o", 0);
    h[156] = type;
    std::memcpy(h + 257, "ustar", 6);
    h[263] = '0';
    h[264] = '0';
    std::memcpy(h + 345, prefix.data(), std::min<std::size_t>(prefix.size(), 155));
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h + 148, 8, "%06o", sum);
    bytes_.append(h, sizeof h);
  }
  void body(const std::string& data) {
    bytes_ += data;
    bytes_.append((512 - data.size() % 512) % 512, '\0');
  }
  std::string bytes_;
};

}  // namespace clip_test
