#pragma once
// TensorWriter: builds a safetensors file in memory order and writes it atomically.

#include <clip/detail/atomic_write.hpp>
#include <clip/detail/compilation.hpp>
#include <clip/formats/detail/half.hpp>
#include <clip/formats/tensor_file.hpp>

// The header is written in clip_compiled under separate compilation (see config.hpp).
#if CLIP_HEADER_DEFINITIONS
#include <nlohmann/json.hpp>
#endif

#include <cstdint>
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace clip {

class TensorWriter {
 public:
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  /// Adds a floating-point tensor, stored as `dtype` (F32, F16 or BF16; rounding to nearest even).
  template <typename Scalar>
  void add(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
           const Scalar* values) {
    std::int64_t count = 1;
    for (std::int64_t dim : shape) count *= dim;
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(count) * dtype_size(dtype));
    for (std::int64_t i = 0; i < count; ++i) {
      const float value = static_cast<float>(values[i]);
      std::uint8_t* out = bytes.data() + i * dtype_size(dtype);
      if (dtype == DType::F32) {
        const std::uint32_t bits = detail::float_to_bits(value);
        for (int b = 0; b < 4; ++b) out[b] = static_cast<std::uint8_t>(bits >> (8 * b));
      } else if (dtype == DType::F16 || dtype == DType::BF16) {
        const std::uint16_t bits =
            dtype == DType::F16 ? detail::float_to_half(value) : detail::float_to_bfloat16(value);
        out[0] = static_cast<std::uint8_t>(bits);
        out[1] = static_cast<std::uint8_t>(bits >> 8);
      } else {
        throw Error("tensor '" + name + "': cannot store floating-point values as " + dtype_name(dtype));
      }
    }
    add_raw(name, dtype, std::move(shape), std::move(bytes));
  }

  /// Adds text (e.g. the BPE merges) as a 1-D U8 tensor.
  void add_text(const std::string& name, const std::string& text) {
    add_raw(name, DType::U8, {static_cast<std::int64_t>(text.size())},
            std::vector<std::uint8_t>(text.begin(), text.end()));
  }

  /// Adds already-encoded little-endian bytes.
  void add_raw(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
               std::vector<std::uint8_t> bytes) {
    if (!names_.insert(name).second) throw Error("tensor '" + name + "' added twice");
    entries_.push_back(Entry{name, dtype, std::move(shape), std::move(bytes)});
  }

  /// The complete file image. Wider dtypes come first so that F32 data stays 4-byte aligned
  /// (the header is padded to a multiple of 8) and can be used in place through the memory map.
  std::string serialize() const;

  /// Writes to a temporary file beside `path` and renames it into place.
  void write(const std::string& path) const { detail::write_file_atomically(path, serialize()); }

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::uint8_t> bytes;
  };
  std::map<std::string, std::string> metadata_;
  std::vector<Entry> entries_;
  std::set<std::string> names_;
};

#if CLIP_HEADER_DEFINITIONS

CLIP_INLINE std::string TensorWriter::serialize() const {
  std::vector<const Entry*> order;
  for (const Entry& entry : entries_) order.push_back(&entry);
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return dtype_size(a->dtype) > dtype_size(b->dtype);
  });
  nlohmann::ordered_json header;
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  std::uint64_t offset = 0;
  for (const Entry* entry : order) {
    header[entry->name] = {{"dtype", dtype_name(entry->dtype)},
                           {"shape", entry->shape},
                           {"data_offsets", {offset, offset + entry->bytes.size()}}};
    offset += entry->bytes.size();
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  std::string file;
  file.reserve(8 + header_text.size() + offset);
  for (int b = 0; b < 8; ++b) file.push_back(static_cast<char>(static_cast<std::uint64_t>(header_text.size()) >> (8 * b)));
  file += header_text;
  for (const Entry* entry : order) file.append(entry->bytes.begin(), entry->bytes.end());
  return file;
}

#endif  // CLIP_HEADER_DEFINITIONS

}  // namespace clip
