#pragma once
// Multi-head scaled dot-product attention over a fused q/k/v matrix, as OpenAI's
// nn.MultiheadAttention computes it (need_weights=False): per head, softmax(q k^T / sqrt(d)) v.
//
// Both per-head products run on the weight products' panel kernels, so they take the same
// instruction set as the rest of the model (Eigen's own products would run on the compiler's
// target only, SSE2 in a build without -m flags): k enters as W [T, d] and v as W^T, each
// packed per head, a copy of T x d values against 2 T^2 d operations.

#include <clip/model/detail/layers.hpp>
#include <clip/model/detail/products.hpp>

#include <cmath>

namespace clip::detail {

/// Buffers one thread reuses across heads, sequences and layers.
template <typename Scalar>
struct AttentionScratch {
  RowMatrix<Scalar> keys;    // one head's k, contiguous [T, d]
  RowMatrix<Scalar> scores;  // one head's attention matrix [T, T]
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> packed_keys, packed_values;
  ProductBuffers<Scalar> products;
};

/// Heads [first_head, last_head) of attention over one sequence. `qkv` is [T, 3W]: the in_proj
/// result, columns q | k | v, each split into `heads` slices of head_dim = W / heads. Writes
/// those heads' slices of `context` [T, W]. With `causal`, token i attends to tokens 0..i only
/// (OpenAI's -inf upper-triangle mask).
template <typename Scalar, typename QkvMatrix, typename ContextMatrix>
void attention_heads(const Eigen::MatrixBase<QkvMatrix>& qkv, int heads, int first_head, int last_head, bool causal,
                     const ProductKernels<Scalar>& kernels, const Eigen::MatrixBase<ContextMatrix>& context_,
                     AttentionScratch<Scalar>& scratch) {
  static_assert(bool(QkvMatrix::IsRowMajor), "qkv is row-major: v's rows are read in place");
  auto& context = const_cast<Eigen::MatrixBase<ContextMatrix>&>(context_);
  const Eigen::Index tokens = qkv.rows();
  const Eigen::Index width = qkv.cols() / 3;
  const Eigen::Index head_dim = width / heads;
  const Scalar scale = Scalar(1) / std::sqrt(static_cast<Scalar>(head_dim));
  scratch.scores.resize(tokens, tokens);
  scratch.packed_keys.resize(PackedWeight<Scalar>::packed_size(tokens, head_dim, kernels));
  scratch.packed_values.resize(PackedWeight<Scalar>::packed_size(head_dim, tokens, kernels));
  for (int h = first_head; h < last_head; ++h) {
    const auto q = qkv.middleCols(h * head_dim, head_dim);
    scratch.keys = qkv.middleCols(width + h * head_dim, head_dim);
    const PackedWeight<Scalar> keys(MatrixView<Scalar>(scratch.keys.data(), tokens, head_dim),
                                    scratch.packed_keys.data(), kernels);
    multiply_transposed(q, weight_rows(keys, 0, tokens), scratch.scores, scratch.products);
    scratch.scores *= scale;
    softmax_rows(scratch.scores, causal);
    PackedWeight<Scalar> values(scratch.packed_values.data(), head_dim, tokens, kernels);
    values.pack_transposed(qkv.derived().data() + 2 * width + h * head_dim, qkv.derived().outerStride());
    multiply_transposed(scratch.scores, weight_rows(values, 0, head_dim), context.middleCols(h * head_dim, head_dim),
                        scratch.products);
  }
}

/// All heads of attention over one sequence; see attention_heads.
template <typename Scalar, typename QkvMatrix, typename ContextMatrix>
void attention(const Eigen::MatrixBase<QkvMatrix>& qkv, int heads, bool causal, const ProductKernels<Scalar>& kernels,
               const Eigen::MatrixBase<ContextMatrix>& context, AttentionScratch<Scalar>& scratch) {
  attention_heads<Scalar>(qkv, heads, 0, heads, causal, kernels, context, scratch);
}

}  // namespace clip::detail
