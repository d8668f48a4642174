#pragma once
// NumPy's .npy format for [rows, cols] float32/float64 matrices, the embedding files clip-embed
// writes and other CLIP tools read (clip-retrieval, open_clip's scripts). Reading maps the file
// and hands out the data in place; nothing of a 4 GB file is copied.
//
// Layout (numpy's format.py): magic "\x93NUMPY", major, minor, header length (2 bytes LE in
// version 1, 4 bytes in 2 and 3), a Python dict literal such as
//     {'descr': '<f4', 'fortran_order': False, 'shape': (600, 64), }
// padded with spaces to a newline, then the raw little-endian values in C order.
//
// parse_npy_header() works on a byte buffer and never reads past it, so it can be fuzzed.

#include <clip/detail/atomic_write.hpp>
#include <clip/detail/compilation.hpp>
#include <clip/detail/mapped_file.hpp>
#include <clip/error.hpp>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace clip {

enum class NpyType { Float32, Float64 };

struct NpyHeader {
  NpyType type = NpyType::Float32;
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
  std::size_t data_offset = 0;  // bytes before the first value
  std::size_t item_size() const { return type == NpyType::Float32 ? 4 : 8; }
};


/// Validates a whole .npy file held in [bytes, bytes + size) as a float32/float64 C-order
/// [rows, cols] matrix and returns where its values are. `name` goes into error messages.
NpyHeader parse_npy_header(const std::uint8_t* bytes, std::size_t size, const std::string& name);

/// A memory-mapped .npy matrix. The values stay in the mapping; data<T>() is valid while it lives.
class NpyFile {
 public:
  explicit NpyFile(const std::string& path) : file_(path), header_(parse_npy_header(file_.data(), file_.size(), path)) {}

  const NpyHeader& header() const { return header_; }
  NpyType type() const { return header_.type; }
  std::uint64_t rows() const { return header_.rows; }
  std::uint64_t cols() const { return header_.cols; }

  /// The values in C order; T must be float for Float32 files and double for Float64 files.
  template <typename T>
  const T* data() const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "npy data is float or double");
    if ((std::is_same_v<T, float>) != (header_.type == NpyType::Float32)) throw Error("NpyFile::data: wrong element type");
    return reinterpret_cast<const T*>(file_.data() + header_.data_offset);
  }

 private:
  detail::MappedFile file_;
  NpyHeader header_;
};

/// The header of a [rows, cols] .npy file (version 1.0) of `type`: the bytes before the values,
/// padded so the values start at a multiple of 64. For writers that stream the values after it.
std::string npy_header(NpyType type, std::uint64_t rows, std::uint64_t cols);

/// The bytes of a float32 (or float64) [rows, cols] .npy file, values in C order.
template <typename T>
std::string npy_bytes(const T* values, std::uint64_t rows, std::uint64_t cols) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "npy_bytes writes float or double");
  std::string file = npy_header(std::is_same_v<T, float> ? NpyType::Float32 : NpyType::Float64, rows, cols);
  file.append(reinterpret_cast<const char*>(values), static_cast<std::size_t>(rows * cols) * sizeof(T));
  return file;
}

/// Writes a [rows, cols] .npy file atomically (temporary file, then rename).
template <typename T>
void write_npy(const std::string& path, const T* values, std::uint64_t rows, std::uint64_t cols) {
  detail::write_file_atomically(path, npy_bytes(values, rows, cols));
}

// Compiled once in clip_compiled under separate compilation (clip/detail/compilation.hpp).
#if CLIP_HEADER_DEFINITIONS

namespace detail {

/// numpy itself refuses headers above 10 000 bytes unless told otherwise; a real [n, d] header
/// is under 128. A larger one is hostile or not an embedding file.
constexpr std::size_t kMaxNpyHeaderBytes = 65536;

/// A cursor over the header dict: just enough of Python's literal syntax for numpy's headers.
class NpyDictParser {
 public:
  NpyDictParser(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(name_ + ": not a valid .npy header (" + what + ")");
  }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) ++pos_;
  }
  bool peek(char c) {
    skip_space();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  void expect(char c) {
    if (!peek(c)) fail(std::string("expected '") + c + "' at byte " + std::to_string(pos_));
    ++pos_;
  }
  std::string string_literal() {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) fail("expected a quoted string");
    const char quote = text_[pos_++];
    const std::size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string value(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return value;
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair<std::string_view, bool>{"True", true}, {"False", false}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    fail("expected True or False");
  }
  std::uint64_t integer() {
    skip_space();
    const std::size_t start = pos_;
    std::uint64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      const std::uint64_t digit = static_cast<std::uint64_t>(text_[pos_] - '0');
      if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) fail("shape value too large");
      value = value * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) fail("expected a non-negative integer in the shape");
    if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2's long suffix
    return value;
  }
  std::vector<std::uint64_t> tuple() {
    expect('(');
    std::vector<std::uint64_t> values;
    while (!peek(')')) {
      if (values.size() >= 32) fail("shape has too many dimensions");
      values.push_back(integer());
      if (!peek(',')) break;
      expect(',');
    }
    expect(')');
    return values;
  }
  bool at_end() {
    skip_space();
    return pos_ >= text_.size();
  }

 private:
  std::string_view text_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

