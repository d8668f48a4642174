// Image and text encoding on a ViT-B/32-sized model with random weights (the speed does not
// depend on the values). The model is written to the temp folder once at start.
//
//   bench_encoders [--benchmark_repetitions=5 --benchmark_report_aggregates_only=true]
//
// Arguments are {batch, threads} (clip::set_num_threads). The workloads: W1 EncodeImages/1,
// W2 EncodeImages/16, W3 EncodeTexts/1, W4 EncodeTexts/64 (256 prompts = 4 such batches).

#include <clip/convert.hpp>
#include <clip/model.hpp>
#include <clip/threading.hpp>

#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>
#include <string>

namespace {

const clip::Model<float>& vit_b32() {
  static const std::unique_ptr<clip::Model<float>> model = [] {
    const std::string path = (std::filesystem::temp_directory_path() / "clip-bench-vit-b-32-random.safetensors").string();
    clip::random_model(clip::named_config("ViT-B-32"), "", clip::DType::F32).write(path);
    return std::make_unique<clip::Model<float>>(path);
  }();
  return *model;
}

void EncodeImages(benchmark::State& state) {
  const clip::Model<float>& model = vit_b32();
  const int size = model.config().vision.image_size;
  const clip::RowMatrix<float> pixels = clip::RowMatrix<float>::Random(state.range(0), 3 * size * size);
  clip::set_num_threads(static_cast<int>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(model.encode_images(pixels));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(EncodeImages)->ArgsProduct({{1, 16}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();

// A short prompt: SOT, 6 ids, EOT ("a photo of a cat." is 6 BPE tokens), zero padding.
void EncodeTexts(benchmark::State& state) {
  const clip::Model<float>& model = vit_b32();
  const int context = model.config().text.context_length;
  clip::TokenMatrix tokens = clip::TokenMatrix::Zero(state.range(0), context);
  for (Eigen::Index n = 0; n < tokens.rows(); ++n) {
    tokens.row(n).head(8) << 49406, 320, 1125, 539, 320, 2368, 269, 49407;
  }
  clip::set_num_threads(static_cast<int>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(model.encode_texts(tokens));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(EncodeTexts)->ArgsProduct({{1, 64}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();

// The same prompt computed over all 77 positions, as OpenAI's code does: what the EOT shortcut saves.
void EncodeTextsFullContext(benchmark::State& state) {
  const clip::Model<float>& model = vit_b32();
  clip::TokenMatrix tokens = clip::TokenMatrix::Zero(1, model.config().text.context_length);
  tokens.row(0).head(8) << 49406, 320, 1125, 539, 320, 2368, 269, 49407;
  clip::set_num_threads(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(model.encode_texts(tokens, clip::TextSpan::FullContext));
}
BENCHMARK(EncodeTextsFullContext)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
