// Preprocessing time (resize + crop + normalise, no decoding) for a VGA photo and a 12 MP photo
// at CLIP's usual 224 pixels.

#include <clip/image/preprocess.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

namespace {

clip::Image synthetic_rgb(int width, int height) {
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(width) * height * 3);
  std::uint32_t state = 12345;
  for (auto& v : rgb) {
    state = state * 1664525u + 1013904223u;  // noise, so no fast path could skip work
    v = static_cast<std::uint8_t>(state >> 24);
  }
  return clip::image_from_rgb8(rgb.data(), width, height, static_cast<std::size_t>(width) * 3);
}

void preprocess(benchmark::State& state) {
  const clip::Image image = synthetic_rgb(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  clip::PreprocessOptions options;
  options.image_size = 224;
  std::vector<float> out(3 * 224 * 224);
  for (auto _ : state) {
    clip::preprocess_image(image, options, out.data());
    benchmark::DoNotOptimize(out.data());
  }
}

}  // namespace

BENCHMARK(preprocess)->Args({640, 480})->Args({4000, 3000})->Unit(benchmark::kMillisecond);
