#pragma once
// CLIP.forward's head: cosine similarities of image and text features, scaled by the model's
// logit scale, and the softmax that turns a row of logits into probabilities.

#include <clip/detail/compilation.hpp>
#include <clip/model/detail/layers.hpp>
#include <clip/error.hpp>
#include <clip/types.hpp>

#include <string>

namespace clip {

/// Each row divided by its L2 norm. An all-zero row stays zero (torch's F.normalize does the
/// same) instead of becoming NaN.
template <typename Scalar>
RowMatrix<Scalar> normalize_rows(const RowMatrix<Scalar>& features) {
  RowMatrix<Scalar> normalized = features;
  for (Eigen::Index r = 0; r < normalized.rows(); ++r) {
    const Scalar norm = normalized.row(r).norm();
    if (norm > Scalar(0)) normalized.row(r) /= norm;
  }
  return normalized;
}

template <typename Scalar>
struct Logits {
  RowMatrix<Scalar> per_image;  // [images, texts]
  RowMatrix<Scalar> per_text;   // [texts, images], the transpose
};

/// logits_per_image = logit_scale * normalize(I) normalize(T)^T; `logit_scale` is the exp'd value.
template <typename Scalar>
Logits<Scalar> logits(const RowMatrix<Scalar>& image_features, const RowMatrix<Scalar>& text_features,
                      Scalar logit_scale) {
  if (image_features.cols() != text_features.cols())
    throw Error("logits: image features have " + std::to_string(image_features.cols()) +
                " columns, text features " + std::to_string(text_features.cols()) + "; expected the same embed_dim");
  Logits<Scalar> result;
  result.per_image.noalias() = logit_scale * (normalize_rows(image_features) * normalize_rows(text_features).transpose());
  result.per_text = result.per_image.transpose();
  return result;
}

/// Softmax over each row (e.g. logits_per_image -> probabilities over the texts).
template <typename Scalar>
RowMatrix<Scalar> softmax_rows(RowMatrix<Scalar> logits) {
  detail::softmax_rows(logits);
  return logits;
}

#define CLIP_DETAIL_SIMILARITY(Scalar)                                                             \
  CLIP_INSTANTIATE(RowMatrix<Scalar> normalize_rows(const RowMatrix<Scalar>&))                       \
  CLIP_INSTANTIATE(Logits<Scalar> logits(const RowMatrix<Scalar>&, const RowMatrix<Scalar>&, Scalar)) \
  CLIP_INSTANTIATE(RowMatrix<Scalar> softmax_rows(RowMatrix<Scalar>))
CLIP_DETAIL_SIMILARITY(float)
CLIP_DETAIL_SIMILARITY(double)
#undef CLIP_DETAIL_SIMILARITY

}  // namespace clip
