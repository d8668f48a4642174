// Fuzz target: any bytes through CLIP's tokenizer (UTF-8 decoding, html unescape, whitespace
// cleaning, lower-casing, pre-tokenizing, byte-level BPE with OpenAI's 48,894 merges), and the
// same bytes as a merges text (what a model file's tokenizer.merges tensor holds).
//
// The first byte chooses the options: bit 0 strict UTF-8 (else replace), bit 1 truncate,
// bit 2 also parse the input as a merges text, bits 3-7 the context length (2..33, or 77 for 0).
// The rest is one text, or several separated by NUL bytes.

#include <clip/text/tokenizer.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#ifndef CLIP_SOURCE_DIR
#error "CLIP_SOURCE_DIR must name the source tree (for tools/vocab)"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const clip::Tokenizer tokenizer =
      clip::Tokenizer::from_bpe_gz(CLIP_SOURCE_DIR "/tools/vocab/bpe_simple_vocab_16e6.txt.gz");
  if (size == 0) return 0;
  const std::uint8_t options = data[0];
  const auto policy = (options & 1) ? clip::InvalidUtf8::error : clip::InvalidUtf8::replace;
  const bool truncate = (options & 2) != 0;
  const int context_length = (options >> 3) == 0 ? 77 : 1 + (options >> 3);
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  std::vector<std::string> texts;
  for (std::size_t start = 0;;) {
    const std::size_t end = rest.find('\0', start);
    texts.emplace_back(rest.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  try {
    (void)tokenizer.tokenize(texts, context_length, truncate, policy);
  } catch (const clip::Error&) {
  }
  try {
    // Round trip: decode accepts every id encode gives.
    const std::vector<std::int32_t> ids = tokenizer.encode(texts.front(), policy);
    (void)tokenizer.decode(ids);
  } catch (const clip::Error&) {
  }
  if (options & 4) {
    try {
      const clip::Tokenizer own = clip::Tokenizer::from_merges(rest);
      (void)own.decode(own.encode("a photo of a cat"));
    } catch (const clip::Error&) {
    }
  }
  return 0;
}
