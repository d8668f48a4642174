#pragma once
// BlockMatrix: one weight matrix of a transformer block, packed either as float panels
// (products.hpp) or, for float models loaded from a q8 file, as int8 panels
// (quantized_products.hpp). The block multiplies through the four functions below and never
// asks which.

#include <clip/model/detail/products.hpp>
#include <clip/model/detail/quantized_kernels_x86.hpp>

namespace clip::detail {

template <typename Scalar>
struct BlockMatrix {
  PackedWeight<Scalar> dense;  // when not quantized
  QuantizedWeight quantized;   // int8 panels and scales, float models from q8 files only
  const ProductKernels<Scalar>* float_kernels = &generic_kernels<Scalar>();

  bool is_quantized() const { return quantized.outputs() > 0; }
  Eigen::Index outputs() const { return is_quantized() ? quantized.outputs() : dense.outputs(); }
  Eigen::Index inputs() const { return is_quantized() ? quantized.inputs() : dense.inputs(); }
  /// Outputs per panel: slices of whole panels are written without a copy.
  Eigen::Index width() const { return is_quantized() ? quantized.width() : dense.width(); }
  /// The float kernels of the model's path, for what stays in float next to this product
  /// (attention, the MLP's activation).
  const ProductKernels<Scalar>& kernels() const { return *float_kernels; }
};

/// Per-thread buffers of the block products.
template <typename Scalar>
struct BlockBuffers {
  ProductBuffers<Scalar> dense;
  QuantizedTokens quantized;
};

/// Prepares x [tokens, inputs] for several multiply_prepared calls with the same input (q, k, v):
/// packs it once, or quantises it once.
template <typename Scalar, typename Input>
void prepare_tokens(const Eigen::MatrixBase<Input>& x, const BlockMatrix<Scalar>& matrix, BlockBuffers<Scalar>& buffers) {
  if constexpr (std::is_same_v<Scalar, float>) {
    if (matrix.is_quantized()) return quantize_tokens(x, 0, matrix.quantized.kernels(), buffers.quantized);
  }
  pack_tokens(x, matrix.dense.kernels(), buffers.dense);
}

/// dest = x W^T for W's outputs [begin, begin + count), x the one last prepared.
template <typename Scalar, typename Output>
void multiply_prepared(const BlockMatrix<Scalar>& matrix, Eigen::Index begin, Eigen::Index count,
                       const Eigen::MatrixBase<Output>& dest, BlockBuffers<Scalar>& buffers) {
  if constexpr (std::is_same_v<Scalar, float>) {
    if (matrix.is_quantized()) return multiply_quantized(matrix.quantized, begin, count, dest, buffers.quantized);
  }
  multiply_packed(weight_rows(matrix.dense, begin, count), dest, buffers.dense);
}

/// dest = x W^T for W's outputs [begin, begin + count), x [tokens, inputs].
template <typename Scalar, typename Input, typename Output>
void multiply_rows(const Eigen::MatrixBase<Input>& x, const BlockMatrix<Scalar>& matrix, Eigen::Index begin,
                   Eigen::Index count, const Eigen::MatrixBase<Output>& dest, BlockBuffers<Scalar>& buffers) {
  prepare_tokens(x, matrix, buffers);
  multiply_prepared(matrix, begin, count, dest, buffers);
}

/// dest = x W[:, begin : begin + count]^T, x [tokens, count] holding those inputs only: one
/// thread's share of a product split over its inputs (out_proj by heads, c_proj by hidden units).
template <typename Scalar, typename Input, typename Output>
void multiply_columns(const Eigen::MatrixBase<Input>& x, const BlockMatrix<Scalar>& matrix, Eigen::Index begin,
                      Eigen::Index count, const Eigen::MatrixBase<Output>& dest, BlockBuffers<Scalar>& buffers) {
  if constexpr (std::is_same_v<Scalar, float>) {
    if (matrix.is_quantized()) {
      quantize_tokens(x, begin, matrix.quantized.kernels(), buffers.quantized);
      return multiply_quantized(matrix.quantized, 0, matrix.outputs(), dest, buffers.quantized);
    }
  }
  multiply_transposed(x, weight_columns(matrix.dense, begin, count), dest, buffers.dense);
}

}  // namespace clip::detail
