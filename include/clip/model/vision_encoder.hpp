#pragma once
// VisionEncoder: OpenAI's VisionTransformer. Normalised pixels [N, 3*S*S] (each row one image in
// CHW order) -> image features [N, embed_dim], not normalised (like CLIP.encode_image).

#include <clip/detail/compilation.hpp>
#include <clip/detail/parallel.hpp>
#include <clip/model/detail/products.hpp>
#include <clip/model/detail/transformer.hpp>
#include <clip/error.hpp>
#include <clip/model/weights.hpp>

#include <memory>
#include <string>
#include <vector>

namespace clip {

template <typename Scalar>
class VisionEncoder {
 public:
  explicit VisionEncoder(std::shared_ptr<const Weights<Scalar>> weights) : weights_(std::move(weights)) {}

  /// Thread-safe: all scratch lives in the call.
  RowMatrix<Scalar> encode(const RowMatrix<Scalar>& pixels) const;

  const Weights<Scalar>& weights() const { return *weights_; }

 private:
  RowMatrix<Scalar> encode_batch(const Eigen::Ref<const RowMatrix<Scalar>>& pixels, int threads) const;

  /// [N, 3*S*S] CHW images -> [N * grid^2, 3*P*P] patches, row-major over the grid.
  static RowMatrix<Scalar> unfold_patches(const Eigen::Ref<const RowMatrix<Scalar>>& pixels, Eigen::Index image_size,
                                          Eigen::Index patch_size);

  std::shared_ptr<const Weights<Scalar>> weights_;
};

template <typename Scalar>
RowMatrix<Scalar> VisionEncoder<Scalar>::encode(const RowMatrix<Scalar>& pixels) const {
  const ModelConfig& config = weights_->config();
  const VisionConfig& v = config.vision;
  const Eigen::Index image_values = 3 * static_cast<Eigen::Index>(v.image_size) * v.image_size;
  if (pixels.rows() == 0) throw Error("encode_images: empty batch (0 images)");
  if (pixels.cols() != image_values)
    throw Error("encode_images: pixels have " + std::to_string(pixels.cols()) + " columns, expected 3*" +
                std::to_string(v.image_size) + "*" + std::to_string(v.image_size) + " = " +
                std::to_string(image_values) + " (CHW, image_size " + std::to_string(v.image_size) + ")");

  [[maybe_unused]] const detail::SerialEigenScope serial_eigen;  // clip splits the work itself
  // Enough images: each thread encodes its own share (no synchronisation inside); otherwise
  // the threads share each product by output columns.
  const Eigen::Index images = pixels.rows();
  const int threads = detail::available_threads();
  RowMatrix<Scalar> features(images, config.embed_dim);
  if (threads > 1 && (images >= 2 * threads || (images >= threads && images % threads == 0))) {
    detail::parallel_for(threads, threads, [&](int part) {
      const Eigen::Index first = images * part / threads;
      const Eigen::Index count = images * (part + 1) / threads - first;
      features.middleRows(first, count) = encode_batch(pixels.middleRows(first, count), 1);
    });
  } else {
    features = encode_batch(pixels, threads);
  }
  return features;
}

template <typename Scalar>
RowMatrix<Scalar> VisionEncoder<Scalar>::encode_batch(const Eigen::Ref<const RowMatrix<Scalar>>& pixels, int threads) const {
  const ModelConfig& config = weights_->config();
  const VisionConfig& v = config.vision;
  const VisionWeights<Scalar>& w = weights_->vision();
  const Eigen::Index images = pixels.rows();
  const Eigen::Index grid = v.grid_size();
  const Eigen::Index patches_per_image = grid * grid;
  const Eigen::Index tokens = patches_per_image + 1;
  const Eigen::Index width = v.width;

  // conv1 (kernel = stride = patch, no bias) as one product: unfold every patch into a row
  // in the (channel, y, x) order of the flattened conv weight, then multiply by its transpose.
  const RowMatrix<Scalar> patches = unfold_patches(pixels, v.image_size, v.patch_size);
  RowMatrix<Scalar> embedded(patches.rows(), width);
  std::vector<detail::ProductBuffers<Scalar>> buffers(static_cast<std::size_t>(threads));
  detail::parallel_for(threads, threads, [&](int part) {
    const auto [begin, end] = detail::slice(width, threads, part, w.patch_embedding.width());
    detail::multiply_transposed(patches, detail::weight_rows(w.patch_embedding, begin, end - begin),
                                embedded.middleCols(begin, end - begin), buffers[static_cast<std::size_t>(part)]);
  });

  // [class; patches] + positional_embedding, images back to back.
  const auto position = w.position_embedding.matrix();
  RowMatrix<Scalar> x(images * tokens, width);
  for (Eigen::Index n = 0; n < images; ++n) {
    x.row(n * tokens) = w.class_embedding.vector() + position.row(0);
    x.middleRows(n * tokens + 1, patches_per_image) =
        embedded.middleRows(n * patches_per_image, patches_per_image) + position.bottomRows(patches_per_image);
  }
  detail::layer_norm(x, w.ln_pre_weight.vector(), w.ln_pre_bias.vector(), config.layer_norm_eps, x);  // ln_pre

  detail::TransformerShape shape;
  for (Eigen::Index n = 0; n <= images; ++n) shape.sequence_starts.push_back(n * tokens);
  shape.heads = v.heads;
  shape.causal = false;
  shape.activation = config.activation;
  shape.layer_norm_eps = config.layer_norm_eps;
  shape.threads = threads;
  detail::transformer(x, w.blocks, shape);

  // ln_post on the class token, then @ proj.
  RowMatrix<Scalar> class_tokens(images, width);
  for (Eigen::Index n = 0; n < images; ++n) class_tokens.row(n) = x.row(n * tokens);
  detail::layer_norm(class_tokens, w.ln_post_weight.vector(), w.ln_post_bias.vector(), config.layer_norm_eps,
                     class_tokens);
  RowMatrix<Scalar> features(images, config.embed_dim);
  features.noalias() = class_tokens * w.proj.matrix();
  return features;
}

template <typename Scalar>
RowMatrix<Scalar> VisionEncoder<Scalar>::unfold_patches(const Eigen::Ref<const RowMatrix<Scalar>>& pixels,
                                                        Eigen::Index image_size, Eigen::Index patch_size) {
  const Eigen::Index grid = image_size / patch_size;
  const Eigen::Index plane = image_size * image_size;
  RowMatrix<Scalar> patches(pixels.rows() * grid * grid, 3 * patch_size * patch_size);
  for (Eigen::Index n = 0; n < pixels.rows(); ++n)
    for (Eigen::Index gy = 0; gy < grid; ++gy)
      for (Eigen::Index gx = 0; gx < grid; ++gx) {
        Scalar* row = patches.row((n * grid + gy) * grid + gx).data();
        for (Eigen::Index c = 0; c < 3; ++c)
          for (Eigen::Index py = 0; py < patch_size; ++py) {
            const Scalar* source = pixels.row(n).data() + c * plane + (gy * patch_size + py) * image_size +
                                   gx * patch_size;
            std::copy(source, source + patch_size, row + (c * patch_size + py) * patch_size);
          }
      }
  return patches;
}

CLIP_INSTANTIATE(class VisionEncoder<float>)
CLIP_INSTANTIATE(class VisionEncoder<double>)

}  // namespace clip
