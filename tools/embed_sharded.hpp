#pragma once
// clip-embed's sharded mode (--input SOURCE --output-dir OUT): plans the shards, takes this
// worker's share, skips finished shards, embeds the rest through the pipeline and reports.
// The work itself is the library's (clip/pipeline/); this file is only the loop and the
// progress line.

#include <clip/pipeline/embedding_pipeline.hpp>
#include <clip/pipeline/inputs.hpp>
#include <clip/pipeline/sharded_output.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace clip::cli {

struct ShardedOptions {
  std::string input;
  std::string output_dir;
  std::size_t shard_size = 10000;
  std::size_t worker_index = 0, worker_count = 1;
  PipelineOptions pipeline;
};

/// "I/N" -> {I, N}, 0 <= I < N.
inline std::pair<std::size_t, std::size_t> parse_worker(const std::string& text) {
  const std::size_t slash = text.find('/');
  try {
    if (slash != std::string::npos && slash > 0 && slash + 1 < text.size()) {
      std::size_t used_index = 0, used_count = 0;
      const unsigned long index = std::stoul(text.substr(0, slash), &used_index);
      const unsigned long count = std::stoul(text.substr(slash + 1), &used_count);
      if (used_index == slash && used_count == text.size() - slash - 1 && count > 0 && index < count &&
          text[0] != '-' && text[slash + 1] != '-')
        return {index, count};
    }
  } catch (const std::exception&) {
  }
  throw Error("--worker needs I/N with 0 <= I < N (e.g. 0/4), not '" + text + "'");
}

/// Progress on stderr, only when it is a terminal: items/s, shards done, ETA.
class ProgressLine {
 public:
  explicit ProgressLine(std::size_t shards) : shards_(shards), enabled_(isatty(STDERR_FILENO) != 0) {}
  void items(std::size_t count) {
    items_ += count;
    show();
  }
  void shard_done() {
    ++done_;
    show();
  }
  /// Clears the line before other messages.
  void clear() {
    if (enabled_ && shown_) std::fprintf(stderr, "\r%80s\r", "");
  }
  void finish() {
    if (enabled_ && shown_) std::fputc('\n', stderr);
  }

 private:
  void show() {
    if (!enabled_) return;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = seconds > 0 ? items_ / seconds : 0;
    std::string eta = "?";
    if (done_ > 0 && done_ < shards_) {
      const long left = static_cast<long>(seconds / done_ * (shards_ - done_));
      char text[32];
      std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", left / 3600, left / 60 % 60, left % 60);
      eta = text;
    } else if (done_ == shards_) {
      eta = "0:00:00";
    }
    std::fprintf(stderr, "\r%zu items, %.1f items/s, shards %zu/%zu, ETA %s   ", items_, rate, done_, shards_,
                 eta.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  std::size_t shards_, done_ = 0, items_ = 0;
  bool enabled_, shown_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

/// Exit status: 0 all done, 1 some items or shards failed.
inline int run_sharded(const Model<float>& model, const ShardedOptions& options) {
  std::vector<ShardInput> shards = shards_for_worker(plan_shards(options.input, options.shard_size),
                                                     options.worker_index, options.worker_count);
  std::vector<ShardInput> todo;
  std::size_t skipped = 0;
  for (ShardInput& shard : shards) {
    if (shard_finished(options.output_dir, shard.name))
      ++skipped;
    else
      todo.push_back(std::move(shard));
  }
  if (skipped) std::cerr << "clip-embed: " << skipped << " shard(s) already finished, skipped\n";
  EmbeddingPipeline<float> pipeline(model, options.pipeline);
  const auto embed_dim = static_cast<std::size_t>(model.config().embed_dim);
  ProgressLine progress(todo.size());
  int status = 0;
  for (const ShardInput& shard : todo) {
    try {
      const ShardReport report =
          embed_shard(pipeline, shard, options.output_dir, embed_dim, [&](std::size_t n) { progress.items(n); });
      progress.clear();
      for (const std::string& error : report.errors) std::cerr << "clip-embed: " << error << "\n";
      if (!report.errors.empty()) status = 1;
    } catch (const Error& error) {
      progress.clear();
      std::cerr << "clip-embed: shard " << shard.name << " not done: " << error.what() << "\n";
      status = 1;
    }
    progress.shard_done();
  }
  progress.finish();
  return status;
}

}  // namespace clip::cli
