#pragma once
// EmbeddingPipeline: image (and caption) embeddings for a stream of many inputs. Decoding and
// preprocessing run on their own threads while the encoder works on the previous batch (on the
// thread pool, clip::set_num_threads), so decoding is hidden behind encoding as far as the
// cores allow. Queues are bounded (decoders run at most `queued_batches` batches ahead), the
// output comes in input order in fixed batches of `batch_size` consecutive inputs (so the same
// input always gives the same batch composition and the same bits), and a bad input only fails
// its own item: its error is kept with its key and the rest of the batch goes on.
//
//   clip::EmbeddingPipeline<float> pipeline(model);
//   pipeline.run(
//       [&](clip::PipelineItem& item) { ...fill item.key and item.path or item.encoded...; return more; },
//       [&](std::vector<clip::PipelineResult>& batch) { ...write rows in order... });

#include <clip/error.hpp>
#include <clip/image/decode.hpp>
#include <clip/image/preprocess.hpp>
#include <clip/model/model.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace clip {

/// One input: an image given as encoded bytes or as a file path, an optional caption, or an
/// error found before decoding (e.g. by the shard reader), which is passed through as is.
struct PipelineItem {
  std::string key;
  std::string path;                   // read from here when `encoded` is empty
  std::vector<std::uint8_t> encoded;  // the image file's bytes
  std::optional<std::string> caption;
  std::string error;
};

/// One output, in input order: the features (empty when the item failed) and why it failed.
struct PipelineResult {
  std::string key;
  std::optional<std::string> caption;
  std::vector<float> image_features;    // embed_dim values, or empty
  std::vector<float> caption_features;  // embed_dim values when the caption was embedded
  std::string error;
  bool ok() const { return error.empty(); }
};

struct PipelineOptions {
  int batch_size = 32;
  /// Threads decoding and preprocessing (besides the encoder's pool threads).
  int decode_threads = 1;
  /// How many batches the decoders may prepare ahead of the encoder.
  int queued_batches = 2;
  bool embed_captions = true;
  /// Captions longer than the context are cut (last token EOT) instead of failing.
  bool truncate_captions = true;
  /// L2-normalise the features (clip-retrieval writes normalised embeddings).
  bool normalize = false;
  DecodeOptions decode;
};

template <typename Scalar>
class EmbeddingPipeline {
 public:
  using Source = std::function<bool(PipelineItem&)>;
  using Sink = std::function<void(std::vector<PipelineResult>&)>;

  explicit EmbeddingPipeline(const Model<Scalar>& model, PipelineOptions options = {})
      : model_(model), options_(options), preprocess_(preprocess_options(model.config())) {
    if (options_.batch_size < 1) throw Error("EmbeddingPipeline: batch_size must be at least 1");
    if (options_.decode_threads < 1) throw Error("EmbeddingPipeline: decode_threads must be at least 1");
    if (options_.queued_batches < 1) throw Error("EmbeddingPipeline: queued_batches must be at least 1");
  }

  /// Pulls items from `source` until it returns false and hands the results to `sink`, one call
  /// per batch of `batch_size` consecutive items (the last may be shorter), in input order.
  /// `source` is called from one thread at a time; `sink` on the calling thread. An exception
  /// from `source` ends the input: the items before it are still embedded and handed to
  /// `sink`, then it is rethrown. An exception from `sink` stops the pipeline and is rethrown.
  void run(const Source& source, const Sink& sink) {
    State state;
    state.capacity = static_cast<std::size_t>(options_.batch_size) * options_.queued_batches;
    std::vector<std::thread> decoders;
    for (int t = 0; t < options_.decode_threads; ++t) decoders.emplace_back([&] { decode_loop(state, source); });
    std::exception_ptr failure;
    try {
      encode_loop(state, sink);
    } catch (...) {
      failure = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(state.mutex);
      state.stop = true;
    }
    state.changed.notify_all();
    for (std::thread& decoder : decoders) decoder.join();
    if (failure) std::rethrow_exception(failure);
    if (state.source_error) std::rethrow_exception(state.source_error);
  }

 private:
  struct Decoded {
    std::string key;
    std::optional<std::string> caption;
    std::vector<float> pixels;  // 3*S*S, CHW
    TokenMatrix tokens;         // one row when the caption is embedded
    std::string error;
  };

  struct State {
    std::mutex source_mutex;  // one reader of the source at a time
    std::mutex mutex;         // guards everything below
    std::condition_variable changed;
    std::size_t capacity = 0;
    std::size_t next_to_read = 0;  // sequence number of the next item taken from the source
    std::size_t consumed = 0;      // items the encoder has taken
    std::map<std::size_t, Decoded> ready;
    bool source_done = false;
    std::size_t total = 0;  // items in all, once source_done
    bool stop = false;
    std::exception_ptr source_error;
  };

