#pragma once
// TensorFile: a validated, read-only view of a safetensors file.
//
// The container is the standard safetensors one: an 8-byte
// little-endian header length N, N bytes of JSON mapping tensor names to
// {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data section), an optional
// "__metadata__" object of string values, then the raw little-endian data. Everything a hostile
// file could get wrong is checked before any tensor byte is touched.

#include <clip/formats/dtype.hpp>
#include <clip/detail/mapped_file.hpp>
#include <clip/detail/compilation.hpp>
#include <clip/error.hpp>

// The header is parsed in clip_compiled under separate compilation (see config.hpp).
#if CLIP_HEADER_DEFINITIONS
#include <nlohmann/json.hpp>
#else
#include <nlohmann/json_fwd.hpp>
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace clip {

/// Where one tensor lives in the file, after validation.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::size_t offset = 0;  ///< from the start of the data section
  std::size_t nbytes = 0;

  std::int64_t numel() const {
    std::int64_t count = 1;
    for (std::int64_t dim : shape) count *= dim;
    return count;
  }
};

/// "[128, 3, 16, 16]"
inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

class TensorFile {
 public:
  /// Largest JSON header accepted (16 MiB). Real headers are tens of kilobytes; the cap keeps a
  /// hostile length field from making us parse gigabytes, and bounds the parsed JSON's memory to
  /// a few hundred megabytes (460 MB at worst, measured: docs/reliability.md).
  static constexpr std::uint64_t max_header_bytes = std::uint64_t{16} << 20;
  /// Most tensors accepted in one file (a 256-layer model has about 6,200).
  static constexpr std::size_t max_tensor_count = 65536;

  /// Maps (or reads) `path` and validates its header; throws clip::Error naming the file.
  explicit TensorFile(const std::string& path) : path_(path), file_(path) { parse_header(); }

  /// Validates a safetensors image already in memory (taking it over); `name` is used in errors.
  static TensorFile from_bytes(std::vector<std::uint8_t> bytes, const std::string& name) {
    return TensorFile(name, detail::MappedFile::from_bytes(std::move(bytes)));
  }

  TensorFile(const TensorFile&) = delete;
  TensorFile& operator=(const TensorFile&) = delete;
  TensorFile(TensorFile&&) = default;
  TensorFile& operator=(TensorFile&&) = default;

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  bool contains(const std::string& name) const { return index_.count(name) != 0; }

  const TensorInfo& info(const std::string& name) const {
    auto found = index_.find(name);
    if (found == index_.end()) throw Error(path_ + ": missing tensor '" + name + "'");
    return tensors_[found->second];
  }

  /// The tensor's raw bytes, inside the validated data section.
  const std::uint8_t* bytes(const TensorInfo& tensor) const {
    return file_.data() + data_start_ + tensor.offset;
  }

  /// An F32 tensor's data in place when it is suitably aligned for float access, else nullptr.
  const float* mapped_f32(const TensorInfo& tensor) const {
    if (tensor.dtype != DType::F32) return nullptr;
    const std::uint8_t* data = bytes(tensor);
    if (reinterpret_cast<std::uintptr_t>(data) % alignof(float) != 0) return nullptr;
    return reinterpret_cast<const float*>(data);
  }

  /// Maps the tensor's pages in now: for data about to be read whole.
  void populate(const TensorInfo& tensor) const { file_.populate(bytes(tensor), static_cast<std::size_t>(tensor.nbytes)); }

  /// Lets the system drop the tensor's pages from memory: for data that was copied elsewhere.
  void release(const TensorInfo& tensor) const { file_.release(bytes(tensor), static_cast<std::size_t>(tensor.nbytes)); }

  /// Copies values [first, first + count) of a floating-point tensor (all by default) into
  /// `out`, converting to Scalar; a range past the tensor's end is cut at it.
  template <typename Scalar>
  void copy_to(const TensorInfo& tensor, Scalar* out, std::size_t first = 0,
               std::size_t count = std::numeric_limits<std::size_t>::max()) const {
    const auto numel = static_cast<std::size_t>(tensor.numel());
    first = std::min(first, numel);
    count = std::min(count, numel - first);
    const std::uint8_t* data = bytes(tensor) + first * dtype_size(tensor.dtype);
    if (!is_float_dtype(tensor.dtype))
      throw Error(path_ + ": tensor '" + tensor.name + "' is " + dtype_name(tensor.dtype) +
                  ", expected a floating-point tensor");
    if (tensor.dtype == DType::F32) {
      for (std::size_t i = 0; i < count; ++i) {
        float value;
        std::memcpy(&value, data + 4 * i, 4);
        out[i] = static_cast<Scalar>(value);
      }
      return;
    }
    const std::size_t size = dtype_size(tensor.dtype);
    for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<Scalar>(detail::load_float(tensor.dtype, data + size * i));
  }

  template <typename Scalar>
  std::vector<Scalar> read(const std::string& name) const {
    const TensorInfo& tensor = info(name);
    std::vector<Scalar> values(static_cast<std::size_t>(tensor.numel()));
    copy_to(tensor, values.data());
    return values;
  }

  /// A U8 tensor's bytes as a string (how text such as the BPE merges is stored).
  std::string read_text(const std::string& name) const {
    const TensorInfo& tensor = info(name);
    if (tensor.dtype != DType::U8)
      throw Error(path_ + ": tensor '" + name + "' is " + dtype_name(tensor.dtype) + ", expected U8");
    return std::string(reinterpret_cast<const char*>(bytes(tensor)), tensor.nbytes);
  }

