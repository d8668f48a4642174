// Tokenizer throughput in characters (code points) per second: the public reference corpus
// one text at a time, and one one-megabyte text. Needs CLIP_REFERENCE_DIR.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

const std::vector<std::string>& public_texts() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> out;
    std::ifstream in(reference_dir() + "/tokenizer/public.jsonl");
    std::string line;
    while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
    return out;
  }();
  return texts;
}

std::size_t count_code_points(const std::string& text) {
  std::size_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

void BM_EncodePublicCorpus(benchmark::State& state) {
  const clip::Tokenizer* tok = tokenizer();
  if (!tok || public_texts().empty()) return state.SkipWithError("set CLIP_REFERENCE_DIR to the reference data");
  std::size_t characters = 0;
  for (const auto& text : public_texts()) characters += count_code_points(text);
  for (auto _ : state)
    for (const auto& text : public_texts()) benchmark::DoNotOptimize(tok->encode(text));
  state.counters["chars/s"] = benchmark::Counter(static_cast<double>(characters), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_EncodePublicCorpus)->Unit(benchmark::kMillisecond);

void BM_EncodeOneMegabyte(benchmark::State& state) {
  const clip::Tokenizer* tok = tokenizer();
  if (!tok || public_texts().empty()) return state.SkipWithError("set CLIP_REFERENCE_DIR to the reference data");
  std::string text;
  for (std::size_t i = 0; text.size() < (1u << 20); ++i) text += public_texts()[i % public_texts().size()] + " ";
  const std::size_t characters = count_code_points(text);
  for (auto _ : state) benchmark::DoNotOptimize(tok->encode(text));
  state.counters["chars/s"] = benchmark::Counter(static_cast<double>(characters), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_EncodeOneMegabyte)->Unit(benchmark::kMillisecond);

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
