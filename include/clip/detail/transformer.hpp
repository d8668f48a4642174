#pragma once
// OpenAI's ResidualAttentionBlock applied to a batch of token sequences stored back to back,
// one token per row. Sequences may differ in length: the linear layers and the MLP run as one
// matrix product over every token of the batch, attention runs per sequence.

#include <clip/config.hpp>
#include <clip/detail/layers.hpp>
#include <clip/weights.hpp>

#include <vector>

namespace clip::detail {

/// Work matrices one encode call owns, so concurrent calls share nothing but the weights.
template <typename Scalar>
struct TransformerScratch {
  RowMatrix<Scalar> normed;   // ln_1 / ln_2 output [tokens, W]
  RowMatrix<Scalar> qkv;      // in_proj output [tokens, 3W]
  RowMatrix<Scalar> context;  // attention heads, concatenated [tokens, W]
  RowMatrix<Scalar> hidden;   // c_fc output [tokens, mlp_width]
  RowMatrix<Scalar> scores;   // one head's attention matrix [T, T]
};

/// Token rows [sequence_starts[i], sequence_starts[i + 1]) form sequence i.
struct TransformerShape {
  std::vector<Eigen::Index> sequence_starts;
  int heads = 1;
  bool causal = false;
  Activation activation = Activation::QuickGELU;
  double layer_norm_eps = 1e-5;
};

/// x += attn(ln_1(x)); x += mlp(ln_2(x)), in place on x [tokens, W].
template <typename Scalar>
void residual_block(RowMatrix<Scalar>& x, const BlockWeights<Scalar>& block, const TransformerShape& shape,
                    TransformerScratch<Scalar>& scratch) {
  scratch.normed.resize(x.rows(), x.cols());
  layer_norm(x, block.ln_1_weight.vector(), block.ln_1_bias.vector(), shape.layer_norm_eps, scratch.normed);
  linear(scratch.normed, block.qkv_weight.matrix(), block.qkv_bias.vector(), scratch.qkv);
  scratch.context.resize(x.rows(), x.cols());
  for (std::size_t s = 0; s + 1 < shape.sequence_starts.size(); ++s) {
    const Eigen::Index start = shape.sequence_starts[s];
    const Eigen::Index length = shape.sequence_starts[s + 1] - start;
    attention(scratch.qkv.middleRows(start, length), shape.heads, shape.causal,
              scratch.context.middleRows(start, length), scratch.scores);
  }
  // out_proj, added straight onto the residual stream.
  x.noalias() += scratch.context * block.out_weight.matrix().transpose();
  x.rowwise() += block.out_bias.vector();

  layer_norm(x, block.ln_2_weight.vector(), block.ln_2_bias.vector(), shape.layer_norm_eps, scratch.normed);
  linear(scratch.normed, block.fc_weight.matrix(), block.fc_bias.vector(), scratch.hidden);
  if (shape.activation == Activation::QuickGELU)
    quick_gelu(scratch.hidden);
  else
    gelu(scratch.hidden);
  x.noalias() += scratch.hidden * block.proj_weight.matrix().transpose();
  x.rowwise() += block.proj_bias.vector();
}

template <typename Scalar>
void transformer(RowMatrix<Scalar>& x, const std::vector<BlockWeights<Scalar>>& blocks, const TransformerShape& shape) {
  TransformerScratch<Scalar> scratch;
  for (const BlockWeights<Scalar>& block : blocks) residual_block(x, block, shape, scratch);
}

}  // namespace clip::detail