inline std::uint64_t read_le(const std::uint8_t* bytes, int count) {
  std::uint64_t value = 0;
  for (int i = count - 1; i >= 0; --i) value = value << 8 | bytes[i];
  return value;
}

}  // namespace detail

CLIP_INLINE NpyHeader parse_npy_header(const std::uint8_t* bytes, std::size_t size, const std::string& name) {
  static const char magic[] = "\x93NUMPY";
  if (size < 10 || std::memcmp(bytes, magic, 6) != 0) throw Error(name + ": not a .npy file (no \\x93NUMPY magic)");
  const int major = bytes[6];
  if (major < 1 || major > 3) throw Error(name + ": unsupported .npy format version " + std::to_string(major));
  const int length_bytes = major == 1 ? 2 : 4;
  const std::size_t prefix = 8 + static_cast<std::size_t>(length_bytes);
  if (size < prefix) throw Error(name + ": truncated .npy header");
  const std::uint64_t header_length = detail::read_le(bytes + 8, length_bytes);
  if (header_length > detail::kMaxNpyHeaderBytes)
    throw Error(name + ": .npy header of " + std::to_string(header_length) + " bytes is larger than the " +
                std::to_string(detail::kMaxNpyHeaderBytes) + " allowed");
  if (header_length > size - prefix)
    throw Error(name + ": truncated: the .npy header needs " + std::to_string(header_length) + " bytes, file has " +
                std::to_string(size - prefix) + " after the prefix");

  const std::string_view text(reinterpret_cast<const char*>(bytes + prefix), static_cast<std::size_t>(header_length));
  detail::NpyDictParser parser(text, name);
  std::string descr;
  bool fortran_order = false, have_descr = false, have_order = false, have_shape = false;
  std::vector<std::uint64_t> shape;
  parser.expect('{');
  while (!parser.peek('}')) {
    const std::string key = parser.string_literal();
    parser.expect(':');
    if (key == "descr") {
      if (parser.peek('[')) parser.fail("structured dtypes are not float matrices");
      descr = parser.string_literal();
      have_descr = true;
    } else if (key == "fortran_order") {
      fortran_order = parser.boolean();
      have_order = true;
    } else if (key == "shape") {
      shape = parser.tuple();
      have_shape = true;
    } else {
      parser.fail("unknown key '" + key + "'");
    }
    if (!parser.peek(',')) break;
    parser.expect(',');
  }
  parser.expect('}');
  if (!parser.at_end()) parser.fail("text after the dict");
  if (!have_descr || !have_order || !have_shape) parser.fail("needs descr, fortran_order and shape");

  NpyHeader header;
  if (descr == "<f4" || descr == "f4")
    header.type = NpyType::Float32;
  else if (descr == "<f8" || descr == "f8")
    header.type = NpyType::Float64;
  else if (descr == ">f4" || descr == ">f8")
    throw Error(name + ": big-endian data ('" + descr + "') is not supported; save it little-endian");
  else
    throw Error(name + ": dtype '" + descr + "' is not float32 or float64");
  if (fortran_order) throw Error(name + ": Fortran-order arrays are not supported; save it in C order (np.ascontiguousarray)");
  if (shape.size() != 2)
    throw Error(name + ": expected a 2-d [n, d] array, shape has " + std::to_string(shape.size()) + " dimensions");
  header.rows = shape[0];
  header.cols = shape[1];
  header.data_offset = prefix + static_cast<std::size_t>(header_length);
  if (header.data_offset % header.item_size() != 0) throw Error(name + ": .npy data is not aligned to its item size");

  const std::uint64_t available = (size - header.data_offset) / header.item_size();
  if (header.cols != 0 && header.rows > std::numeric_limits<std::uint64_t>::max() / header.cols)
    throw Error(name + ": shape (" + std::to_string(header.rows) + ", " + std::to_string(header.cols) + ") overflows");
  const std::uint64_t values = header.rows * header.cols;
  if (values > available || (size - header.data_offset) % header.item_size() != 0 ||
      values * header.item_size() != size - header.data_offset)
    throw Error(name + ": truncated or padded: shape (" + std::to_string(header.rows) + ", " + std::to_string(header.cols) +
                ") needs " + std::to_string(values) + " values of " + std::to_string(header.item_size()) + " bytes, file has " +
                std::to_string(size - header.data_offset) + " bytes of data");
  return header;
}

CLIP_INLINE std::string npy_header(NpyType type, std::uint64_t rows, std::uint64_t cols) {
  std::string header = std::string("{'descr': '") + (type == NpyType::Float32 ? "<f4" : "<f8") +
                       "', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file.push_back(static_cast<char>(header.size() & 0xFF));
  file.push_back(static_cast<char>(header.size() >> 8));
  return file + header;
}

#endif  // CLIP_HEADER_DEFINITIONS

}  // namespace clip
