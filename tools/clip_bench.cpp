// clip-bench: times the library's own code paths on the standard workloads (docs/performance.md),
// so clip can be compared with ONNX Runtime and PyTorch on the same model file.

#include "common/options.hpp"

#include <clip/error.hpp>
#include <clip/isa.hpp>
#include <clip/model/model.hpp>
#include <clip/threading.hpp>
#include <clip/text/tokenizer.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

const char* const classes[16] = {"cat",   "dog",   "car",   "airplane", "bird",  "deer", "frog",  "horse",
                                 "ship",  "truck", "apple", "chair",    "tree",  "house", "flower", "bicycle"};

struct Options {
  std::string model;
  int threads = 0;
  int repeat = 7;
  bool json = false;
  std::array<bool, 4> run{{true, true, true, true}};
};

std::array<bool, 4> parse_workloads(const std::string& text) {
  std::array<bool, 4> run{{false, false, false, false}};
  std::istringstream stream(text);
  std::string item;
  bool any = false;
  while (std::getline(stream, item, ',')) {
    if (item.size() == 2 && (item[0] == 'W' || item[0] == 'w') && item[1] >= '1' && item[1] <= '4') {
      run[static_cast<std::size_t>(item[1] - '1')] = true;
      any = true;
    } else {
      throw clip::Error("--workloads: unknown workload '" + item + "' (W1, W2, W3, W4, comma-separated)");
    }
  }
  if (!any) throw clip::Error("--workloads needs at least one of W1, W2, W3, W4");
  return run;
}

