// Tokenizer throughput in characters (code points) per second: the public reference corpora
// (tokenizer/public.jsonl, ftfy/public.jsonl) one text at a time, and one-megabyte texts; each
// with fix_text (the default), without it, and fix_text alone. Needs CLIP_REFERENCE_DIR.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "clip/text/fix_text.hpp"
#include "clip/text/tokenizer.hpp"

namespace {

std::string reference_dir() {
  const char* dir = std::getenv("CLIP_REFERENCE_DIR");
  return dir ? dir : "";
}

const clip::Tokenizer* tokenizer() {
  static std::unique_ptr<clip::Tokenizer> instance = []() -> std::unique_ptr<clip::Tokenizer> {
    const std::string path = reference_dir() + "/tokenizer/bpe_simple_vocab_16e6.txt.gz";
    if (reference_dir().empty() || !std::ifstream(path)) return nullptr;
    return std::make_unique<clip::Tokenizer>(clip::Tokenizer::from_bpe_gz(path));
  }();
  return instance.get();
}

std::vector<std::string> read_texts(const std::string& relative) {
  std::vector<std::string> out;
  std::ifstream in(reference_dir() + "/" + relative);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
  return out;
}

const std::vector<std::string>& public_texts() {
  static const std::vector<std::string> texts = read_texts("tokenizer/public.jsonl");
  return texts;
}

const std::vector<std::string>& ftfy_texts() {
  static const std::vector<std::string> texts = read_texts("ftfy/public.jsonl");
  return texts;
}

const clip::TokenizerOptions kWithoutFixText{false};

std::size_t count_code_points(const std::string& text) {
  std::size_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

// What each benchmark runs on a text: the tokenizer with or without fix_text, or fix_text alone.
enum class Work { encode, encode_without_fix_text, fix_text_only };

void run(Work work, const clip::Tokenizer* tok, const std::string& text) {
  switch (work) {
    case Work::encode: benchmark::DoNotOptimize(tok->encode(text)); break;
    case Work::encode_without_fix_text: benchmark::DoNotOptimize(tok->encode(text, kWithoutFixText)); break;
    case Work::fix_text_only: benchmark::DoNotOptimize(clip::fix_text(text)); break;
  }
}

void corpus_benchmark(benchmark::State& state, const std::vector<std::string>& texts, Work work) {
  const clip::Tokenizer* tok = tokenizer();
  if (!tok || texts.empty()) return state.SkipWithError("set CLIP_REFERENCE_DIR to the reference data");
  std::size_t characters = 0;
  for (const auto& text : texts) characters += count_code_points(text);
  for (auto _ : state)
    for (const auto& text : texts) run(work, tok, text);
  state.counters["chars/s"] = benchmark::Counter(static_cast<double>(characters), benchmark::Counter::kIsIterationInvariantRate);
}

// One megabyte of the tokenizer corpus (mostly ASCII), joined by `separator`: " " makes it one
// line, "\n" a document of short lines.
void megabyte_benchmark(benchmark::State& state, const char* separator, Work work) {
  const clip::Tokenizer* tok = tokenizer();
  if (!tok || public_texts().empty()) return state.SkipWithError("set CLIP_REFERENCE_DIR to the reference data");
  std::string text;
  for (std::size_t i = 0; text.size() < (1u << 20); ++i) text += public_texts()[i % public_texts().size()] + separator;
  const std::size_t characters = count_code_points(text);
  for (auto _ : state) run(work, tok, text);
  state.counters["chars/s"] = benchmark::Counter(static_cast<double>(characters), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_EncodePublicCorpus(benchmark::State& s) { corpus_benchmark(s, public_texts(), Work::encode); }
void BM_EncodePublicCorpusWithoutFixText(benchmark::State& s) { corpus_benchmark(s, public_texts(), Work::encode_without_fix_text); }
void BM_FixTextPublicCorpus(benchmark::State& s) { corpus_benchmark(s, public_texts(), Work::fix_text_only); }
void BM_EncodeFtfyCorpus(benchmark::State& s) { corpus_benchmark(s, ftfy_texts(), Work::encode); }
void BM_EncodeFtfyCorpusWithoutFixText(benchmark::State& s) { corpus_benchmark(s, ftfy_texts(), Work::encode_without_fix_text); }
void BM_FixTextFtfyCorpus(benchmark::State& s) { corpus_benchmark(s, ftfy_texts(), Work::fix_text_only); }
void BM_EncodeOneMegabyte(benchmark::State& s) { megabyte_benchmark(s, " ", Work::encode); }
void BM_EncodeOneMegabyteWithoutFixText(benchmark::State& s) { megabyte_benchmark(s, " ", Work::encode_without_fix_text); }
void BM_FixTextOneMegabyte(benchmark::State& s) { megabyte_benchmark(s, " ", Work::fix_text_only); }
void BM_EncodeOneMegabyteLines(benchmark::State& s) { megabyte_benchmark(s, "\n", Work::encode); }
void BM_EncodeOneMegabyteLinesWithoutFixText(benchmark::State& s) { megabyte_benchmark(s, "\n", Work::encode_without_fix_text); }
void BM_FixTextOneMegabyteLines(benchmark::State& s) { megabyte_benchmark(s, "\n", Work::fix_text_only); }
BENCHMARK(BM_EncodePublicCorpus)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodePublicCorpusWithoutFixText)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FixTextPublicCorpus)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeFtfyCorpus)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeFtfyCorpusWithoutFixText)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FixTextFtfyCorpus)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeOneMegabyte)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeOneMegabyteWithoutFixText)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FixTextOneMegabyte)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeOneMegabyteLines)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeOneMegabyteLinesWithoutFixText)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FixTextOneMegabyteLines)->Unit(benchmark::kMillisecond);

void BM_EncodeOneMegabyteSingleWord(benchmark::State& state) {
  const clip::Tokenizer* tok = tokenizer();
  if (!tok) return state.SkipWithError("set CLIP_REFERENCE_DIR to the reference data");
  std::string word;
  for (int i = 0; word.size() < (1u << 20); ++i) word += static_cast<char>('a' + (i * 7 + i / 13) % 26);
  for (auto _ : state) benchmark::DoNotOptimize(tok->encode(word));
  state.counters["chars/s"] = benchmark::Counter(static_cast<double>(word.size()), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_EncodeOneMegabyteSingleWord)->Unit(benchmark::kMillisecond);

}  // namespace
