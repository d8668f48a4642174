// Fuzz target: image decoding and preprocessing.
// 1. Any bytes as an encoded image (PNG, JPEG, BMP, GIF, TGA, PNM, PSD, HDR, PIC: stb_image and
//    the library's own header checks), then CLIP's resize/crop/normalise at small sizes.
// 2. The same bytes as a small raw image: width 1..16 (byte 0), height 1..16 (byte 1), Pillow
//    mode (byte 2), samples from the rest (repeated to fill), through every resampling path.
// Any clip::Error is a correct refusal; anything else is a finding.

#define CLIP_STB_IMAGE_IMPLEMENTATION
#include <clip/image/decode.hpp>
#include <clip/image/preprocess.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

void preprocess_at(const clip::Image& image, std::initializer_list<int> sizes) {
  for (int size : sizes) {
    clip::PreprocessOptions options;
    options.image_size = size;
    options.max_resized_pixels = std::uint64_t{1} << 17;
    std::vector<float> out(static_cast<std::size_t>(3) * size * size);
    clip::preprocess_image(image, options, out.data());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    clip::DecodeOptions options;
    options.max_pixels = std::uint64_t{1} << 18;  // 512 x 512: each input well under a second (ASan, -O1)
    const clip::Image image = clip::decode_image_memory(data, size, "fuzz input", options);
    preprocess_at(image, {1, 3, 16});
    (void)clip::resize_and_crop(image, 7, {false, std::uint64_t{1} << 17});
  } catch (const clip::Error&) {
  }

  if (size < 3) return 0;
  clip::Image raw;
  raw.width = 1 + data[0] % 16;
  raw.height = 1 + data[1] % 16;
  raw.mode = static_cast<clip::PixelMode>(data[2] % 7);
  const std::size_t pixels = static_cast<std::size_t>(raw.width) * raw.height;
  const std::uint8_t* samples = data + 3;
  const std::size_t available = size - 3;
  auto sample = [&](std::size_t i) { return available ? samples[i % available] : std::uint8_t{0}; };
  if (raw.mode == clip::PixelMode::Gray16) {
    for (std::size_t i = 0; i < pixels; ++i)
      raw.pixels16.push_back(static_cast<std::uint16_t>(sample(2 * i) << 8 | sample(2 * i + 1)));
  } else {
    const std::size_t count = pixels * static_cast<std::size_t>(clip::channel_count(raw.mode));
    for (std::size_t i = 0; i < count; ++i) raw.pixels.push_back(sample(i));
  }
  try {
    preprocess_at(raw, {1, 5, 24});
  } catch (const clip::Error&) {
  }
  return 0;
}
