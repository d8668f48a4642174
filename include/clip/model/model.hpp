#pragma once
// Model<Scalar>: one CLIP model file loaded once — config, tokenizer, weights, both towers and
// the logit scale. encode_images / encode_texts match CLIP.encode_image / encode_text (features not
// normalised); see similarity.hpp for the logits. All const methods are thread-safe.

#include <clip/detail/compilation.hpp>
#include <clip/formats/model_file.hpp>
#include <clip/model/text_encoder.hpp>
#include <clip/text/tokenizer.hpp>
#include <clip/model/vision_encoder.hpp>
#include <clip/model/weights.hpp>

#include <cmath>
#include <memory>
#include <string>

namespace clip {

template <typename Scalar>
class Model {
 public:
  explicit Model(const std::string& path);

  const ModelConfig& config() const { return weights_->config(); }
  /// The BPE tokenizer stored in the model file; its tokenize() gives encode_texts' input, rows
  /// of the model's context_length.
  const Tokenizer& tokenizer() const { return tokenizer_; }
  const Weights<Scalar>& weights() const { return *weights_; }

  /// pixels [N, 3*S*S], each row one preprocessed image in CHW order -> features [N, embed_dim].
  RowMatrix<Scalar> encode_images(const RowMatrix<Scalar>& pixels) const { return vision_.encode(pixels); }

  /// tokens [N, context_length] -> features [N, embed_dim], taken at each text's EOT token.
  RowMatrix<Scalar> encode_texts(const TokenMatrix& tokens, TextSpan span = TextSpan::UpToEot) const {
    return text_.encode(tokens, span);
  }

  /// exp of the stored parameter: the factor CLIP multiplies cosine similarities by.
  Scalar logit_scale() const { return std::exp(weights_->logit_scale_log()); }

 private:
  std::shared_ptr<const Weights<Scalar>> weights_;
  Tokenizer tokenizer_;
  VisionEncoder<Scalar> vision_;
  TextEncoder<Scalar> text_;
};

}  // namespace clip

// The member functions are compiled once in clip_compiled under separate compilation (the
// explicit instantiations below); other files see only the class.
#if CLIP_HEADER_DEFINITIONS

namespace clip {

template <typename Scalar>
Model<Scalar>::Model(const std::string& path)
    : weights_(std::make_shared<const Weights<Scalar>>(path)),
      tokenizer_(Tokenizer::from_merges(weights_->file().merges_text())),
      vision_(weights_),
      text_(weights_) {
  tokenizer_.set_context_length(weights_->config().text.context_length);
}

}  // namespace clip

#endif  // CLIP_HEADER_DEFINITIONS

namespace clip {

CLIP_INSTANTIATE(class Model<float>)
CLIP_INSTANTIATE(class Model<double>)

}  // namespace clip
