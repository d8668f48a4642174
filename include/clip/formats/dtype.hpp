#pragma once
// Element types of the tensors the readers meet: every dtype of the safetensors specification
// (which also covers PyTorch's storage types and GGUF's plain F32/F16), with their sizes and a
// widening of the floating-point ones to float. Free of Eigen so the parsers stay light.

#include <clip/formats/detail/half.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace clip {

enum class DType { F32, F16, BF16, U8, BOOL, I8, I16, U16, I32, U32, I64, U64, F64, F8_E4M3, F8_E5M2 };

inline const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::U8: return "U8";
    case DType::BOOL: return "BOOL";
    case DType::I8: return "I8";
    case DType::I16: return "I16";
    case DType::U16: return "U16";
    case DType::I32: return "I32";
    case DType::U32: return "U32";
    case DType::I64: return "I64";
    case DType::U64: return "U64";
    case DType::F64: return "F64";
    case DType::F8_E4M3: return "F8_E4M3";
    case DType::F8_E5M2: return "F8_E5M2";
  }
  return "?";
}

inline std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F64:
    case DType::I64:
    case DType::U64: return 8;
    case DType::F32:
    case DType::I32:
    case DType::U32: return 4;
    case DType::F16:
    case DType::BF16:
    case DType::I16:
    case DType::U16: return 2;
    case DType::U8:
    case DType::BOOL:
    case DType::I8:
    case DType::F8_E4M3:
    case DType::F8_E5M2: return 1;
  }
  return 1;
}

/// Parses a safetensors dtype name; false when it is none of the specification's.
inline bool parse_dtype_name(const std::string& text, DType& dtype) {
  static const DType all[] = {DType::F32, DType::F16,  DType::BF16, DType::U8,  DType::BOOL,
                              DType::I8,  DType::I16,  DType::U16,  DType::I32, DType::U32,
                              DType::I64, DType::U64,  DType::F64,  DType::F8_E4M3, DType::F8_E5M2};
  for (DType candidate : all) {
    if (text == dtype_name(candidate)) {
      dtype = candidate;
      return true;
    }
  }
  return false;
}

/// The floating-point types a model's weights may come in (the model file itself holds only
/// F32, F16 and BF16).
inline bool is_float_dtype(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16 || dtype == DType::F64;
}

namespace detail {

/// One little-endian element of a floating-point dtype widened to float (F64 rounded once).
inline float load_float(DType dtype, const std::uint8_t* data) {
  switch (dtype) {
    case DType::F32: {
      float value;
      std::memcpy(&value, data, 4);  // the readers accept little-endian files only
      return value;
    }
    case DType::F16: return half_to_float(static_cast<std::uint16_t>(data[0] | (data[1] << 8)));
    case DType::BF16: return bfloat16_to_float(static_cast<std::uint16_t>(data[0] | (data[1] << 8)));
    case DType::F64: {
      double value;
      std::memcpy(&value, data, 8);
      return static_cast<float>(value);
    }
    default: return 0.0f;
  }
}

}  // namespace detail
}  // namespace clip