 private:
  TensorFile(const std::string& name, detail::MappedFile file) : path_(name), file_(std::move(file)) {
    parse_header();
  }

  [[noreturn]] void fail(const std::string& what) const { throw Error(path_ + ": " + what); }

  /// Whether the first non-blank byte of `bytes` (within the first 64) is '{', as a JSON header's
  /// is; all blanks is not a verdict either way.
  static bool starts_like_json_object(const std::uint8_t* bytes, std::size_t size) {
    for (std::size_t i = 0; i < std::min<std::size_t>(size, 64); ++i)
      if (bytes[i] != ' ' && bytes[i] != '\t' && bytes[i] != '\n' && bytes[i] != '\r') return bytes[i] == '{';
    return true;
  }

  void parse_header();
  TensorInfo parse_entry(const std::string& name, const nlohmann::json& entry, std::size_t data_size) const;

  std::string path_;
  detail::MappedFile file_;
  std::size_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

#if CLIP_HEADER_DEFINITIONS

CLIP_INLINE void TensorFile::parse_header() {
  const std::size_t file_size = file_.size();
  if (file_size < 8) fail("too short to be a safetensors file (" + std::to_string(file_size) + " bytes)");
  std::uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | file_.data()[i];
  // An absurd length with no JSON object after it is another format: saying so beats
  // reporting its first bytes as a header length.
  if ((header_length > max_header_bytes || header_length > file_size - 8) &&
      !starts_like_json_object(file_.data() + 8, file_size - 8)) {
    const bool zip = file_.data()[0] == 'P' && file_.data()[1] == 'K';
    fail(std::string("not a safetensors file (no JSON header after the 8-byte length") +
         (zip ? "; it is a zip archive, e.g. a PyTorch checkpoint: convert it with clip-convert)" : ")"));
  }
  if (header_length > max_header_bytes)
    fail("header length " + std::to_string(header_length) + " exceeds the limit of " +
         std::to_string(max_header_bytes) + " bytes");
  if (header_length > file_size - 8)
    fail("header length " + std::to_string(header_length) + " runs past the end of the file (" +
         std::to_string(file_size) + " bytes)");
  data_start_ = 8 + static_cast<std::size_t>(header_length);
  const std::size_t data_size = file_size - data_start_;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file_.data() + 8, file_.data() + data_start_);
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail("header is not a JSON object");

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) fail("__metadata__ value '" + key + "' is not a string");
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    if (tensors_.size() == max_tensor_count)
      fail("more than " + std::to_string(max_tensor_count) + " tensors (TensorFile::max_tensor_count)");
    tensors_.push_back(parse_entry(name, entry, data_size));
  }

  // Spans must not overlap: two names for one byte would let a writer alias weights.
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& tensor : tensors_) by_offset.push_back(&tensor);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->offset < b->offset || (a->offset == b->offset && a->nbytes < b->nbytes);
  });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& previous = *by_offset[i - 1];
    const TensorInfo& current = *by_offset[i];
    if (current.nbytes > 0 && previous.offset + previous.nbytes > current.offset)
      fail("tensors '" + previous.name + "' and '" + current.name + "' overlap");
  }
  for (std::size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

CLIP_INLINE TensorInfo TensorFile::parse_entry(const std::string& name, const nlohmann::json& entry,
                                               std::size_t data_size) const {
  const std::string where = "tensor '" + name + "'";
  if (!entry.is_object()) fail(where + " is not an object");
  TensorInfo tensor;
  tensor.name = name;
  const auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string()) fail(where + " has no dtype");
  // Every dtype of the specification is accepted in the table; whether a tensor's dtype suits
  // its use is for the reader of that tensor to say.
  if (!parse_dtype_name(dtype->get<std::string>(), tensor.dtype))
    fail(where + " has dtype " + dtype->get<std::string>() + ", which the safetensors specification does not define");

  const auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array()) fail(where + " has no shape");
  // Count elements with an overflow guard: a hostile shape must not wrap to a small size.
  std::uint64_t count = 1;
  for (const auto& dim : *shape) {
    if (!dim.is_number_integer() || dim.get<std::int64_t>() < 0) fail(where + " has an invalid shape");
    const auto extent = dim.get<std::uint64_t>();
    if (extent != 0 && count > std::numeric_limits<std::uint64_t>::max() / 8 / extent)
      fail(where + " has an absurdly large shape");
    count *= extent;
    tensor.shape.push_back(static_cast<std::int64_t>(extent));
  }

  const auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
    fail(where + " has no valid data_offsets [begin, end]");
  const auto begin = (*offsets)[0].get<std::uint64_t>();
  const auto end = (*offsets)[1].get<std::uint64_t>();
  if (begin > end) fail(where + " has data_offsets with begin after end");
  if (end > data_size)
    fail(where + " ends at byte " + std::to_string(end) + " but the data section has " +
         std::to_string(data_size) + " bytes");
  const std::uint64_t expected = count * dtype_size(tensor.dtype);
  if (end - begin != expected)
    fail(where + " " + dtype_name(tensor.dtype) + " " + shape_string(tensor.shape) + " needs " +
         std::to_string(expected) + " bytes, its span has " + std::to_string(end - begin));
  tensor.offset = static_cast<std::size_t>(begin);
  tensor.nbytes = static_cast<std::size_t>(expected);
  return tensor;
}

#endif  // CLIP_HEADER_DEFINITIONS

}  // namespace clip
