#pragma once
// clip::Tokenizer: OpenAI CLIP's byte-level BPE tokenizer (simple_tokenizer.py), id for id.
// Pipeline: ftfy.fix_text (clip::fix_text, on by default), html.unescape twice, strip,
// whitespace runs -> ' ', str.lower(), the regex pre-tokenizer, UTF-8 bytes through
// bytes_to_unicode, BPE by merge rank. See docs/tokenizer.md.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "clip/detail/compilation.hpp"
#include "clip/error.hpp"
#include "clip/text/invalid_utf8.hpp"
#include "clip/types.hpp"

// The tokenizer's code (fix_text and its Unicode tables, zlib, the JSON vocabulary reader) is
// compiled once in clip_compiled under separate compilation; this part declares it.
#if CLIP_HEADER_DEFINITIONS
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <queue>
#include <utility>

#include <nlohmann/json.hpp>

#include "clip/detail/read_file.hpp"
#include "clip/text/detail/html_unescape.hpp"
#include "clip/text/detail/unicode.hpp"
#include "clip/text/fix_text.hpp"
#endif

namespace clip {

/// How encode() and tokenize() prepare a text.
struct TokenizerOptions {
  /// Run clip::fix_text (ftfy.fix_text) first, as OpenAI's and open_clip's tokenizers do.
  /// Off: the text goes straight to html.unescape / whitespace / lower-case (Hugging Face's
  /// CLIPTokenizer without ftfy installed does the same).
  bool fix_text = true;
  /// Bytes that are not well-formed UTF-8: replaced by U+FFFD (Python) or an error.
  InvalidUtf8 invalid_utf8 = InvalidUtf8::replace;
};

/// OpenAI CLIP's tokenizer. Immutable after construction; all methods are const and safe to
/// call from several threads at once (the word cache is guarded by a mutex).
class Tokenizer {
 public:
  /// OpenAI's merges format: a header line, then one "a b" merge per line. At most
  /// max_merges merges are used. Vocabulary = 256 byte symbols, the same with "</w>", one
  /// entry per merge, "<|startoftext|>", "<|endoftext|>".
  static Tokenizer from_merges(std::string_view merges_text, std::size_t max_merges = SIZE_MAX) {
    return Tokenizer(merges_text, max_merges, "merges text");
  }

  /// OpenAI's bpe_simple_vocab_16e6.txt.gz, with its slice merges[1:49152-256-2+1].
  static Tokenizer from_bpe_gz(const std::string& path);

  /// The same from the gzipped bytes in memory (the copy clip-convert carries); `source` names them.
  static Tokenizer from_bpe_gz_bytes(std::string_view compressed, const std::string& path);

  /// A Hugging Face CLIPTokenizer: vocab.json must be exactly the vocabulary merges.txt implies.
  static Tokenizer from_hf(const std::string& vocab_json_path, const std::string& merges_txt_path);

  /// Longest text encode accepts (1 MiB, some 200,000 tokens; CLIP reads 77). Bounds the work
  /// and memory one hostile text can cost (about 20 bytes per byte of text while encoding).
  static constexpr std::size_t max_text_bytes = std::size_t{1} << 20;

  /// Header line and the merges in use, one per line: what a model file stores.
  const std::string& merges_text() const { return merges_text_; }
  std::int32_t sot_id() const { return sot_id_; }
  std::int32_t eot_id() const { return eot_id_; }
  std::size_t vocab_size() const { return token_bytes_.size(); }

  /// SimpleTokenizer.encode: BPE ids without SOT/EOT. "<|startoftext|>" and "<|endoftext|>"
  /// in the text become their special ids, as in the reference.
  std::vector<std::int32_t> encode(std::string_view text, InvalidUtf8 policy = InvalidUtf8::replace) const {
    return encode(text, TokenizerOptions{true, policy});
  }

  /// encode() with explicit options (TokenizerOptions{false} skips ftfy's cleaning).
  std::vector<std::int32_t> encode(std::string_view text, const TokenizerOptions& options) const;

  /// SimpleTokenizer.decode: concatenated token bytes as UTF-8 (ill-formed parts -> U+FFFD,
  /// as errors="replace"), "</w>" -> " ". Ids outside the vocabulary throw clip::Error.
  std::string decode(const std::vector<std::int32_t>& ids) const;