/// Parses argv into `options`; returns -1 to go on, else the exit status.
int parse(int argc, char** argv, Options& options) {
  clip::cli::Command command(
      "clip-bench",
      "Times clip on the standard workloads (docs/performance.md) after one warm-up run each, and prints the "
      "median, min and max of R runs:\n"
      "  W1  one image -> features (ms)                       encode_images, random pixels [1, 3*S*S]\n"
      "  W2  a batch of 16 images (images/s)                  encode_images, random pixels [16, 3*S*S]\n"
      "  W3  one prompt \"a photo of a cat.\" (ms)             tokenizer().tokenize + encode_texts\n"
      "  W4  256 prompts \"a photo of a {class} number {i}.\"  tokenize + encode_texts in batches of 64 (prompts/s)\n"
      "plus the load time (constructing Model<float> from the file) and the peak RSS of the process. --json prints "
      "one JSON object: W1_ms, W2_img_per_s, W3_ms, W4_txt_per_s ([median, min, max]), load_s, rss_mb, threads, repeat, isa (the kernels' instruction set: generic, avx2 or avx512, the best this "
      "CPU has unless the environment variable CLIP_ISA names one), q8 (the int8 kernels of a q8 model: avx2 or "
      "avx512-vnni; null for a float file, and on the generic path, which widens q8 matrices to float).");
  CLI::App& app = command.app();
  std::string workloads = "W1,W2,W3,W4";
  clip::cli::OutputOptions output;
  command.add_model(options.model);
  command.add_threads(options.threads);
  app.add_option("--workloads", workloads, "comma-separated workloads to run")->type_name("LIST");
  app.add_option("--repeat", options.repeat, "timed runs of each workload")->check(CLI::PositiveNumber.description(""))->type_name("R");
  command.add_output(output);
  if (const int status = command.parse(argc, argv); status >= 0) return status;
  options.json = output.json;
  options.run = parse_workloads(workloads);
  return -1;
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// One warm-up call, then `repeat` timed calls; sorted seconds.
std::vector<double> time_runs(const std::function<void()>& work, int repeat) {
  work();
  std::vector<double> times;
  for (int r = 0; r < repeat; ++r) {
    const auto start = Clock::now();
    work();
    times.push_back(seconds_since(start));
  }
  std::sort(times.begin(), times.end());
  return times;
}

/// [median, min, max]: milliseconds, or items per second when items > 0 (min rate = slowest run).
std::array<double, 3> summarise(const std::vector<double>& times, int items) {
  const double median = times[times.size() / 2], fastest = times.front(), slowest = times.back();
  if (items == 0) return {{median * 1e3, fastest * 1e3, slowest * 1e3}};
  return {{items / median, items / slowest, items / fastest}};
}

int run(const Options& options) {
  if (options.threads > 0) clip::set_num_threads(options.threads);

  const auto load_start = Clock::now();
  const clip::Model<float> model(options.model);
  const double load_s = seconds_since(load_start);

  const int size = model.config().vision.image_size;
  const Eigen::Index pixels_per_image = 3 * static_cast<Eigen::Index>(size) * size;
  std::mt19937 generator(0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random_pixels = [&](Eigen::Index n) {
    clip::RowMatrix<float> pixels(n, pixels_per_image);
    for (Eigen::Index i = 0; i < pixels.size(); ++i) pixels.data()[i] = normal(generator);
    return pixels;
  };
  std::vector<std::string> prompts;
  for (int i = 0; i < 256; ++i)
    prompts.push_back(std::string("a photo of a ") + classes[i % 16] + " number " + std::to_string(i) + ".");
  const int context = model.config().text.context_length;

  struct Result {
    const char* key;
    const char* label;
    const char* unit;
    std::array<double, 3> values;
  };
  std::vector<Result> results;
  volatile float sink = 0;  // keeps the features observable
  if (options.run[0]) {
    const clip::RowMatrix<float> pixels = random_pixels(1);
    results.push_back({"W1_ms", "W1 1 image", "ms",
                       summarise(time_runs([&] { sink = model.encode_images(pixels)(0, 0); }, options.repeat), 0)});
  }
  if (options.run[1]) {
    const clip::RowMatrix<float> pixels = random_pixels(16);
    results.push_back({"W2_img_per_s", "W2 16 images", "images/s",
                       summarise(time_runs([&] { sink = model.encode_images(pixels)(0, 0); }, options.repeat), 16)});
  }
  if (options.run[2]) {
    const std::vector<std::string> prompt{"a photo of a cat."};
    auto work = [&] { sink = model.encode_texts(model.tokenizer().tokenize(prompt, context))(0, 0); };
    results.push_back({"W3_ms", "W3 1 prompt", "ms", summarise(time_runs(work, options.repeat), 0)});
  }
  if (options.run[3]) {
    auto work = [&] {
      for (std::size_t begin = 0; begin < prompts.size(); begin += 64) {
        const std::vector<std::string> batch(prompts.begin() + static_cast<std::ptrdiff_t>(begin),
                                             prompts.begin() + static_cast<std::ptrdiff_t>(begin + 64));
        sink = model.encode_texts(model.tokenizer().tokenize(batch, context))(0, 0);
      }
    };
    results.push_back({"W4_txt_per_s", "W4 256 prompts", "prompts/s", summarise(time_runs(work, options.repeat), 256)});
  }

  rusage usage_now{};
  getrusage(RUSAGE_SELF, &usage_now);
  const double rss_mb = static_cast<double>(usage_now.ru_maxrss) / 1024.0;  // ru_maxrss is KiB on Linux

  if (options.json) {
    std::printf("{");
    for (const Result& r : results)
      std::printf("\"%s\": [%.2f, %.2f, %.2f], ", r.key, r.values[0], r.values[1], r.values[2]);
    const char* q8 = model.weights().q8_kernels();
    std::printf("\"load_s\": %.3f, \"rss_mb\": %.1f, \"threads\": %d, \"repeat\": %d, \"isa\": \"%s\", \"q8\": %s}\n",
                load_s, rss_mb, clip::num_threads(), options.repeat, clip::isa_name(model.weights().isa()),
                q8 ? ("\"" + std::string(q8) + "\"").c_str() : "null");
  } else {
    const char* q8 = model.weights().q8_kernels();
    std::printf("model %s, %d thread(s), %s kernels%s (CLIP_ISA overrides), %d runs after a warm-up\n",
                options.model.c_str(), clip::num_threads(), clip::isa_name(model.weights().isa()),
                q8 ? (std::string(", q8 matrices on ") + q8 + " int8 kernels").c_str() : "", options.repeat);
    std::printf("%-16s %12s %12s %12s  %s\n", "workload", "median", "min", "max", "unit");
    for (const Result& r : results)
      std::printf("%-16s %12.2f %12.2f %12.2f  %s\n", r.label, r.values[0], r.values[1], r.values[2], r.unit);
    std::printf("load %.3f s, peak RSS %.1f MB\n", load_s, rss_mb);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clip::cli::run_main("clip-bench", [&] {
    Options options;
    if (const int status = parse(argc, argv, options); status >= 0) return status;
    return run(options);
  });
}
