#pragma once
// OpenAI's ResidualAttentionBlock applied to a batch of token sequences stored back to back,
// one token per row. Sequences may differ in length: the linear layers and the MLP run as one
// matrix product over every token of the batch, attention runs per sequence.

#include <clip/config.hpp>
#include <clip/model/detail/activations.hpp>
#include <clip/model/detail/attention.hpp>
#include <clip/model/detail/block_matrix.hpp>
#include <clip/model/detail/layers.hpp>
#include <clip/detail/parallel.hpp>
#include <clip/model/detail/products.hpp>
#include <clip/model/weights.hpp>

#include <algorithm>
#include <vector>

namespace clip::detail {

/// What each thread of a block owns.
template <typename Scalar>
struct ThreadScratch {
  AttentionScratch<Scalar> attention;
  BlockBuffers<Scalar> buffers;
  RowMatrix<Scalar> partial;  // this thread's share of the sum out_proj / c_proj compute [tokens, W]
};

/// Work matrices one encode call owns, so concurrent calls share nothing but the weights.
/// All row-major, one token per row: the products write their results straight into them.
template <typename Scalar>
struct TransformerScratch {
  RowMatrix<Scalar> normed;   // ln_1 / ln_2 output [tokens, W]
  RowMatrix<Scalar> qkv;      // in_proj output [tokens, 3W]
  RowMatrix<Scalar> context;  // attention heads, concatenated [tokens, W]
  RowMatrix<Scalar> hidden;   // c_fc output [tokens, mlp_width]
  std::vector<ThreadScratch<Scalar>> threads;
};

/// Token rows [sequence_starts[i], sequence_starts[i + 1]) form sequence i.
struct TransformerShape {
  std::vector<Eigen::Index> sequence_starts;
  int heads = 1;
  bool causal = false;
  Activation activation = Activation::QuickGELU;
  double layer_norm_eps = 1e-5;
  int threads = 1;  // threads sharing each block (tensor-parallel over heads and MLP columns)
};

/// The MLP's activation in place on the rows of `hidden`: the kernels' own QuickGELU where the
/// instruction set has one, else Eigen's.
template <typename Scalar, typename Hidden>
void activate(const Eigen::MatrixBase<Hidden>& hidden_, Activation activation, const ProductKernels<Scalar>& kernels) {
  static_assert(bool(Hidden::IsRowMajor), "each row's values are passed to the kernel as one contiguous run");
  auto& hidden = const_cast<Eigen::MatrixBase<Hidden>&>(hidden_);
  if (activation == Activation::QuickGELU && kernels.quick_gelu != nullptr) {
    for (Eigen::Index r = 0; r < hidden.rows(); ++r) kernels.quick_gelu(&hidden.derived().coeffRef(r, 0), hidden.cols());
  } else if (activation == Activation::QuickGELU) {
    quick_gelu(hidden);
  } else {
    gelu(hidden);
  }
}

/// x += attn(ln_1(x)); x += mlp(ln_2(x)), in place on x [tokens, W].
///
/// With several threads each half of the block is one parallel step without inner barriers
/// (Megatron-style): thread p takes a range of heads, computes their q/k/v columns, their
/// attention and their share of out_proj (the out_proj input columns of those heads), and a
/// range of MLP hidden units, c_fc + activation on them and their share of c_proj. The shares
/// are summed onto x afterwards. Two synchronisations per block instead of one per product
/// matter on shared cores, where every wake-up of a waiting thread can cost milliseconds.
template <typename Scalar>
void residual_block(RowMatrix<Scalar>& x, const BlockWeights<Scalar>& block, const TransformerShape& shape,
                    TransformerScratch<Scalar>& scratch) {
  const Eigen::Index tokens = x.rows();
  const Eigen::Index width = x.cols();
  const Eigen::Index head_dim = width / shape.heads;
  const int parts = std::max(1, std::min(shape.threads, shape.heads));
  if (static_cast<int>(scratch.threads.size()) < parts) scratch.threads.resize(static_cast<std::size_t>(parts));
  const auto sum_partials_onto_x = [&](const VectorView<Scalar>& bias) {
    for (int p = 0; p < parts; ++p) x.noalias() += scratch.threads[static_cast<std::size_t>(p)].partial;
    x.rowwise() += bias;
  };

  scratch.normed.resize(tokens, width);
  layer_norm(x, block.ln_1_weight.vector(), block.ln_1_bias.vector(), shape.layer_norm_eps, scratch.normed);
  scratch.qkv.resize(tokens, 3 * width);
  scratch.context.resize(tokens, width);
  parallel_for(parts, parts, [&](int part) {
    ThreadScratch<Scalar>& own = scratch.threads[static_cast<std::size_t>(part)];
    const int first_head = shape.heads * part / parts;
    const int last_head = shape.heads * (part + 1) / parts;
    const Eigen::Index begin = first_head * head_dim;
    const Eigen::Index count = (last_head - first_head) * head_dim;
    prepare_tokens(scratch.normed, block.qkv_weight, own.buffers);  // once for q, k and v
    for (Eigen::Index m = 0; m < 3; ++m) {  // q, k, v columns of these heads
      auto columns = scratch.qkv.middleCols(m * width + begin, count);
      multiply_prepared(block.qkv_weight, m * width + begin, count, columns, own.buffers);
      columns.rowwise() += block.qkv_bias.vector().segment(m * width + begin, count);
    }
    for (std::size_t s = 0; s + 1 < shape.sequence_starts.size(); ++s) {
      const Eigen::Index start = shape.sequence_starts[s];
      const Eigen::Index length = shape.sequence_starts[s + 1] - start;
      attention_heads(scratch.qkv.middleRows(start, length), shape.heads, first_head, last_head, shape.causal,
                      block.qkv_weight.kernels(), scratch.context.middleRows(start, length), own.attention);
    }
    own.partial.resize(tokens, width);
    multiply_columns(scratch.context.middleCols(begin, count), block.out_weight, begin, count, own.partial,
                     own.buffers);
  });
  sum_partials_onto_x(block.out_bias.vector());  // out_proj

  layer_norm(x, block.ln_2_weight.vector(), block.ln_2_bias.vector(), shape.layer_norm_eps, scratch.normed);
  const Eigen::Index mlp_width = block.fc_weight.outputs();
  scratch.hidden.resize(tokens, mlp_width);
  parallel_for(parts, parts, [&](int part) {
    ThreadScratch<Scalar>& own = scratch.threads[static_cast<std::size_t>(part)];
    const auto [begin, end] = slice(mlp_width, parts, part, block.fc_weight.width());  // whole panels each
    auto hidden = scratch.hidden.middleCols(begin, end - begin);
    multiply_rows(scratch.normed, block.fc_weight, begin, end - begin, hidden, own.buffers);
    hidden.rowwise() += block.fc_bias.vector().segment(begin, end - begin);
    activate(hidden, shape.activation, block.fc_weight.kernels());
    own.partial.resize(tokens, width);
    multiply_columns(hidden, block.proj_weight, begin, end - begin, own.partial, own.buffers);
  });
  sum_partials_onto_x(block.proj_bias.vector());  // c_proj
}

template <typename Scalar>
void transformer(RowMatrix<Scalar>& x, const std::vector<BlockWeights<Scalar>>& blocks, const TransformerShape& shape) {
  TransformerScratch<Scalar> scratch;
  for (const BlockWeights<Scalar>& block : blocks) residual_block(x, block, shape, scratch);
}

}  // namespace clip::detail