  /// The row length tokenize() gives by default: 77 (OpenAI's), or the model's context_length
  /// for the tokenizer of a clip::Model.
  int context_length() const { return context_length_; }
  void set_context_length(int context_length) {
    if (context_length < 1)
      throw Error("tokenizer: context_length must be positive, got " + std::to_string(context_length));
    context_length_ = context_length;
  }

  /// clip.tokenize: one row per text, [SOT, ids..., EOT, 0...], of context_length() columns
  /// unless another length is given. A text longer than that throws clip::Error unless truncate,
  /// which keeps the first context_length ids and makes the last one EOT (OpenAI's truncate=True).
  TokenMatrix tokenize(const std::vector<std::string>& texts, std::optional<int> row_length = std::nullopt,
                       bool truncate = false, InvalidUtf8 policy = InvalidUtf8::replace) const {
    return tokenize(texts, row_length, truncate, TokenizerOptions{true, policy});
  }

  /// tokenize() with explicit options (TokenizerOptions{false} skips fix_text).
  TokenMatrix tokenize(const std::vector<std::string>& texts, std::optional<int> row_length, bool truncate,
                       const TokenizerOptions& options) const;

 private:
  struct MergeRule {
    std::int32_t rank;
    std::int32_t result_id;
  };

  // Merged words by piece bytes; bounded by clearing when full.
  struct WordCache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<std::int32_t>> words;
  };
  static constexpr std::size_t kCacheCapacity = 1 << 16;
  static constexpr std::size_t kCacheMaxWordBytes = 128;

  static std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
  }

  Tokenizer(std::string_view text, std::size_t max_merges, const std::string& source);

  const MergeRule* find_merge(std::int32_t left, std::int32_t right) const {
    const auto found = merge_rules_.find(pair_key(left, right));
    return found == merge_rules_.end() ? nullptr : &found->second;
  }

  void append_piece_ids(const std::string& piece, std::vector<std::int32_t>& ids) const;

  // OpenAI's bpe(): repeatedly take the lowest-ranked adjacent pair and merge all of its
  // occurrences left to right. Done with a heap over a linked list of symbols, one rank per
  // round, so a word of n bytes costs O(n log n) and gives the reference's ids exactly.
  std::vector<std::int32_t> merge_word(const std::string& piece) const;

  std::string merges_text_;
  int context_length_ = 77;
  std::size_t merge_count_ = 0;
  std::unordered_map<std::string, std::int32_t> id_of_token_;
  std::vector<std::string> token_bytes_;
  std::unordered_map<std::uint64_t, MergeRule> merge_rules_;
  std::int32_t byte_id_[256] = {};
  std::int32_t byte_end_id_[256] = {};
  std::int32_t sot_id_ = 0;
  std::int32_t eot_id_ = 0;
  std::shared_ptr<WordCache> cache_;
};

#if CLIP_HEADER_DEFINITIONS

