#pragma once
// Bounds-checked little-endian reads from a byte span, for the binary format parsers. Every read
// checks the span first, so a truncated or lying file ends in clip::Error, never a wild read.

#include <clip/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace clip::detail {

/// a * b, or false when it does not fit in 64 bits (sizes a hostile file claims).
inline bool checked_multiply(std::uint64_t a, std::uint64_t b, std::uint64_t& result) {
  if (a != 0 && b > UINT64_MAX / a) return false;
  result = a * b;
  return true;
}

class ByteReader {
 public:
  ByteReader(const std::uint8_t* data, std::size_t size, std::string source)
      : data_(data), size_(size), source_(std::move(source)) {}

  std::size_t position() const { return position_; }
  std::size_t size() const { return size_; }
  std::size_t remaining() const { return size_ - position_; }
  const std::uint8_t* data() const { return data_; }
  const std::string& source() const { return source_; }

  void seek(std::uint64_t position, const char* what) {
    if (position > size_)
      fail(std::string(what) + " at byte " + std::to_string(position) + " is past the end (" +
           std::to_string(size_) + " bytes)");
    position_ = static_cast<std::size_t>(position);
  }

  void need(std::uint64_t bytes, const char* what) const {
    if (bytes > remaining())
      fail(std::string("truncated: ") + what + " needs " + std::to_string(bytes) + " bytes at byte " +
           std::to_string(position_) + ", " + std::to_string(remaining()) + " remain");
  }

  const std::uint8_t* take(std::uint64_t bytes, const char* what) {
    need(bytes, what);
    const std::uint8_t* at = data_ + position_;
    position_ += static_cast<std::size_t>(bytes);
    return at;
  }

  template <typename T>
  T read(const char* what) {
    const std::uint8_t* at = take(sizeof(T), what);
    T value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) value |= static_cast<T>(static_cast<T>(at[i]) << (8 * i));
    return value;
  }

  std::uint8_t u8(const char* what) { return read<std::uint8_t>(what); }
  std::uint16_t u16(const char* what) { return read<std::uint16_t>(what); }
  std::uint32_t u32(const char* what) { return read<std::uint32_t>(what); }
  std::uint64_t u64(const char* what) { return read<std::uint64_t>(what); }

  std::string string(std::uint64_t bytes, const char* what) {
    const std::uint8_t* at = take(bytes, what);
    return std::string(reinterpret_cast<const char*>(at), static_cast<std::size_t>(bytes));
  }

  [[noreturn]] void fail(const std::string& what) const { throw Error(source_ + ": " + what); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t position_ = 0;
  std::string source_;
};

}  // namespace clip::detail
