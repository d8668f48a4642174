#pragma once
// The minimum of NumPy's .npy format the sharded output needs: a float32 [rows, cols] C-order
// array (format version 1.0), written to a string and read back through a memory map.
// (A general .npy reader/writer is being added under formats/; this one only knows <f4 2-D.)

#include <clip/detail/mapped_file.hpp>
#include <clip/error.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace clip::detail {

/// The bytes of a float32 [rows, cols] .npy file holding `values` (row-major, rows * cols).
inline std::string npy_float32_bytes(const float* values, std::size_t rows, std::size_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                       std::to_string(cols) + "), }";
  header.append(63 - (10 + header.size()) % 64, ' ');  // the data starts at a multiple of 64
  header += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file.push_back(static_cast<char>(header.size() & 0xFF));
  file.push_back(static_cast<char>(header.size() >> 8));
  file += header;
  file.append(reinterpret_cast<const char*>(values), rows * cols * sizeof(float));
  return file;
}

/// A float32 [rows, cols] .npy file, memory-mapped; data() points into the map.
class NpyFloat32View {
 public:
  explicit NpyFloat32View(const std::string& path) : path_(path), file_(std::make_shared<MappedFile>(path)) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(file_->data());
    const std::size_t size = file_->size();
    if (size < 10 || std::memcmp(bytes, "\x93NUMPY", 6) != 0) throw Error(path + ": not a .npy file");
    std::size_t header_size = 0, header_start = 0;
    if (bytes[6] == 1) {
      header_size = bytes[8] | (bytes[9] << 8);
      header_start = 10;
    } else if (bytes[6] == 2 || bytes[6] == 3) {
      if (size < 12) throw Error(path + ": truncated .npy header");
      header_size = bytes[8] | (bytes[9] << 8) | (std::size_t{bytes[10]} << 16) | (std::size_t{bytes[11]} << 24);
      header_start = 12;
    } else {
      throw Error(path + ": unknown .npy version " + std::to_string(bytes[6]));
    }
    if (header_size > size - header_start) throw Error(path + ": truncated .npy header");
    const std::string header(reinterpret_cast<const char*>(bytes) + header_start, header_size);
    if (header.find("'descr': '<f4'") == std::string::npos)
      throw Error(path + ": .npy data is not little-endian float32 ('<f4')");
    if (header.find("'fortran_order': False") == std::string::npos)
      throw Error(path + ": .npy data is in Fortran order");
    const std::size_t shape = header.find("'shape': (");
    if (shape == std::string::npos) throw Error(path + ": .npy header has no shape");
    std::size_t pos = shape + 10;
    std::uint64_t dims[2] = {0, 0};
    for (int d = 0; d < 2; ++d) {
      while (pos < header.size() && header[pos] == ' ') ++pos;
      const std::size_t start = pos;
      while (pos < header.size() && header[pos] >= '0' && header[pos] <= '9' && dims[d] < (std::uint64_t{1} << 40))
        dims[d] = dims[d] * 10 + (header[pos++] - '0');
      if (pos == start) throw Error(path + ": .npy shape is not 2-D");
      while (pos < header.size() && header[pos] == ' ') ++pos;
      if (pos >= header.size() || header[pos] != (d == 0 ? ',' : ')')) {
        if (!(d == 1 && header[pos] == ',')) throw Error(path + ": .npy shape is not 2-D");
      }
      ++pos;
    }
    rows_ = dims[0];
    cols_ = dims[1];
    offset_ = header_start + header_size;
    const std::uint64_t needed = rows_ * cols_ * sizeof(float);
    if (needed > size - offset_)
      throw Error(path + ": .npy data of " + std::to_string(rows_) + "x" + std::to_string(cols_) + " needs " +
                  std::to_string(needed) + " bytes, file has " + std::to_string(size - offset_));
    if (offset_ % alignof(float) != 0) throw Error(path + ": .npy data is not aligned to 4 bytes");
  }

  std::size_t rows() const { return static_cast<std::size_t>(rows_); }
  std::size_t cols() const { return static_cast<std::size_t>(cols_); }
  const float* data() const { return reinterpret_cast<const float*>(static_cast<const std::uint8_t*>(file_->data()) + offset_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  std::uint64_t rows_ = 0, cols_ = 0;
  std::size_t offset_ = 0;
};

}  // namespace clip::detail