namespace detail {

// basic_clean (without ftfy) + whitespace_clean: unescape twice, strip, collapse every run of
// whitespace (str.isspace) to one space, strip.
inline std::u32string clean_text(std::u32string_view text) {
  const std::u32string unescaped = html_unescape(html_unescape(text));
  std::u32string out;
  out.reserve(unescaped.size());
  bool pending_space = false;
  for (char32_t c : unescaped) {
    if (is_python_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(U' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// Case-insensitive comparison of the lowered text with an ASCII literal, as the reference's
// regex.IGNORECASE does it: LATIN SMALL LETTER LONG S (U+017F) is an 's'.
inline bool matches_literal_ignore_case(std::u32string_view text, std::size_t at, std::string_view literal) {
  if (text.size() - at < literal.size()) return false;
  for (std::size_t k = 0; k < literal.size(); ++k) {
    const char32_t c = text[at + k];
    const auto expected = static_cast<char32_t>(literal[k]);
    if (c != expected && !(expected == U's' && c == 0x17F)) return false;
  }
  return true;
}

// One match of the pre-tokenizer pattern, as [begin, end) into the lowered text.
struct TextPiece {
  std::size_t begin;
  std::size_t end;
};

// regex.findall of <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
// [^\s\p{L}\p{N}]+ with IGNORECASE: alternatives tried in order at each position.
inline std::vector<TextPiece> split_pieces(std::u32string_view text) {
  static constexpr std::string_view kLiterals[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re",
                                                     "'ve", "'m", "'ll", "'d"};
  std::vector<TextPiece> pieces;
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const char32_t c = text[i];
    if (c == U'<' || c == U'\'') {
      bool matched = false;
      for (std::string_view literal : kLiterals) {
        if (static_cast<char32_t>(literal[0]) == c && matches_literal_ignore_case(text, i, literal)) {
          pieces.push_back({i, i + literal.size()});
          i += literal.size();
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    const CharClass cls = char_class(c);
    std::size_t j = i + 1;
    if (cls == CharClass::letter || cls == CharClass::other) {
      while (j < n && char_class(text[j]) == cls) ++j;
    } else if (cls == CharClass::skipped) {
      i = j;
      continue;
    }
    pieces.push_back({i, j});
    i = j;
  }
  return pieces;
}

}  // namespace detail

namespace detail {

// CLIP's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100.. in byte order. Index i of the result is the byte whose symbol has vocabulary id i.
struct ByteAlphabet {
  std::uint8_t byte_of_index[256];
  char32_t symbol_of_byte[256];
  std::int16_t index_of[0x144];  // by symbol; -1 for code points that are not symbols
  int index_of_symbol(char32_t symbol) const { return symbol < 0x144 ? index_of[symbol] : -1; }
};

inline ByteAlphabet make_byte_alphabet() {
  ByteAlphabet alphabet{};
  int count = 0;
  auto printable = [](int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
  for (int b = 0; b < 256; ++b)
    if (printable(b)) {
      alphabet.byte_of_index[count++] = static_cast<std::uint8_t>(b);
      alphabet.symbol_of_byte[b] = static_cast<char32_t>(b);
    }
  int extra = 0;
  for (int b = 0; b < 256; ++b)
    if (!printable(b)) {
      alphabet.byte_of_index[count++] = static_cast<std::uint8_t>(b);
      alphabet.symbol_of_byte[b] = static_cast<char32_t>(256 + extra++);
    }
  std::fill(std::begin(alphabet.index_of), std::end(alphabet.index_of), std::int16_t{-1});
  for (int i = 0; i < 256; ++i)
    alphabet.index_of[alphabet.symbol_of_byte[alphabet.byte_of_index[i]]] = static_cast<std::int16_t>(i);
  return alphabet;
}

// Splits on runs of Python whitespace, as str.split() does for a merge line.
inline std::vector<std::u32string> split_on_python_space(std::u32string_view line) {
  std::vector<std::u32string> parts;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_python_space(line[i])) ++i;
    std::size_t j = i;
    while (j < line.size() && !is_python_space(line[j])) ++j;
    if (j > i) parts.emplace_back(line.substr(i, j - i));
    i = j;
  }
  return parts;
}

inline std::string abbreviate_for_message(std::string_view text, std::size_t max_bytes = 60) {
  if (text.size() <= max_bytes) return std::string(text);
  std::size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // keep UTF-8 whole
  return std::string(text.substr(0, cut)) + "...";
}

// Vocabulary files (merges, vocab.json, the gzipped BPE file) are a few MB; refuse the absurd.
constexpr std::size_t kMaxVocabularyFileBytes = std::size_t{256} << 20;

inline std::string read_binary_file(const std::string& path) {
  return read_file(path, kMaxVocabularyFileBytes, "vocabulary file");
}

// Inflates a gzip file, refusing outputs beyond max_bytes (a corrupt or hostile file).
inline std::string gunzip(std::string_view compressed, const std::string& path, std::size_t max_bytes = std::size_t{256} << 20) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) throw Error(path + ": zlib initialisation failed");
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  char chunk[1 << 16];
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    stream.next_out = reinterpret_cast<Bytef*>(chunk);
    stream.avail_out = sizeof chunk;
    status = inflate(&stream, Z_NO_FLUSH);
    if (status != Z_OK && status != Z_STREAM_END) {
      inflateEnd(&stream);
      throw Error(path + ": not a valid gzip file (zlib status " + std::to_string(status) + ")");
    }
    out.append(chunk, sizeof chunk - stream.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&stream);
      throw Error(path + ": decompresses to more than " + std::to_string(max_bytes) + " bytes");
    }
    if (status == Z_OK && stream.avail_in == 0 && stream.avail_out != 0) {
      inflateEnd(&stream);
      throw Error(path + ": truncated gzip file");
    }
  }
  inflateEnd(&stream);
  return out;
}

inline std::string read_gzip_file(const std::string& path, std::size_t max_bytes = std::size_t{256} << 20) {
  return gunzip(read_binary_file(path), path, max_bytes);
}

}  // namespace detail

CLIP_INLINE Tokenizer Tokenizer::from_bpe_gz_bytes(std::string_view compressed, const std::string& path) {
  constexpr std::size_t kOpenAiMerges = 49152 - 256 - 2;
  Tokenizer tokenizer(detail::gunzip(compressed, path), kOpenAiMerges, path);
  if (tokenizer.merge_count_ != kOpenAiMerges)
    throw Error(path + ": has " + std::to_string(tokenizer.merge_count_) + " merges, CLIP needs " +
                std::to_string(kOpenAiMerges));
  return tokenizer;
}

CLIP_INLINE Tokenizer Tokenizer::from_bpe_gz(const std::string& path) { return from_bpe_gz_bytes(detail::read_binary_file(path), path); }

CLIP_INLINE Tokenizer Tokenizer::from_hf(const std::string& vocab_json_path, const std::string& merges_txt_path) {
  Tokenizer tokenizer(detail::read_binary_file(merges_txt_path), SIZE_MAX, merges_txt_path);
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(detail::read_binary_file(vocab_json_path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(vocab_json_path + ": not valid JSON: " + e.what());
  }
  if (!vocab.is_object()) throw Error(vocab_json_path + ": expected a JSON object token -> id");
  if (vocab.size() != tokenizer.id_of_token_.size())
    throw Error(vocab_json_path + ": has " + std::to_string(vocab.size()) + " tokens, " + merges_txt_path +
                " implies " + std::to_string(tokenizer.id_of_token_.size()));
  for (const auto& [token, id] : vocab.items()) {
    const auto found = tokenizer.id_of_token_.find(token);
    if (!id.is_number_integer() || found == tokenizer.id_of_token_.end() || found->second != id.get<std::int64_t>())
      throw Error(vocab_json_path + ": token '" + detail::abbreviate_for_message(token) + "' has id " + id.dump() +
                  ", " + merges_txt_path + " implies " +
                  (found == tokenizer.id_of_token_.end() ? std::string("no such token") : std::to_string(found->second)));
  }
  return tokenizer;
}

CLIP_INLINE std::vector<std::int32_t> Tokenizer::encode(std::string_view text, const TokenizerOptions& options) const {
  if (text.size() > max_text_bytes)
    throw Error("tokenizer: text \"" + detail::abbreviate_for_message(text) + "\" has " +
                std::to_string(text.size()) + " bytes, more than the limit of " + std::to_string(max_text_bytes) +
                " (Tokenizer::max_text_bytes)");
  std::u32string code_points;
  std::size_t error_offset = 0;
  if (!detail::decode_utf8(text, options.invalid_utf8 == InvalidUtf8::replace, code_points, &error_offset))
    throw Error("tokenizer: text \"" + detail::abbreviate_for_message(text.substr(0, error_offset)) +
                "\" is not valid UTF-8 at byte " + std::to_string(error_offset));
  if (options.fix_text) code_points = clip::fix_text(std::u32string_view(code_points));
  const std::u32string lowered = detail::python_lower(detail::clean_text(code_points));
  std::vector<std::int32_t> ids;
  std::string piece;
  for (const detail::TextPiece& p : detail::split_pieces(lowered)) {
    piece.clear();
    for (std::size_t k = p.begin; k < p.end; ++k) detail::append_utf8(lowered[k], piece);
    append_piece_ids(piece, ids);
  }
  return ids;
}

CLIP_INLINE std::string Tokenizer::decode(const std::vector<std::int32_t>& ids) const {
  std::string bytes;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= token_bytes_.size())
      throw Error("tokenizer: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                  " is outside the vocabulary of " + std::to_string(token_bytes_.size()));
    bytes += token_bytes_[static_cast<std::size_t>(ids[i])];
  }
  std::u32string code_points;
  detail::decode_utf8(bytes, true, code_points, nullptr);
  std::string text = detail::encode_utf8(code_points);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, 4, "</w>") == 0) {
      out.push_back(' ');
      i += 4;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

CLIP_INLINE TokenMatrix Tokenizer::tokenize(const std::vector<std::string>& texts, std::optional<int> row_length,
                                            bool truncate, const TokenizerOptions& options) const {
  const int context_length = row_length.value_or(context_length_);
  if (context_length < 1)
    throw Error("tokenizer: context_length must be positive, got " + std::to_string(context_length));
  TokenMatrix result = TokenMatrix::Zero(static_cast<Eigen::Index>(texts.size()), context_length);
  const auto capacity = static_cast<std::size_t>(context_length);
  for (std::size_t row = 0; row < texts.size(); ++row) {
    std::vector<std::int32_t> ids;
    ids.push_back(sot_id_);
    const std::vector<std::int32_t> body = encode(texts[row], options);
    ids.insert(ids.end(), body.begin(), body.end());
    ids.push_back(eot_id_);
    if (ids.size() > capacity) {
      if (!truncate)
        throw Error(std::string("tokenizer: ") + (texts.size() > 1 ? "text " + std::to_string(row) + " " : "") + "\"" +
                    detail::abbreviate_for_message(texts[row]) + "\" has " + std::to_string(ids.size()) + " tokens with SOT and EOT, more than context_length " +
                    std::to_string(context_length) + " (use truncate to cut it)");
      ids.resize(capacity);
      ids.back() = eot_id_;
    }
    for (std::size_t k = 0; k < ids.size(); ++k)
      result(static_cast<Eigen::Index>(row), static_cast<Eigen::Index>(k)) = ids[k];
  }
  return result;
}

CLIP_INLINE Tokenizer::Tokenizer(std::string_view text, std::size_t max_merges, const std::string& source)
    : cache_(std::make_shared<WordCache>()) {
  const detail::ByteAlphabet alphabet = detail::make_byte_alphabet();
  if (text.empty()) throw Error(source + ": empty, expected a header line and merges");

  // Lines as Python's split('\n'); a trailing newline does not add a merge.
  std::vector<std::string_view> lines;
  for (std::size_t start = 0;;) {
    const std::size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  if (lines.size() > 1 && lines.back().empty()) lines.pop_back();
  const std::size_t available = lines.size() - 1;
  merge_count_ = std::min(available, max_merges);

  // Vocabulary strings in OpenAI's order; token -> id with later entries winning, as
  // Python's {v: i for i, v in enumerate(vocab)} does.
  std::vector<std::string> tokens;
  tokens.reserve(512 + merge_count_ + 2);
  for (int i = 0; i < 256; ++i) {
    std::string s;
    detail::append_utf8(alphabet.symbol_of_byte[alphabet.byte_of_index[i]], s);
    tokens.push_back(s);
  }
  for (int i = 0; i < 256; ++i) tokens.push_back(tokens[static_cast<std::size_t>(i)] + "</w>");

  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merge_count_);
  merges_text_.assign(lines[0]);
  merges_text_ += '\n';
  for (std::size_t m = 0; m < merge_count_; ++m) {
    const std::string_view line = lines[m + 1];
    // Built only for an error message: this loop runs ~49,000 times on every model load.
    const auto where = [&] { return source + ": line " + std::to_string(m + 2); };
    std::u32string code_points;
    std::size_t bad = 0;
    if (!detail::decode_utf8(line, false, code_points, &bad))
      throw Error(where() + " is not valid UTF-8 at byte " + std::to_string(bad));
    const auto parts = detail::split_on_python_space(code_points);
    if (parts.size() != 2)
      throw Error(where() + ": expected two symbols \"a b\", got " + std::to_string(parts.size()) + " in \"" +
                  detail::abbreviate_for_message(line) + "\"");
    for (const auto& part : parts)
      for (char32_t c : part)
        if (alphabet.index_of_symbol(c) < 0)
          throw Error(where() + ": symbol \"" + detail::abbreviate_for_message(detail::encode_utf8(part)) +
                      "\" has a character outside CLIP's byte alphabet");
    merges.emplace_back(detail::encode_utf8(parts[0]), detail::encode_utf8(parts[1]));
    tokens.push_back(merges.back().first + merges.back().second);
    merges_text_.append(line);
    merges_text_ += '\n';
  }
  tokens.emplace_back("<|startoftext|>");
  tokens.emplace_back("<|endoftext|>");
  id_of_token_.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) id_of_token_[tokens[i]] = static_cast<std::int32_t>(i);
  sot_id_ = id_of_token_.at("<|startoftext|>");
  eot_id_ = id_of_token_.at("<|endoftext|>");

  // Byte strings for decode: each symbol back through byte_decoder.
  token_bytes_.reserve(tokens.size());
  for (const std::string& token : tokens) {
    std::u32string code_points;
    detail::decode_utf8(token, true, code_points, nullptr);
    std::string bytes;
    for (char32_t c : code_points) {
      const int index = alphabet.index_of_symbol(c);
      bytes.push_back(static_cast<char>(alphabet.byte_of_index[index]));  // validated above
    }
    token_bytes_.push_back(std::move(bytes));
  }
  for (int b = 0; b < 256; ++b) {
    std::string symbol;
    detail::append_utf8(alphabet.symbol_of_byte[b], symbol);
    byte_id_[b] = id_of_token_.at(symbol);
    byte_end_id_[b] = id_of_token_.at(symbol + "</w>");
  }

  // Merge rules on canonical ids; a repeated pair keeps its last rank (dict(zip(...))).
  merge_rules_.reserve(merges.size());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto left = id_of_token_.find(merges[rank].first);
    const auto right = id_of_token_.find(merges[rank].second);
    if (left == id_of_token_.end() || right == id_of_token_.end()) continue;  // can never apply
    merge_rules_[pair_key(left->second, right->second)] =
        MergeRule{static_cast<std::int32_t>(rank), id_of_token_.at(merges[rank].first + merges[rank].second)};
  }
}