  void decode_loop(State& state, const Source& source) {
    for (;;) {
      PipelineItem item;
      std::size_t sequence = 0;
      {
        std::lock_guard<std::mutex> reading(state.source_mutex);
        {
          std::unique_lock<std::mutex> lock(state.mutex);
          state.changed.wait(lock, [&] {
            return state.stop || state.source_done || state.next_to_read - state.consumed < state.capacity;
          });
          if (state.stop || state.source_done) return;
        }
        bool more = false;
        try {
          more = source(item);
        } catch (...) {
          std::lock_guard<std::mutex> lock(state.mutex);
          state.source_error = std::current_exception();
        }
        std::lock_guard<std::mutex> lock(state.mutex);
        if (!more) {
          state.source_done = true;
          state.total = state.next_to_read;
          state.changed.notify_all();
          return;
        }
        sequence = state.next_to_read++;
      }
      Decoded decoded = decode(std::move(item));
      {
        std::lock_guard<std::mutex> lock(state.mutex);
        state.ready.emplace(sequence, std::move(decoded));
      }
      state.changed.notify_all();
    }
  }

  /// Decode + preprocess + tokenize one item; any clip::Error stays with the item.
  Decoded decode(PipelineItem item) const {
    Decoded out;
    out.key = std::move(item.key);
    out.caption = std::move(item.caption);
    out.error = std::move(item.error);
    if (!out.error.empty()) return out;
    try {
      const Image image = item.encoded.empty()
                              ? decode_image_file(item.path, options_.decode)
                              : decode_image_memory(item.encoded.data(), item.encoded.size(),
                                                    item.path.empty() ? out.key : item.path, options_.decode);
      out.pixels.resize(3 * static_cast<std::size_t>(preprocess_.image_size) * preprocess_.image_size);
      preprocess_image(image, preprocess_, out.pixels.data());
      if (options_.embed_captions && out.caption) {
        const int context = model_.config().text.context_length;
        out.tokens = model_.tokenizer().tokenize({*out.caption}, context, options_.truncate_captions);
      }
    } catch (const std::exception& error) {  // clip::Error, or bad_alloc for a huge image
      out.error = error.what();
      out.pixels.clear();
    }
    return out;
  }

  void encode_loop(State& state, const Sink& sink) {
    const std::size_t batch_size = static_cast<std::size_t>(options_.batch_size);
    for (std::size_t first = 0;; first += batch_size) {
      std::vector<Decoded> batch;
      for (std::size_t sequence = first; sequence < first + batch_size; ++sequence) {
        std::unique_lock<std::mutex> lock(state.mutex);
        state.changed.wait(lock, [&] {
          return state.ready.count(sequence) || (state.source_done && sequence >= state.total);
        });
        const auto found = state.ready.find(sequence);
        if (found == state.ready.end()) break;  // the source ended before this item
        batch.push_back(std::move(found->second));
        state.ready.erase(found);
        state.consumed = sequence + 1;
        lock.unlock();
        state.changed.notify_all();  // the decoders may read further
      }
      if (batch.empty()) return;
      std::vector<PipelineResult> results = encode(batch);
      sink(results);
      if (batch.size() < batch_size) return;
    }
  }

  std::vector<PipelineResult> encode(std::vector<Decoded>& batch) const {
    std::vector<PipelineResult> results(batch.size());
    std::vector<std::size_t> good, captioned;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      results[i].key = std::move(batch[i].key);
      results[i].caption = std::move(batch[i].caption);
      results[i].error = std::move(batch[i].error);
      if (results[i].error.empty()) {
        good.push_back(i);
        if (batch[i].tokens.rows() == 1) captioned.push_back(i);
      }
    }
    if (good.empty()) return results;
    const Eigen::Index values = 3 * static_cast<Eigen::Index>(preprocess_.image_size) * preprocess_.image_size;
    RowMatrix<Scalar> pixels(static_cast<Eigen::Index>(good.size()), values);
    for (std::size_t row = 0; row < good.size(); ++row)
      for (Eigen::Index j = 0; j < values; ++j)
        pixels(static_cast<Eigen::Index>(row), j) = static_cast<Scalar>(batch[good[row]].pixels[j]);
    store(model_.encode_images(pixels), good, results, &PipelineResult::image_features);
    if (!captioned.empty()) {
      TokenMatrix tokens(static_cast<Eigen::Index>(captioned.size()), batch[captioned[0]].tokens.cols());
      for (std::size_t row = 0; row < captioned.size(); ++row)
        tokens.row(static_cast<Eigen::Index>(row)) = batch[captioned[row]].tokens.row(0);
      store(model_.encode_texts(tokens), captioned, results, &PipelineResult::caption_features);
    }
    return results;
  }

  void store(const RowMatrix<Scalar>& features, const std::vector<std::size_t>& rows,
             std::vector<PipelineResult>& results, std::vector<float> PipelineResult::*field) const {
    for (std::size_t row = 0; row < rows.size(); ++row) {
      auto values = features.row(static_cast<Eigen::Index>(row));
      const Scalar norm = options_.normalize ? values.norm() : Scalar(1);
      std::vector<float>& out = results[rows[row]].*field;
      out.resize(static_cast<std::size_t>(values.size()));
      for (Eigen::Index j = 0; j < values.size(); ++j)
        out[static_cast<std::size_t>(j)] = static_cast<float>(norm > 0 ? values(j) / norm : values(j));
    }
  }

  const Model<Scalar>& model_;
  PipelineOptions options_;
  PreprocessOptions preprocess_;
};

}  // namespace clip
