#pragma once
// TextEncoder: OpenAI's text transformer. Token ids [N, context_length] -> text features
// [N, embed_dim] taken at each text's EOT token, not normalised (like CLIP.encode_text).

#include <clip/detail/transformer.hpp>
#include <clip/error.hpp>
#include <clip/weights.hpp>

#include <memory>
#include <string>
#include <vector>

namespace clip {

/// How far each text is computed. Under the causal mask no later position can affect the EOT
/// token, so stopping there is exact; FullContext runs all context_length positions as
/// OpenAI's code does and exists to show that.
enum class TextSpan { UpToEot, FullContext };

template <typename Scalar>
class TextEncoder {
 public:
  explicit TextEncoder(std::shared_ptr<const Weights<Scalar>> weights) : weights_(std::move(weights)) {}

  /// Thread-safe: all scratch lives in the call.
  RowMatrix<Scalar> encode(const TokenMatrix& tokens, TextSpan span = TextSpan::UpToEot) const {
    const ModelConfig& config = weights_->config();
    const TextConfig& t = config.text;
    const TextWeights<Scalar>& w = weights_->text();
    if (tokens.rows() == 0) throw Error("encode_texts: empty batch (0 texts)");
    if (tokens.cols() != t.context_length)
      throw Error("encode_texts: tokens have " + std::to_string(tokens.cols()) + " columns, expected context_length " +
                  std::to_string(t.context_length));
    for (Eigen::Index n = 0; n < tokens.rows(); ++n)
      for (Eigen::Index p = 0; p < tokens.cols(); ++p)
        if (tokens(n, p) < 0 || tokens(n, p) >= t.vocab_size)
          throw Error("encode_texts: token id " + std::to_string(tokens(n, p)) + " at text " + std::to_string(n) +
                      ", position " + std::to_string(p) + " is outside the vocabulary [0, " +
                      std::to_string(t.vocab_size) + ")");

    // The feature sits at the EOT token: the highest id, first occurrence (torch.argmax).
    const Eigen::Index texts = tokens.rows();
    std::vector<Eigen::Index> eot_positions(static_cast<std::size_t>(texts));
    detail::TransformerShape shape;
    shape.sequence_starts.push_back(0);
    for (Eigen::Index n = 0; n < texts; ++n) {
      tokens.row(n).maxCoeff(&eot_positions[static_cast<std::size_t>(n)]);
      const Eigen::Index length =
          span == TextSpan::UpToEot ? eot_positions[static_cast<std::size_t>(n)] + 1 : tokens.cols();
      shape.sequence_starts.push_back(shape.sequence_starts.back() + length);
    }
    shape.heads = t.heads;
    shape.causal = true;
    shape.activation = config.activation;
    shape.layer_norm_eps = config.layer_norm_eps;

    // token_embedding + positional_embedding, texts back to back without padding.
    const auto token_embedding = w.token_embedding.matrix();
    const auto position = w.position_embedding.matrix();
    RowMatrix<Scalar> x(shape.sequence_starts.back(), t.width);
    for (Eigen::Index n = 0; n < texts; ++n) {
      const Eigen::Index start = shape.sequence_starts[static_cast<std::size_t>(n)];
      const Eigen::Index length = shape.sequence_starts[static_cast<std::size_t>(n) + 1] - start;
      for (Eigen::Index p = 0; p < length; ++p) x.row(start + p) = token_embedding.row(tokens(n, p)) + position.row(p);
    }
    detail::transformer(x, w.blocks, shape);

    // ln_final is per token, so applying it to the EOT rows alone is exact; then @ text_projection.
    RowMatrix<Scalar> eot_tokens(texts, t.width);
    for (Eigen::Index n = 0; n < texts; ++n)
      eot_tokens.row(n) = x.row(shape.sequence_starts[static_cast<std::size_t>(n)] +
                                eot_positions[static_cast<std::size_t>(n)]);
    detail::layer_norm(eot_tokens, w.ln_final_weight.vector(), w.ln_final_bias.vector(), config.layer_norm_eps,
                       eot_tokens);
    RowMatrix<Scalar> features(texts, config.embed_dim);
    features.noalias() = eot_tokens * w.proj.matrix();
    return features;
  }

  const Weights<Scalar>& weights() const { return *weights_; }

 private:
  std::shared_ptr<const Weights<Scalar>> weights_;
};

}  // namespace clip
