// bench_geometry: clip::geometry's statistics on n rows per modality of d float32 features,
// memory-mapped from .npy files (a million 512-d rows: 2 GB per modality). A plain timed
// program, not a Google Benchmark loop: one pass over 4 GB is the measurement. It writes the two
// files first if they are missing (CLIP-like: off-centre, anisotropic, tilted shells, two
// features that separate the modalities), then times each stage and samples the process's
// anonymous memory (its own allocations, excluding the file pages the mapping brings in).
//
//   build/tests/benchmarks/bench_geometry --dir /tmp/clip-geometry-bench --rows 1000000 --dim 512
//   rm -r /tmp/clip-geometry-bench      # 4 GB
//
// The paired terms compare every image with every text (n^2 d), so they are timed on the first
// --paired-rows pairs only.

#include <clip/analysis/geometry.hpp>
#include <clip/formats/npy.hpp>
#include <clip/threading.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;

/// A value from /proc/self/status in kB (RssAnon, VmHWM, ...), or -1.
long status_kb(const std::string& key) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(key + ":", 0) == 0) return std::atol(line.c_str() + key.size() + 1);
  return -1;
}

/// Samples RssAnon every 20 ms while alive; peak() is the largest seen.
class AnonymousMemorySampler {
 public:
  AnonymousMemorySampler() : thread_([this] {
      while (!stop_) {
        peak_ = std::max(peak_.load(), status_kb("RssAnon"));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }) {}
  ~AnonymousMemorySampler() {
    stop_ = true;
    thread_.join();
  }
  long peak() const { return std::max(peak_.load(), status_kb("RssAnon")); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<long> peak_{0};
  std::thread thread_;
};

/// Fast approximate normals (sum of four uniforms, scaled to unit variance) from xorshift64*:
/// the data only needs to look like embeddings, and std::normal_distribution would take
/// minutes for 10^9 values.
struct FastNormal {
  std::uint64_t state;
  explicit FastNormal(std::uint64_t seed) : state(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float operator()() {
    float sum = 0;
    for (int i = 0; i < 4; ++i) {
      state ^= state >> 12, state ^= state << 25, state ^= state >> 27;
      sum += static_cast<float>((state * 0x2545F4914F6CDD1Dull) >> 40) * (1.0f / 16777216.0f);
    }
    return (sum - 2.0f) * 1.7320508f;  // variance of the sum is 4/12
  }
};

/// Writes one modality: x_j = mean_j + scale_j z_j + 0.6 scale_j z_{j+1} (tilted), with two
/// features (3 and 7) moved apart between the modalities.
void generate(const std::string& path, long rows, long dim, bool images) {
  std::ofstream file(path + ".tmp", std::ios::binary);
  const std::string header = clip::npy_header(clip::NpyType::Float32, static_cast<std::uint64_t>(rows), static_cast<std::uint64_t>(dim));
  file.write(header.data(), static_cast<std::streamsize>(header.size()));
  std::vector<float> mean(dim), scale(dim);
  FastNormal setup(images ? 1 : 2);
  for (long j = 0; j < dim; ++j) mean[j] = 0.05f * setup(), scale[j] = 0.02f + 0.015f * std::abs(setup());
  mean[3] += images ? 0.12f : -0.12f;
  mean[7] += images ? -0.1f : 0.1f;
  constexpr long kChunk = 16384;
  std::vector<float> chunk(static_cast<std::size_t>(kChunk * dim));
  for (long first = 0; first < rows; first += kChunk) {
    const long count = std::min(kChunk, rows - first);
    clip::detail::parallel_for(2, clip::num_threads(), [&](int part) {
      FastNormal normal(static_cast<std::uint64_t>(first * 2 + part) * 2 + (images ? 1 : 0));
      std::vector<float> z(dim + 1);
      for (long i = count * part / 2; i < count * (part + 1) / 2; ++i) {
        for (long j = 0; j <= dim; ++j) z[j] = normal();
        for (long j = 0; j < dim; ++j) chunk[i * dim + j] = mean[j] + scale[j] * (z[j] + 0.6f * z[j + 1]);
      }
    });
    file.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(count * dim * sizeof(float)));
  }
  file.close();
  if (!file) throw clip::Error(path + ": cannot write");
  fs::rename(path + ".tmp", path);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp/clip-geometry-bench";
  long rows = 1000000, dim = 512, paired_rows = 8192;
  int threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--dir") dir = value;
    else if (flag == "--rows") rows = std::atol(value.c_str());
    else if (flag == "--dim") dim = std::atol(value.c_str());
    else if (flag == "--paired-rows") paired_rows = std::atol(value.c_str());
    else if (flag == "--threads") threads = std::atoi(value.c_str());
    else {
      std::cerr << "usage: bench_geometry [--dir D] [--rows N] [--dim D] [--paired-rows N] [--threads N]\n";
      return 2;
    }
  }
  if (threads > 0) clip::set_num_threads(threads);
  try {
    fs::create_directories(dir);
    const std::string images_path = dir + "/images.npy", texts_path = dir + "/texts.npy";
    for (const auto& [path, images] : {std::pair{images_path, true}, std::pair{texts_path, false}}) {
      bool ok = false;
      if (fs::exists(path)) {
        const clip::NpyFile existing(path);
        ok = existing.rows() == static_cast<std::uint64_t>(rows) && existing.cols() == static_cast<std::uint64_t>(dim);
      }
      if (!ok) {
        const auto start = std::chrono::steady_clock::now();
        generate(path, rows, dim, images);
        std::printf("wrote %s (%ld x %ld float32) in %.1f s\n", path.c_str(), rows, dim, seconds_since(start));
      }
    }

    AnonymousMemorySampler memory;
    const long anonymous_before = status_kb("RssAnon");
    const auto total = std::chrono::steady_clock::now();
    const clip::NpyFile images_file(images_path), texts_file(texts_path);
    const Eigen::Map<const clip::RowMatrix<float>> images(images_file.data<float>(), rows, dim);
    const Eigen::Map<const clip::RowMatrix<float>> texts(texts_file.data<float>(), rows, dim);
    namespace geometry = clip::geometry;

    auto start = std::chrono::steady_clock::now();
    const geometry::ShellStatistics image_shell = geometry::shell_statistics<float>(images, "images");
    const double t_images = seconds_since(start);
    start = std::chrono::steady_clock::now();
    const geometry::ShellStatistics text_shell = geometry::shell_statistics<float>(texts, "texts");
    const double t_texts = seconds_since(start);
    start = std::chrono::steady_clock::now();
    const auto separating = geometry::feature_separability<float>(images, texts, image_shell, text_shell, 10);
    const double t_separability = seconds_since(start);
    const double gap = geometry::centroid_distance(image_shell, text_shell);
    const double t_linear = seconds_since(total);

    start = std::chrono::steady_clock::now();
    const long pairs = std::min(paired_rows, rows);
    const auto terms = geometry::paired_terms<float>(images.topRows(pairs), texts.topRows(pairs), 100.0,
                                                     {-1, -0.5, 0, 0.25, 0.5, 0.75, 1, 1.5}, 0, &image_shell.mean);
    const double t_paired = seconds_since(start);

    std::printf("n = %ld per modality, d = %ld, float32, memory-mapped; %d threads\n", rows, dim, clip::num_threads());
    std::printf("  shell statistics, images     %7.2f s\n", t_images);
    std::printf("  shell statistics, texts      %7.2f s\n", t_texts);
    std::printf("  feature separability (top10) %7.2f s\n", t_separability);
    std::printf("  all linear statistics        %7.2f s  (mapping included)\n", t_linear);
    std::printf("  paired terms + 8-alpha sweep %7.2f s  on the first %ld pairs (all %ld x %ld products)\n", t_paired, pairs, pairs, pairs);
    std::printf("  peak anonymous memory        %7.1f MB  (%.1f MB before the run; the mapped input is not counted)\n",
                static_cast<double>(memory.peak()) / 1024, static_cast<double>(anonymous_before) / 1024);
    std::printf("  peak resident (VmHWM)        %7.1f MB  (includes the mapped file pages)\n", static_cast<double>(status_kb("VmHWM")) / 1024);
    std::printf("  check: |mean I| %.4f, norm %.4f +- %.4f, conformity r %.6f, gap %.4f, best features %lld (%.4f) %lld (%.4f), loss %.4f\n",
                image_shell.mean_vector_norm, image_shell.mean_norm, image_shell.norm_std, image_shell.conformity_pearson, gap,
                static_cast<long long>(separating[0].feature), separating[0].accuracy, static_cast<long long>(separating[1].feature),
                separating[1].accuracy, terms[0].loss);
  } catch (const std::exception& e) {
    std::cerr << "bench_geometry: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