CLIP_INLINE void Tokenizer::append_piece_ids(const std::string& piece, std::vector<std::int32_t>& ids) const {
  if (piece == "<|startoftext|>") return ids.push_back(sot_id_);
  if (piece == "<|endoftext|>") return ids.push_back(eot_id_);
  const bool cacheable = piece.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    const auto found = cache_->words.find(piece);
    if (found != cache_->words.end()) {
      ids.insert(ids.end(), found->second.begin(), found->second.end());
      return;
    }
  }
  std::vector<std::int32_t> word = merge_word(piece);
  ids.insert(ids.end(), word.begin(), word.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    if (cache_->words.size() >= kCacheCapacity) cache_->words.clear();
    cache_->words.emplace(piece, std::move(word));
  }
}

CLIP_INLINE std::vector<std::int32_t> Tokenizer::merge_word(const std::string& piece) const {
  const std::size_t n = piece.size();
  std::vector<std::int32_t> symbol(n), next(n), prev(n);
  std::vector<char> alive(n, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const auto byte = static_cast<unsigned char>(piece[i]);
    symbol[i] = i + 1 == n ? byte_end_id_[byte] : byte_id_[byte];
    next[i] = i + 1 == n ? -1 : static_cast<std::int32_t>(i + 1);
    prev[i] = static_cast<std::int32_t>(i) - 1;
  }
  struct Candidate {
    std::int32_t rank, left, right, left_symbol, right_symbol;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push_pair = [&](std::int32_t left) {
    if (left < 0 || next[left] < 0) return;
    const std::int32_t right = next[left];
    if (const MergeRule* rule = find_merge(symbol[left], symbol[right]))
      heap.push({rule->rank, left, right, symbol[left], symbol[right]});
  };
  auto still_valid = [&](const Candidate& c) {
    return alive[c.left] && alive[c.right] && next[c.left] == c.right && symbol[c.left] == c.left_symbol &&
           symbol[c.right] == c.right_symbol;
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push_pair(static_cast<std::int32_t>(i));

  std::vector<Candidate> round;
  while (!heap.empty()) {
    const std::int32_t rank = heap.top().rank;
    round.clear();
    while (!heap.empty() && heap.top().rank == rank) {  // popped in left-to-right order
      round.push_back(heap.top());
      heap.pop();
    }
    for (const Candidate& c : round) {
      if (!still_valid(c)) continue;  // stale, or overlapped by a merge just made
      const MergeRule* rule = find_merge(c.left_symbol, c.right_symbol);
      symbol[c.left] = rule->result_id;
      alive[c.right] = 0;
      next[c.left] = next[c.right];
      if (next[c.left] >= 0) prev[next[c.left]] = c.left;
      push_pair(prev[c.left]);
      push_pair(c.left);
    }
  }
  std::vector<std::int32_t> out;
  for (std::int32_t i = n ? 0 : -1; i >= 0; i = next[i]) out.push_back(symbol[i]);
  return out;
}

#endif  // CLIP_HEADER_DEFINITIONS

}  // namespace clip
