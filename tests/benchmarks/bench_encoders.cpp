// Image and text encoding on a ViT-B/32-sized model with random weights (the speed does not
// depend on the values). The model is written to the temp folder once at start.
//
//   bench_encoders [--benchmark_repetitions=5 --benchmark_report_aggregates_only=true]
//
// Arguments are {batch, threads} (clip::set_num_threads). The workloads: W1 EncodeImages/1,
// W2 EncodeImages/16, W3 EncodeTexts/1, W4 EncodeTexts/64 (256 prompts = 4 such batches); each
// as /f32/ and as /q8/ (the same weights converted with --dtype q8).

#include <clip/convert/convert.hpp>
#include <clip/model/detail/attention.hpp>
#include <clip/model/detail/block_matrix.hpp>
#include <clip/model/detail/layers.hpp>
#include <clip/model/detail/products.hpp>
#include <clip/model/detail/transformer.hpp>
#include <clip/model/model.hpp>
#include <clip/isa.hpp>
#include <clip/threading.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace {

// The same random weights in F32 and, for the *Q8 benchmarks, as q8 (clip-convert --dtype q8).
const clip::Model<float>& vit_b32(bool q8 = false) {
  static const std::string f32_path = [] {
    const std::string path = (std::filesystem::temp_directory_path() / "clip-bench-vit-b-32-random.safetensors").string();
    clip::random_model(clip::named_config("ViT-B-32"), "", clip::DType::F32).write(path);
    return path;
  }();
  static const std::unique_ptr<clip::Model<float>> f32 = std::make_unique<clip::Model<float>>(f32_path);
  if (!q8) return *f32;
  static const std::unique_ptr<clip::Model<float>> quantized = [] {
    const std::string path = (std::filesystem::temp_directory_path() / "clip-bench-vit-b-32-random-q8.safetensors").string();
    clip::ConvertOptions options;
    options.q8 = true;
    clip::convert_checkpoint(f32_path, options).write(path);
    return std::make_unique<clip::Model<float>>(path);
  }();
  return *quantized;
}

