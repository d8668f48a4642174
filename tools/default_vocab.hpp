#pragma once
// The gzipped BPE vocabulary built into clip-convert (see default_vocab.cpp).

#include <clip/text/tokenizer.hpp>

#include <string_view>

namespace clip_tools {

std::string_view default_vocab_gz();

/// CLIP's tokenizer from the built-in vocabulary.
inline clip::Tokenizer default_tokenizer() {
  return clip::Tokenizer::from_bpe_gz_bytes(default_vocab_gz(), "built-in bpe_simple_vocab_16e6.txt.gz");
}

}  // namespace clip_tools
