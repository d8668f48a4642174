#pragma once
// TextEncoder: OpenAI's text transformer. Token ids [N, context_length] -> text features
// [N, embed_dim] taken at each text's EOT token, not normalised (like CLIP.encode_text).

#include <clip/detail/compilation.hpp>
#include <clip/detail/parallel.hpp>
#include <clip/error.hpp>
#include <clip/model/weights.hpp>

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
  RowMatrix<Scalar> encode(const TokenMatrix& tokens, TextSpan span = TextSpan::UpToEot) const;

  const Weights<Scalar>& weights() const { return *weights_; }

 private:
  /// Texts [first, first + count) of `tokens`, each computed over its first lengths[n] positions.
  RowMatrix<Scalar> encode_batch(const TokenMatrix& tokens, Eigen::Index first, Eigen::Index count,
                                 const std::vector<Eigen::Index>& eot_positions,
                                 const std::vector<Eigen::Index>& lengths, int threads) const;

  std::shared_ptr<const Weights<Scalar>> weights_;
};

}  // namespace clip

// The member functions are compiled once in clip_compiled under separate compilation (the
// explicit instantiations below); other files see only the class.
#if CLIP_HEADER_DEFINITIONS

#include <clip/model/detail/transformer.hpp>

namespace clip {

template <typename Scalar>
RowMatrix<Scalar> TextEncoder<Scalar>::encode(const TokenMatrix& tokens, TextSpan span) const {
  const ModelConfig& config = weights_->config();
  const TextConfig& t = config.text;
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
  std::vector<Eigen::Index> lengths(static_cast<std::size_t>(texts));
  Eigen::Index total = 0;
  for (Eigen::Index n = 0; n < texts; ++n) {
    tokens.row(n).maxCoeff(&eot_positions[static_cast<std::size_t>(n)]);
    lengths[static_cast<std::size_t>(n)] =
        span == TextSpan::UpToEot ? eot_positions[static_cast<std::size_t>(n)] + 1 : tokens.cols();
    total += lengths[static_cast<std::size_t>(n)];
  }

  [[maybe_unused]] const detail::SerialEigenScope serial_eigen;  // clip splits the work itself
  // Enough texts: each thread encodes a contiguous share of about equal token count (no
  // synchronisation inside); otherwise the threads share each product by output columns.
  const int threads = detail::available_threads();
  RowMatrix<Scalar> features(texts, config.embed_dim);
  if (threads > 1 && texts >= 2 * threads) {
    std::vector<Eigen::Index> cuts{0};
    Eigen::Index done = 0;
    for (Eigen::Index n = 0; n < texts; ++n) {
      done += lengths[static_cast<std::size_t>(n)];
      if (done * threads >= total * static_cast<Eigen::Index>(cuts.size()) && n + 1 < texts &&
          static_cast<int>(cuts.size()) < threads)
        cuts.push_back(n + 1);
    }
    cuts.push_back(texts);
    const int parts = static_cast<int>(cuts.size()) - 1;
    detail::parallel_for(parts, parts, [&](int part) {
      const Eigen::Index first = cuts[static_cast<std::size_t>(part)];
      const Eigen::Index count = cuts[static_cast<std::size_t>(part) + 1] - first;
      features.middleRows(first, count) = encode_batch(tokens, first, count, eot_positions, lengths, 1);
    });
  } else {
    features = encode_batch(tokens, 0, texts, eot_positions, lengths, threads);
  }
  return features;
}

template <typename Scalar>
RowMatrix<Scalar> TextEncoder<Scalar>::encode_batch(const TokenMatrix& tokens, Eigen::Index first, Eigen::Index count,
                                                    const std::vector<Eigen::Index>& eot_positions,
                                                    const std::vector<Eigen::Index>& lengths, int threads) const {
  const ModelConfig& config = weights_->config();
  const TextConfig& t = config.text;
  const TextWeights<Scalar>& w = weights_->text();
  detail::TransformerShape shape;
  shape.sequence_starts.push_back(0);
  for (Eigen::Index n = first; n < first + count; ++n)
    shape.sequence_starts.push_back(shape.sequence_starts.back() + lengths[static_cast<std::size_t>(n)]);
  shape.heads = t.heads;
  shape.causal = true;
  shape.activation = config.activation;
  shape.layer_norm_eps = config.layer_norm_eps;
  shape.threads = threads;

  // token_embedding + positional_embedding, texts back to back without padding.
  const auto token_embedding = w.token_embedding.matrix();
  const auto position = w.position_embedding.matrix();
  RowMatrix<Scalar> x(shape.sequence_starts.back(), t.width);
  for (Eigen::Index i = 0; i < count; ++i) {
    const Eigen::Index start = shape.sequence_starts[static_cast<std::size_t>(i)];
    const Eigen::Index length = shape.sequence_starts[static_cast<std::size_t>(i) + 1] - start;
    for (Eigen::Index p = 0; p < length; ++p)
      x.row(start + p) = token_embedding.row(tokens(first + i, p)) + position.row(p);
  }
  detail::transformer(x, w.blocks, shape);

  // ln_final is per token, so applying it to the EOT rows alone is exact; then @ text_projection.
  RowMatrix<Scalar> eot_tokens(count, t.width);
  for (Eigen::Index i = 0; i < count; ++i)
    eot_tokens.row(i) = x.row(shape.sequence_starts[static_cast<std::size_t>(i)] +
                              eot_positions[static_cast<std::size_t>(first + i)]);
  detail::layer_norm(eot_tokens, w.ln_final_weight.vector(), w.ln_final_bias.vector(), config.layer_norm_eps,
                     eot_tokens);
  RowMatrix<Scalar> features(count, config.embed_dim);
  features.noalias() = eot_tokens * w.proj.matrix();
  return features;
}

}  // namespace clip

#endif  // CLIP_HEADER_DEFINITIONS

namespace clip {

CLIP_INSTANTIATE(class TextEncoder<float>)
CLIP_INSTANTIATE(class TextEncoder<double>)

}  // namespace clip
