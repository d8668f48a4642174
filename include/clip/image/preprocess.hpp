#pragma once
// CLIP's image preprocessing, pixel-exact with the reference `_transform(S)`:
//   Resize(S, BICUBIC) on the short side -> CenterCrop(S) -> convert("RGB") -> ToTensor ->
//   Normalize(mean, std)
// The resize and crop happen in the image's own Pillow mode (see clip/image/decode.hpp), the
// normalisation in float32 as torch does it, so the output equals the reference's tensor.

#include <clip/detail/compilation.hpp>
#include <clip/config.hpp>
#include <clip/image/detail/resample.hpp>
#include <clip/error.hpp>
#include <clip/image/decode.hpp>
#include <clip/types.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace clip {

struct PreprocessOptions {
  int image_size = 224;
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
};

/// The preprocessing a model was trained with: its input size, mean and std.
inline PreprocessOptions preprocess_options(const ModelConfig& config) {
  return PreprocessOptions{config.vision.image_size, config.image_mean, config.image_std};
}

namespace detail {

struct ResizedSize {
  int width;
  int height;
};

/// torchvision's Resize(int): the short side becomes `size`, the long side
/// int(size * long / short) (Python's true division, then truncation).
inline ResizedSize short_side_resize(int width, int height, int size) {
  const bool width_is_short = width <= height;
  const int short_side = width_is_short ? width : height;
  const int long_side = width_is_short ? height : width;
  const int new_long = static_cast<int>(static_cast<double>(size) * long_side / short_side);
  return width_is_short ? ResizedSize{size, new_long} : ResizedSize{new_long, size};
}

/// torchvision's CenterCrop offset: int(round((in - out) / 2.0)), Python rounding half to even.
inline int center_crop_offset(int in_size, int out_size) {
  return static_cast<int>(std::nearbyint((in_size - out_size) / 2.0));
}

/// CenterCrop(size) of a plane. torchvision first pads a too-small image with zeros (left/top
/// gets (size - in) / 2, the rest the other side), which a short-side resize never needs.
template <typename Sample>
Plane<Sample> center_crop(const Plane<Sample>& in, int size) {
  Plane<Sample> padded_storage;
  const Plane<Sample>* source = &in;
  if (in.width < size || in.height < size) {
    const int pad_left = in.width < size ? (size - in.width) / 2 : 0;
    const int pad_top = in.height < size ? (size - in.height) / 2 : 0;
    const int pad_right = in.width < size ? (size - in.width + 1) / 2 : 0;
    const int pad_bottom = in.height < size ? (size - in.height + 1) / 2 : 0;
    padded_storage.width = in.width + pad_left + pad_right;
    padded_storage.height = in.height + pad_top + pad_bottom;
    padded_storage.channels = in.channels;
    padded_storage.samples.assign(
        static_cast<std::size_t>(padded_storage.width) * padded_storage.height * in.channels, Sample{});
    for (int y = 0; y < in.height; ++y)
      std::copy_n(&in.samples[static_cast<std::size_t>(y) * in.width * in.channels],
                  static_cast<std::size_t>(in.width) * in.channels,
                  &padded_storage.samples[(static_cast<std::size_t>(y + pad_top) * padded_storage.width + pad_left) *
                                          in.channels]);
    source = &padded_storage;
  }
  const int top = center_crop_offset(source->height, size);
  const int left = center_crop_offset(source->width, size);
  Plane<Sample> out;
  out.width = size;
  out.height = size;
  out.channels = source->channels;
  const std::size_t row = static_cast<std::size_t>(size) * out.channels;
  out.samples.resize(row * size);
  for (int y = 0; y < size; ++y)
    std::copy_n(&source->samples[(static_cast<std::size_t>(y + top) * source->width + left) * source->channels], row,
                &out.samples[y * row]);
  return out;
}

/// Pillow's MULDIV255: round(a * b / 255) in integers.
inline std::uint8_t multiply_div_255(unsigned a, unsigned b) {
  const unsigned t = a * b + 128;
  return static_cast<std::uint8_t>(((t >> 8) + t) >> 8);
}

/// Pillow's RGBA -> RGBa (and LA -> La): colour channels multiplied by alpha.
inline void premultiply_alpha(Plane<std::uint8_t>& plane) {
  const int colours = plane.channels - 1;
  for (std::size_t p = 0; p < plane.samples.size(); p += plane.channels) {
    const unsigned alpha = plane.samples[p + colours];
    for (int c = 0; c < colours; ++c) plane.samples[p + c] = multiply_div_255(plane.samples[p + c], alpha);
  }
}

/// Pillow's RGBa -> RGBA (and La -> LA): divide back, leaving alpha 0 and 255 untouched.
inline void unpremultiply_alpha(Plane<std::uint8_t>& plane) {
  const int colours = plane.channels - 1;
  for (std::size_t p = 0; p < plane.samples.size(); p += plane.channels) {
    const unsigned alpha = plane.samples[p + colours];
    if (alpha == 255 || alpha == 0) continue;
    for (int c = 0; c < colours; ++c) {
      const unsigned value = (255u * plane.samples[p + c]) / alpha;
      plane.samples[p + c] = static_cast<std::uint8_t>(value > 255 ? 255 : value);
    }
  }
}

inline void check_image(const Image& image) {
  if (image.width <= 0 || image.height <= 0)
    throw Error("preprocess: image has zero size (" + std::to_string(image.width) + "x" +
                std::to_string(image.height) + ")");
  const std::size_t pixels = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
  if (image.mode == PixelMode::Gray16) {
    if (image.pixels16.size() != pixels)
      throw Error("preprocess: 16-bit image holds " + std::to_string(image.pixels16.size()) + " samples, " +
                  std::to_string(image.width) + "x" + std::to_string(image.height) + " needs " +
                  std::to_string(pixels));
  } else {
    const std::size_t needed = pixels * static_cast<std::size_t>(channel_count(image.mode));
    if (image.pixels.size() != needed)
      throw Error(std::string("preprocess: ") + mode_name(image.mode) + " image holds " +
                  std::to_string(image.pixels.size()) + " bytes, " + std::to_string(image.width) + "x" +
                  std::to_string(image.height) + " needs " + std::to_string(needed));
  }
}

inline void check_options(const PreprocessOptions& options) {
  if (options.image_size <= 0 || options.image_size > 16384)
    throw Error("preprocess: image_size " + std::to_string(options.image_size) + " is outside 1..16384");
  for (int c = 0; c < 3; ++c)
    if (!(options.std[c] != 0.0f) || !std::isfinite(options.std[c]) || !std::isfinite(options.mean[c]))
      throw Error("preprocess: mean/std channel " + std::to_string(c) + " must be finite with std non-zero");
}

/// Resize (short side) and center-crop in the image's own mode, then convert("RGB").
inline Plane<std::uint8_t> resize_crop_to_rgb8(const Image& image, int size) {
  const ResizedSize target = short_side_resize(image.width, image.height, size);
  const bool resize = target.width != image.width || target.height != image.height;
  const std::size_t pixel_count = static_cast<std::size_t>(image.width) * image.height;

  Plane<std::uint8_t> rgb;
  if (image.mode == PixelMode::Gray16) {
    Plane<std::int32_t> wide{image.width, image.height, 1, std::vector<std::int32_t>(image.pixels16.begin(), image.pixels16.end())};
    if (resize) wide = resize_bicubic(wide, target.width, target.height);
    wide = center_crop(wide, size);
    rgb = Plane<std::uint8_t>{size, size, 3, std::vector<std::uint8_t>(wide.samples.size() * 3)};
    for (std::size_t p = 0; p < wide.samples.size(); ++p) {
      const std::int32_t v = wide.samples[p];
      const std::uint8_t level = static_cast<std::uint8_t>(v <= 0 ? 0 : v >= 255 ? 255 : v);
      rgb.samples[p * 3] = rgb.samples[p * 3 + 1] = rgb.samples[p * 3 + 2] = level;
    }
    return rgb;
  }

  const int channels = channel_count(image.mode);
  Plane<std::uint8_t> plane{image.width, image.height, channels, {}};
  plane.samples.assign(image.pixels.begin(), image.pixels.begin() + pixel_count * channels);
  if (resize) {
    switch (image.mode) {
      case PixelMode::Bilevel:
      case PixelMode::Palette: plane = resize_nearest(plane, target.width, target.height); break;
      case PixelMode::GrayAlpha:
      case PixelMode::RGBA:
        premultiply_alpha(plane);
        plane = resize_bicubic(plane, target.width, target.height);
        unpremultiply_alpha(plane);
        break;
      default: plane = resize_bicubic(plane, target.width, target.height); break;
    }
  }
  plane = center_crop(plane, size);
  if (channels == 3) return plane;
  // convert("RGB"): gray replicated, alpha dropped.
  rgb = Plane<std::uint8_t>{size, size, 3, std::vector<std::uint8_t>(static_cast<std::size_t>(size) * size * 3)};
  for (std::size_t p = 0; p < static_cast<std::size_t>(size) * size; ++p) {
    const std::uint8_t* in = &plane.samples[p * channels];
    std::uint8_t* out = &rgb.samples[p * 3];
    if (channels <= 2) {
      out[0] = out[1] = out[2] = in[0];
    } else {
      out[0] = in[0];
      out[1] = in[1];
      out[2] = in[2];
    }
  }
  return rgb;
}

}  // namespace detail

