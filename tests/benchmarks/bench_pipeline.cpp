// End-to-end throughput of the pipelined batch path (decode JPEG + preprocess + encode) against
// encode-only of the same build, on a ViT-B/32-shaped random model (written to the temp
// folder at start, as bench_encoders does). The images are the bundled demo renders scaled to
// 640x480 and to 4000x3000 and encoded as JPEG (quality 90) in memory, so no disk is timed.
//
//   bench_pipeline --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// EncodeOnly/B/T: model.encode_images on B preprocessed images, T threads (the W2 workload at
// B=16). EndToEnd/W/T: EmbeddingPipeline over 64 JPEGs of width W (at 4000: 16 distinct ones,
// each four times), batch 16, T encoder threads and T decode threads. DecodePreprocess/W: one
// image, one thread; Decode/W: its decoding alone. Compare images/s (items_per_second). For
// EncodeOnly and EndToEnd the CPU column is the whole process's CPU time (every thread), so
// CPU time per image compares the two where the machine is shared and wall time is not fair.

#define CLIP_STB_IMAGE_IMPLEMENTATION  // header-only builds; clip_compiled holds it otherwise
#include <clip/convert/convert.hpp>
#include <clip/image/detail/resample.hpp>
#include <clip/model/model.hpp>
#include <clip/pipeline/embedding_pipeline.hpp>
#include <clip/threading.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <jpeglib.h>

#ifndef CLIP_SOURCE_DIR
#error "CLIP_SOURCE_DIR must name the source tree (the demo images)"
#endif

namespace {

const clip::Model<float>& vit_b32() {
  static const std::unique_ptr<clip::Model<float>> model = [] {
    const std::string path = (std::filesystem::temp_directory_path() / "clip-bench-vit-b-32-random.safetensors").string();
    if (!std::filesystem::exists(path)) clip::random_model(clip::named_config("ViT-B-32"), "", clip::DType::F32).write(path);
    return std::make_unique<clip::Model<float>>(path);
  }();
  return *model;
}

std::vector<std::uint8_t> encode_jpeg(const clip::detail::Plane<std::uint8_t>& rgb, int quality) {
  jpeg_compress_struct info;
  jpeg_error_mgr error;
  info.err = jpeg_std_error(&error);
  jpeg_create_compress(&info);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&info, &buffer, &size);
  info.image_width = static_cast<JDIMENSION>(rgb.width);
  info.image_height = static_cast<JDIMENSION>(rgb.height);
  info.input_components = 3;
  info.in_color_space = JCS_RGB;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, TRUE);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(&rgb.samples[static_cast<std::size_t>(info.next_scanline) * rgb.width * 3]);
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  std::vector<std::uint8_t> out(buffer, buffer + size);
  jpeg_destroy_compress(&info);
  std::free(buffer);
  return out;
}

/// 64 demo renders scaled (Pillow-exact bicubic) to width x width*3/4, as JPEG bytes. At
/// 4000x3000 only 16 distinct images are made (scaling and encoding them takes long), each given
/// four times: 64 inputs are four batches, so decoding overlaps encoding as it would over a shard
/// (with a single batch nothing could overlap and the figure would be the pipeline's fill time).
const std::vector<std::vector<std::uint8_t>>& jpegs(int width) {
  static std::map<int, std::vector<std::vector<std::uint8_t>>> cache;
  auto& files = cache[width];
  if (files.empty()) {
    const int height = width * 3 / 4;
    const int count = 64, distinct = width >= 2000 ? 16 : 64;
    for (int i = 0; i < distinct; ++i) {
      char name[64];
      std::snprintf(name, sizeof name, "%s/tests/data/demo/%03d.png", CLIP_SOURCE_DIR, i);
      const clip::Image image = clip::decode_image_file(name);
      clip::detail::Plane<std::uint8_t> plane{image.width, image.height, 3, image.pixels};
      files.push_back(encode_jpeg(clip::detail::resize_bicubic(plane, width, height), 90));
    }
    for (int i = distinct; i < count; ++i) files.push_back(files[static_cast<std::size_t>(i % distinct)]);
  }
  return files;
}

void EncodeOnly(benchmark::State& state) {
  const clip::Model<float>& model = vit_b32();
  const int size = model.config().vision.image_size;
  const clip::RowMatrix<float> pixels = clip::RowMatrix<float>::Random(state.range(0), 3 * size * size);
  clip::set_num_threads(static_cast<int>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(model.encode_images(pixels));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(EncodeOnly)->Args({16, 2})->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

void EndToEnd(benchmark::State& state) {
  const clip::Model<float>& model = vit_b32();
  const auto& files = jpegs(static_cast<int>(state.range(0)));
  const int threads = static_cast<int>(state.range(1));
  clip::set_num_threads(threads);
  clip::PipelineOptions options;
  options.batch_size = 16;
  options.decode_threads = threads;
  options.embed_captions = false;
  clip::EmbeddingPipeline<float> pipeline(model, options);
  std::size_t failed = 0;
  for (auto _ : state) {
    std::size_t next = 0;
    pipeline.run(
        [&](clip::PipelineItem& item) {
          if (next == files.size()) return false;
          item.key = std::to_string(next);
          item.encoded = files[next++];
          return true;
        },
        [&](std::vector<clip::PipelineResult>& batch) {
          for (const auto& result : batch) failed += !result.ok();
        });
  }
  if (failed) state.SkipWithError("some images failed to decode");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(files.size()));
}
BENCHMARK(EndToEnd)
    ->Args({640, 2})
    ->Args({4000, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->MinTime(2.0);

void DecodePreprocess(benchmark::State& state) {
  const auto& files = jpegs(static_cast<int>(state.range(0)));
  const clip::PreprocessOptions options = clip::preprocess_options(vit_b32().config());
  std::vector<float> out(3 * static_cast<std::size_t>(options.image_size) * options.image_size);
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& file = files[i++ % files.size()];
    clip::preprocess_image(clip::decode_image_memory(file.data(), file.size(), "bench.jpg"), options, out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(DecodePreprocess)->Arg(640)->Arg(4000)->Unit(benchmark::kMillisecond)->UseRealTime();

/// Decoding alone (libjpeg-turbo, Pillow-exact): DecodePreprocess minus this is the resize.
void Decode(benchmark::State& state) {
  const auto& files = jpegs(static_cast<int>(state.range(0)));
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& file = files[i++ % files.size()];
    benchmark::DoNotOptimize(clip::decode_image_memory(file.data(), file.size(), "bench.jpg"));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(Decode)->Arg(640)->Arg(4000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
