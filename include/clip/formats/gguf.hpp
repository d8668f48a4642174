#pragma once
// GgufFile: a GGUF file (versions 2 and 3, as llama.cpp's gguf library and clip.cpp's converter
// write them), read as data: the key/value metadata and the tensor table, every count, length
// and offset checked against the file. Tensors are StoredTensors into the mapped file; the
// quantized block types q8_0, q4_0, q4_1, q5_0 and q5_1 are dequantized to float on reading
// (ggml's dequantize_row_* arithmetic).
//
// Layout: "GGUF", u32 version, u64 tensor count, u64 key/value count, the key/values
// (u64-length string key, u32 type, value; arrays are u32 element type, u64 count, elements),
// the tensor infos (name, u32 n_dims, u64 ne[n_dims] fastest first, u32 type, u64 offset into
// the data), padding to general.alignment (default 32), the data.

#include <clip/detail/mapped_file.hpp>
#include <clip/error.hpp>
#include <clip/formats/detail/bytes.hpp>
#include <clip/formats/detail/half.hpp>
#include <clip/formats/stored_tensor.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace clip {

struct GgufValue {
  enum class Type : std::uint32_t { U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64 };
  Type type = Type::U8;
  std::uint64_t unsigned_value = 0;
  std::int64_t signed_value = 0;
  double float_value = 0;
  std::string text;
  std::vector<GgufValue> items;

  bool is_integer() const {
    return type == Type::U8 || type == Type::I8 || type == Type::U16 || type == Type::I16 || type == Type::U32 ||
           type == Type::I32 || type == Type::U64 || type == Type::I64;
  }
  bool is_number() const { return is_integer() || type == Type::F32 || type == Type::F64; }
};

struct GgufTensor {
  std::string name;
  std::uint32_t type = 0;               ///< ggml type: 0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 6 Q5_0, 7 Q5_1, 8 Q8_0
  std::vector<std::uint64_t> ne;        ///< ggml dimensions, fastest first (torch's shape reversed)
  std::uint64_t offset = 0;             ///< from the start of the data section
  std::uint64_t nbytes = 0;
};

inline const char* ggml_type_name(std::uint32_t type) {
  switch (type) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 6: return "Q5_0";
    case 7: return "Q5_1";
    case 8: return "Q8_0";
    default: return "unsupported";
  }
}

namespace detail {

/// Elements per block and bytes per block of the ggml types clip reads.
inline bool ggml_block(std::uint32_t type, std::uint64_t& elements, std::uint64_t& bytes) {
  switch (type) {
    case 0: elements = 1, bytes = 4; return true;
    case 1: elements = 1, bytes = 2; return true;
    case 2: elements = 32, bytes = 18; return true;  // f16 d, 16 bytes of 4-bit q
    case 3: elements = 32, bytes = 20; return true;  // f16 d, f16 m, 16 bytes
    case 6: elements = 32, bytes = 22; return true;  // f16 d, u32 high bits, 16 bytes
    case 7: elements = 32, bytes = 24; return true;  // f16 d, f16 m, u32 high bits, 16 bytes
    case 8: elements = 32, bytes = 34; return true;  // f16 d, 32 int8
    default: return false;
  }
}

inline float ggml_half(const std::uint8_t* at) { return half_to_float(static_cast<std::uint16_t>(at[0] | (at[1] << 8))); }

/// ggml's dequantize_row_q*: `blocks` blocks of 32 values from `in` to `out`.
inline void dequantize_blocks(std::uint32_t type, const std::uint8_t* in, std::uint64_t blocks, float* out) {
  for (std::uint64_t b = 0; b < blocks; ++b, out += 32) {
    switch (type) {
      case 8: {
        const std::uint8_t* block = in + b * 34;
        const float d = ggml_half(block);
        for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(static_cast<std::int8_t>(block[2 + j])) * d;
        break;
      }
      case 2: {
        const std::uint8_t* block = in + b * 18;
        const float d = ggml_half(block);
        for (int j = 0; j < 16; ++j) {
          out[j] = static_cast<float>((block[2 + j] & 0x0F) - 8) * d;
          out[j + 16] = static_cast<float>((block[2 + j] >> 4) - 8) * d;
        }
        break;
      }
      case 3: {
        const std::uint8_t* block = in + b * 20;
        const float d = ggml_half(block), m = ggml_half(block + 2);
        for (int j = 0; j < 16; ++j) {
          out[j] = static_cast<float>(block[4 + j] & 0x0F) * d + m;
          out[j + 16] = static_cast<float>(block[4 + j] >> 4) * d + m;
        }
        break;
      }
      case 6:
      case 7: {
        const bool has_min = type == 7;
        const std::uint8_t* block = in + b * (has_min ? 24 : 22);
        const float d = ggml_half(block), m = has_min ? ggml_half(block + 2) : 0.0f;
        const std::uint8_t* high = block + (has_min ? 4 : 2);
        const std::uint32_t qh = high[0] | (high[1] << 8) | (high[2] << 16) | (static_cast<std::uint32_t>(high[3]) << 24);
        const std::uint8_t* qs = high + 4;
        for (int j = 0; j < 16; ++j) {
          const std::uint8_t h0 = static_cast<std::uint8_t>(((qh >> j) << 4) & 0x10);
          const std::uint8_t h1 = static_cast<std::uint8_t>((qh >> (j + 12)) & 0x10);
          const int x0 = (qs[j] & 0x0F) | h0, x1 = (qs[j] >> 4) | h1;
          if (has_min) {
            out[j] = static_cast<float>(x0) * d + m;
            out[j + 16] = static_cast<float>(x1) * d + m;
          } else {
            out[j] = static_cast<float>(x0 - 16) * d;
            out[j + 16] = static_cast<float>(x1 - 16) * d;
          }
        }
        break;
      }
      default: break;
    }
  }
}

}  // namespace detail