/// The S x S RGB image the reference feeds ToTensor: resized, center-cropped, converted.
inline Image resize_and_crop(const Image& image, int image_size) {
  detail::check_image(image);
  PreprocessOptions options;
  options.image_size = image_size;
  detail::check_options(options);
  detail::Plane<std::uint8_t> rgb = detail::resize_crop_to_rgb8(image, image_size);
  Image out;
  out.width = rgb.width;
  out.height = rgb.height;
  out.mode = PixelMode::RGB;
  out.pixels = std::move(rgb.samples);
  return out;
}

/// Preprocesses one image into out[3 * S * S], channel-major (CHW) like the reference tensor.
/// ToTensor and Normalize run in float32 as torch does, so both Scalar types carry the
/// reference's values exactly.
template <typename Scalar>
void preprocess_image(const Image& image, const PreprocessOptions& options, Scalar* out) {
  if (out == nullptr) throw Error("preprocess_image: output pointer is null");
  detail::check_image(image);
  detail::check_options(options);
  const int size = options.image_size;
  const detail::Plane<std::uint8_t> rgb = detail::resize_crop_to_rgb8(image, size);
  const std::size_t plane_size = static_cast<std::size_t>(size) * size;
  for (int c = 0; c < 3; ++c) {
    const float mean = options.mean[c];
    const float std_dev = options.std[c];
    Scalar* channel = out + c * plane_size;
    for (std::size_t p = 0; p < plane_size; ++p) {
      const float unit = static_cast<float>(rgb.samples[p * 3 + c]) / 255.0f;  // ToTensor
      channel[p] = static_cast<Scalar>((unit - mean) / std_dev);                 // Normalize
    }
  }
}

