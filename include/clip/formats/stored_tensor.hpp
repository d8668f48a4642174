#pragma once
// StoredTensor: one tensor of a checkpoint as its reader found it, whatever the container: an
// element type, a shape, strides (in elements) into a storage, and the storage's bytes (a view
// into a mapped file, never a copy). Quantized GGUF tensors carry a decoder instead.
// check_stored_tensor() proves every element lies inside the storage before anything is read, so
// absurd shapes, strides or offsets from a hostile file are errors, not wild reads.

#include <clip/error.hpp>
#include <clip/formats/detail/bytes.hpp>
#include <clip/formats/dtype.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace clip {

struct StoredTensor {
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> stride;     ///< in elements; C order when contiguous
  std::int64_t offset = 0;              ///< of the first element, in elements
  const std::uint8_t* storage = nullptr;
  std::uint64_t storage_numel = 0;      ///< elements the storage really holds
  /// For encodings that are not plain elements (GGUF's quantized blocks): fills numel() floats.
  std::function<void(float*)> decode;
  std::string encoding;                 ///< what `decode` reads ("Q8_0", ...), for --inspect

  std::int64_t numel() const {
    std::int64_t count = 1;
    for (std::int64_t dim : shape) count *= dim;
    return count;
  }

  bool contiguous() const {
    std::int64_t expected = 1;
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (shape[d] != 1 && stride[d] != expected) return false;
      expected *= shape[d];
    }
    return true;
  }
};

/// C-order strides of a shape.
inline std::vector<std::int64_t> contiguous_strides(const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> stride(shape.size());
  std::int64_t step = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    stride[d] = step;
    step *= shape[d];
  }
  return stride;
}

/// Throws clip::Error (naming `where`) unless every element of the view lies in its storage and
/// the element count fits comfortably in memory arithmetic.
inline void check_stored_tensor(const StoredTensor& view, const std::string& where) {
  if (view.shape.size() != view.stride.size())
    throw Error(where + ": shape and stride have different ranks");
  if (view.offset < 0) throw Error(where + ": negative storage offset");
  std::uint64_t count = 1, last = static_cast<std::uint64_t>(view.offset);
  for (std::size_t d = 0; d < view.shape.size(); ++d) {
    if (view.shape[d] < 0 || view.stride[d] < 0) throw Error(where + ": negative size or stride");
    if (!detail::checked_multiply(count, static_cast<std::uint64_t>(view.shape[d]), count) || count > (1ull << 40))
      throw Error(where + ": absurd shape (more than 2^40 elements)");
  }
  if (count == 0) return;
  for (std::size_t d = 0; d < view.shape.size(); ++d) {
    std::uint64_t reach = 0;
    if (!detail::checked_multiply(static_cast<std::uint64_t>(view.shape[d] - 1), static_cast<std::uint64_t>(view.stride[d]), reach) ||
        last + reach < last)
      throw Error(where + ": absurd stride");
    last += reach;
  }
  if (view.decode) return;  // the decoder's own reader checked its bytes
  // More elements than the storage holds takes zero strides (a broadcast view): never in saved
  // weights, and refused so that reading a tensor never allocates more than the file holds.
  if (count > view.storage_numel)
    throw Error(where + ": has " + std::to_string(count) + " elements but its storage only " +
                std::to_string(view.storage_numel) + " (broadcast views are not supported)");
  if (last >= view.storage_numel)
    throw Error(where + ": reaches element " + std::to_string(last) + " of a storage of " +
                std::to_string(view.storage_numel) + " elements");
}

/// The view's elements in C order as floats (a floating-point dtype, checked view).
inline void read_stored_tensor(const StoredTensor& view, float* out, const std::string& where) {
  if (view.decode) {
    view.decode(out);
    return;
  }
  if (!is_float_dtype(view.dtype))
    throw Error(where + " is " + dtype_name(view.dtype) + ", expected a floating-point tensor");
  const std::size_t size = dtype_size(view.dtype);
  const std::int64_t count = view.numel();
  if (count == 0) return;
  if (view.contiguous()) {
    const std::uint8_t* data = view.storage + static_cast<std::size_t>(view.offset) * size;
    if (view.dtype == DType::F32) {
      std::memcpy(out, data, static_cast<std::size_t>(count) * 4);
      return;
    }
    for (std::int64_t i = 0; i < count; ++i) out[i] = detail::load_float(view.dtype, data + i * size);
    return;
  }
  // A strided view (a transposed or sliced tensor saved as is): walk its index odometer.
  const std::size_t rank = view.shape.size();
  std::vector<std::int64_t> index(rank, 0);
  std::int64_t position = view.offset;
  for (std::int64_t i = 0; i < count; ++i) {
    out[i] = detail::load_float(view.dtype, view.storage + static_cast<std::size_t>(position) * size);
    for (std::size_t d = rank; d-- > 0;) {
      if (++index[d] < view.shape[d]) {
        position += view.stride[d];
        break;
      }
      position -= view.stride[d] * (view.shape[d] - 1);
      index[d] = 0;
    }
  }
}

}  // namespace clip