void EncodeImages(benchmark::State& state, bool q8) {
  const clip::Model<float>& model = vit_b32(q8);
  const int size = model.config().vision.image_size;
  const clip::RowMatrix<float> pixels = clip::RowMatrix<float>::Random(state.range(0), 3 * size * size);
  clip::set_num_threads(static_cast<int>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(model.encode_images(pixels));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK_CAPTURE(EncodeImages, f32, false)->ArgsProduct({{1, 16}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(EncodeImages, q8, true)->ArgsProduct({{1, 16}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();

// A short prompt: SOT, 6 ids, EOT ("a photo of a cat." is 6 BPE tokens), zero padding.
void EncodeTexts(benchmark::State& state, bool q8) {
  const clip::Model<float>& model = vit_b32(q8);
  const int context = model.config().text.context_length;
  clip::TokenMatrix tokens = clip::TokenMatrix::Zero(state.range(0), context);
  for (Eigen::Index n = 0; n < tokens.rows(); ++n) {
    tokens.row(n).head(8) << 49406, 320, 1125, 539, 320, 2368, 269, 49407;
  }
  clip::set_num_threads(static_cast<int>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(model.encode_texts(tokens));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK_CAPTURE(EncodeTexts, f32, false)->ArgsProduct({{1, 64}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(EncodeTexts, q8, true)->ArgsProduct({{1, 64}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();

// The same prompt computed over all 77 positions, as OpenAI's code does: what the EOT shortcut saves.
void EncodeTextsFullContext(benchmark::State& state) {
  const clip::Model<float>& model = vit_b32();
  clip::TokenMatrix tokens = clip::TokenMatrix::Zero(1, model.config().text.context_length);
  tokens.row(0).head(8) << 49406, 320, 1125, 539, 320, 2368, 269, 49407;
  clip::set_num_threads(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(model.encode_texts(tokens, clip::TextSpan::FullContext));
}
BENCHMARK(EncodeTextsFullContext)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// Where one image's time goes (the W1 profile): each step of the 12 vision blocks on one image's
// 50 tokens, one thread, over every layer's weights in turn as the encoder reads them (so the
// products stream their weights from memory as in W1). The time is per image (12 layers);
// GFLOP/s counts 2 x multiply-adds.
enum class VisionStep { Qkv, OutProj, Fc, Proj, Attention, LayerNorms, QuickGelu, PatchEmbedding };

void VisionBlockStep(benchmark::State& state, bool q8) {
  const clip::Model<float>& model = vit_b32(q8);
  const auto& blocks = model.weights().vision().blocks;
  const clip::VisionConfig& v = model.config().vision;
  const Eigen::Index tokens = v.tokens();
  const Eigen::Index width = v.width;
  const Eigen::Index mlp = v.mlp_width;
  const auto step = static_cast<VisionStep>(state.range(0));
  clip::set_num_threads(1);
  const clip::RowMatrix<float> x = clip::RowMatrix<float>::Random(tokens, width);
  const clip::RowMatrix<float> hidden_in = clip::RowMatrix<float>::Random(tokens, mlp);
  const clip::RowMatrix<float> qkv = clip::RowMatrix<float>::Random(tokens, 3 * width);
  clip::RowMatrix<float> out(tokens, mlp), normed(tokens, width);
  clip::detail::AttentionScratch<float> attention;
  clip::detail::BlockBuffers<float> buffers;
  const Eigen::Index patches = tokens - 1, patch_values = 3 * v.patch_size * v.patch_size;
  const clip::RowMatrix<float> patch_rows = clip::RowMatrix<float>::Random(patches, patch_values);
  double flops = 0;
  for (auto _ : state) {
    if (step == VisionStep::PatchEmbedding) {  // once per image, not per block
      clip::detail::multiply_transposed(patch_rows,
                                        clip::detail::weight_rows(model.weights().vision().patch_embedding, 0, width),
                                        out.topLeftCorner(patches, width), buffers.dense);
      flops += 2.0 * patches * patch_values * width;
      continue;
    }
    for (const clip::BlockWeights<float>& block : blocks) {
      switch (step) {
        case VisionStep::Qkv:
          clip::detail::multiply_rows(x, block.qkv_weight, 0, 3 * width, out.leftCols(3 * width), buffers);
          flops += 2.0 * tokens * width * 3 * width;
          break;
        case VisionStep::OutProj:
          clip::detail::multiply_rows(x, block.out_weight, 0, width, out.leftCols(width), buffers);
          flops += 2.0 * tokens * width * width;
          break;
        case VisionStep::Fc:
          clip::detail::multiply_rows(x, block.fc_weight, 0, mlp, out, buffers);
          flops += 2.0 * tokens * width * mlp;
          break;
        case VisionStep::Proj:
          clip::detail::multiply_rows(hidden_in, block.proj_weight, 0, width, out.leftCols(width), buffers);
          flops += 2.0 * tokens * mlp * width;
          break;
        case VisionStep::Attention:
          clip::detail::attention<float>(qkv, v.heads, false, blocks.front().qkv_weight.kernels(), normed, attention);
          flops += 2.0 * 2.0 * tokens * tokens * width;
          break;
        case VisionStep::LayerNorms:
          for (int i = 0; i < 2; ++i)
            clip::detail::layer_norm(x, block.ln_1_weight.vector(), block.ln_1_bias.vector(), 1e-5, normed);
          break;
        case VisionStep::QuickGelu:
          out = hidden_in;
          clip::detail::activate(out, clip::Activation::QuickGELU, block.fc_weight.kernels());
          break;
        case VisionStep::PatchEmbedding:
          break;
      }
    }
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(VisionBlockStep, f32, false)
    ->ArgName("step:qkv0,out1,fc2,proj3,attention4,norms5,gelu6,patch7")
    ->DenseRange(0, 7)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(VisionBlockStep, q8, true)  // only the four block products differ
    ->ArgName("step:qkv0,out1,fc2,proj3")
    ->DenseRange(0, 3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

#if defined(CLIP_HAVE_X86_KERNELS)
// The FMA limit the steps above are measured against: independent FMAs on as many registers
// as the kernels use, nothing loaded, on the instruction set CLIP_ISA (or the CPU) selects.
// flops per call: accumulators x lanes x 2 x iterations.
__attribute__((target("avx2,fma"))) float fma_loop_avx2(std::int64_t iterations, float seed) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(seed + float(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
  for (std::int64_t n = 0; n < iterations; ++n)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  for (int i = 1; i < 12; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  return _mm256_cvtss_f32(acc[0]);
}

__attribute__((target("avx512f"))) float fma_loop_avx512(std::int64_t iterations, float seed) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(seed + float(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
  for (std::int64_t n = 0; n < iterations; ++n)
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  for (int i = 1; i < 24; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  return _mm512_reduce_add_ps(acc[0]);
}

void FmaLimit(benchmark::State& state) {
  const clip::Isa isa = clip::active_isa();
  if (isa == clip::Isa::generic) {
    state.SkipWithError("the generic path has no FMA loop of its own; use CLIP_ISA=avx2 or avx512");
    return;
  }
  constexpr std::int64_t iterations = 1 << 20;
  double flops = 0;
  float sink = 0;
  for (auto _ : state) {
    if (isa == clip::Isa::avx512) {
      sink += fma_loop_avx512(iterations, sink);
      flops += 24.0 * 16 * 2 * iterations;
    } else {
      sink += fma_loop_avx2(iterations, sink);
      flops += 12.0 * 8 * 2 * iterations;
    }
  }
  benchmark::DoNotOptimize(sink);
  state.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(clip::isa_name(isa));
}
BENCHMARK(FmaLimit)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

}  // namespace

BENCHMARK_MAIN();