/// Preprocesses a batch: row i holds image i as 3*S*S values in CHW order.
template <typename Scalar = float>
RowMatrix<Scalar> preprocess_images(const std::vector<Image>& images, const PreprocessOptions& options) {
  detail::check_options(options);
  const Eigen::Index row_size = 3 * static_cast<Eigen::Index>(options.image_size) * options.image_size;
  RowMatrix<Scalar> batch(static_cast<Eigen::Index>(images.size()), row_size);
  for (std::size_t i = 0; i < images.size(); ++i) {
    try {
      preprocess_image(images[i], options, batch.row(static_cast<Eigen::Index>(i)).data());
    } catch (const Error& error) {
      throw Error("image " + std::to_string(i) + " of the batch: " + error.what());
    }
  }
  return batch;
}

CLIP_INSTANTIATE(void preprocess_image(const Image&, const PreprocessOptions&, float*))
CLIP_INSTANTIATE(void preprocess_image(const Image&, const PreprocessOptions&, double*))
CLIP_INSTANTIATE(RowMatrix<float> preprocess_images(const std::vector<Image>&, const PreprocessOptions&))
CLIP_INSTANTIATE(RowMatrix<double> preprocess_images(const std::vector<Image>&, const PreprocessOptions&))

}  // namespace clip