class GgufFile {
 public:
  static constexpr std::uint64_t max_tensors = 1u << 16;
  static constexpr std::uint64_t max_keys = 1u << 16;
  static constexpr std::uint64_t max_string = 1u << 20;

  explicit GgufFile(const std::string& path) : file_(std::make_unique<detail::MappedFile>(path)), source_(path) {
    parse(file_->data(), file_->size());
  }
  GgufFile(const std::uint8_t* data, std::size_t size, std::string source) : source_(std::move(source)) { parse(data, size); }

  static bool looks_like_gguf(const std::uint8_t* data, std::size_t size) {
    return size >= 4 && std::memcmp(data, "GGUF", 4) == 0;
  }

  const std::string& source() const { return source_; }
  std::uint32_t version() const { return version_; }
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }

  const GgufValue* find(const std::string& key) const {
    auto found = metadata_.find(key);
    return found == metadata_.end() ? nullptr : &found->second;
  }

  /// The tensor with torch's dimension order (ne reversed), F32/F16 in place, quantized types
  /// through a dequantizing decoder.
  StoredTensor view(const GgufTensor& tensor) const {
    StoredTensor view;
    for (std::size_t d = tensor.ne.size(); d-- > 0;) view.shape.push_back(static_cast<std::int64_t>(tensor.ne[d]));
    view.stride = contiguous_strides(view.shape);
    const std::uint8_t* bytes = data_ + tensor.offset;
    if (tensor.type == 0 || tensor.type == 1) {
      view.dtype = tensor.type == 0 ? DType::F32 : DType::F16;
      view.storage = bytes;
      view.storage_numel = tensor.nbytes / dtype_size(view.dtype);
    } else {
      view.dtype = DType::F32;
      view.encoding = ggml_type_name(tensor.type);
      const std::uint32_t type = tensor.type;
      const std::uint64_t blocks = tensor.nbytes / (type == 8 ? 34 : type == 2 ? 18 : type == 3 ? 20 : type == 6 ? 22 : 24);
      view.decode = [type, bytes, blocks](float* out) { detail::dequantize_blocks(type, bytes, blocks, out); };
    }
    check_stored_tensor(view, source_ + ": tensor '" + tensor.name + "'");
    return view;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(source_ + ": " + what); }

  std::string read_string(detail::ByteReader& in, const char* what) {
    const std::uint64_t length = in.u64(what);
    if (length > max_string) fail(std::string(what) + " of " + std::to_string(length) + " bytes is too long");
    return in.string(length, what);
  }

  GgufValue read_value(detail::ByteReader& in, std::uint32_t type, int depth) {
    using T = GgufValue::Type;
    GgufValue value;
    if (type > 12) fail("unknown metadata value type " + std::to_string(type));
    value.type = static_cast<T>(type);
    switch (value.type) {
      case T::U8: value.unsigned_value = in.u8("u8"); value.signed_value = static_cast<std::int64_t>(value.unsigned_value); break;
      case T::I8: value.signed_value = static_cast<std::int8_t>(in.u8("i8")); break;
      case T::U16: value.unsigned_value = in.u16("u16"); value.signed_value = static_cast<std::int64_t>(value.unsigned_value); break;
      case T::I16: value.signed_value = static_cast<std::int16_t>(in.u16("i16")); break;
      case T::U32: value.unsigned_value = in.u32("u32"); value.signed_value = static_cast<std::int64_t>(value.unsigned_value); break;
      case T::I32: value.signed_value = static_cast<std::int32_t>(in.u32("i32")); break;
      case T::U64: value.unsigned_value = in.u64("u64"); value.signed_value = static_cast<std::int64_t>(value.unsigned_value); break;
      case T::I64: value.signed_value = static_cast<std::int64_t>(in.u64("i64")); break;
      case T::F32: {
        const std::uint32_t bits = in.u32("f32");
        value.float_value = detail::bits_to_float(bits);
        break;
      }
      case T::F64: {
        const std::uint64_t bits = in.u64("f64");
        std::memcpy(&value.float_value, &bits, 8);
        break;
      }
      case T::Bool: value.unsigned_value = in.u8("bool") != 0; break;
      case T::String: value.text = read_string(in, "string value"); break;
      case T::Array: {
        if (depth > 4) fail("metadata arrays nested too deeply");
        const std::uint32_t element_type = in.u32("array element type");
        const std::uint64_t count = in.u64("array length");
        // Every element takes at least one byte, so a longer claim is a lie.
        if (count > in.remaining()) fail("metadata array claims " + std::to_string(count) + " elements, the file is shorter");
        value.items.reserve(static_cast<std::size_t>(count));
        for (std::uint64_t i = 0; i < count; ++i) value.items.push_back(read_value(in, element_type, depth + 1));
        break;
      }
    }
    if (value.type == T::I8 || value.type == T::I16 || value.type == T::I32 || value.type == T::I64)
      value.unsigned_value = static_cast<std::uint64_t>(value.signed_value);
    if (value.is_integer()) value.float_value = static_cast<double>(value.signed_value);
    return value;
  }

  void parse(const std::uint8_t* data, std::size_t size) {
    detail::ByteReader in(data, size, source_);
    if (!looks_like_gguf(data, size)) fail("not a GGUF file (no GGUF magic)");
    in.take(4, "magic");
    version_ = in.u32("version");
    if (version_ != 2 && version_ != 3) fail("GGUF version " + std::to_string(version_) + " is not supported (2 and 3 are)");
    const std::uint64_t tensor_count = in.u64("tensor count");
    const std::uint64_t key_count = in.u64("metadata count");
    if (tensor_count > max_tensors) fail("claims " + std::to_string(tensor_count) + " tensors");
    if (key_count > max_keys) fail("claims " + std::to_string(key_count) + " metadata keys");
    for (std::uint64_t i = 0; i < key_count; ++i) {
      std::string key = read_string(in, "metadata key");
      const std::uint32_t type = in.u32("metadata type");
      GgufValue value = read_value(in, type, 0);
      if (!metadata_.emplace(std::move(key), std::move(value)).second) fail("metadata key appears twice");
    }
    std::map<std::string, std::size_t> names;
    for (std::uint64_t i = 0; i < tensor_count; ++i) {
      GgufTensor tensor;
      tensor.name = read_string(in, "tensor name");
      const std::uint32_t dims = in.u32("tensor dimensions");
      if (dims == 0 || dims > 4) fail("tensor '" + tensor.name + "' has " + std::to_string(dims) + " dimensions (1 to 4 allowed)");
      std::uint64_t count = 1;
      for (std::uint32_t d = 0; d < dims; ++d) {
        tensor.ne.push_back(in.u64("tensor dimension"));
        if (!detail::checked_multiply(count, tensor.ne.back(), count) || count > (1ull << 40))
          fail("tensor '" + tensor.name + "' has an absurd shape");
      }
      tensor.type = in.u32("tensor type");
      tensor.offset = in.u64("tensor offset");
      std::uint64_t block_elements = 0, block_bytes = 0;
      if (!detail::ggml_block(tensor.type, block_elements, block_bytes))
        fail("tensor '" + tensor.name + "' has ggml type " + std::to_string(tensor.type) +
             " (clip reads F32, F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1)");
      if (tensor.ne[0] % block_elements != 0)
        fail("tensor '" + tensor.name + "' rows of " + std::to_string(tensor.ne[0]) + " are not whole " +
             ggml_type_name(tensor.type) + " blocks");
      tensor.nbytes = count / block_elements * block_bytes;
      if (!names.emplace(tensor.name, tensors_.size()).second) fail("tensor '" + tensor.name + "' appears twice");
      tensors_.push_back(std::move(tensor));
    }
    std::uint64_t alignment = 32;
    if (const GgufValue* value = find("general.alignment")) {
      if (!value->is_integer() || value->unsigned_value == 0 || value->unsigned_value > 65536 ||
          (value->unsigned_value & (value->unsigned_value - 1)) != 0)
        fail("general.alignment is not a power of two up to 65536");
      alignment = value->unsigned_value;
    }
    const std::uint64_t data_start = (in.position() + alignment - 1) / alignment * alignment;
    if (data_start > size) fail("data section starts past the end of the file");
    data_ = data + data_start;
    const std::uint64_t data_size = size - data_start;
    for (const GgufTensor& tensor : tensors_)
      if (tensor.offset > data_size || tensor.nbytes > data_size - tensor.offset)
        fail("tensor '" + tensor.name + "' (" + std::to_string(tensor.nbytes) + " bytes at " + std::to_string(tensor.offset) +
             ") runs past the end of the data (" + std::to_string(data_size) + " bytes)");
  }

  std::unique_ptr<detail::MappedFile> file_;
  std::string source_;
  std::uint32_t version_ = 0;
  const std::uint8_t* data_ = nullptr;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensor> tensors_;
};

}  // namespace clip
