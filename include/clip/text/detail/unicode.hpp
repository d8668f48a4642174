#pragma once
// UTF-8 conversion and the per-code-point Unicode properties the tokenizer needs, matching
// CPython 3.11 (str.isspace, str.lower with Final_Sigma, bytes.decode(errors="replace")) and
// the `regex` module's classes. Tables: unicode_tables.hpp (generated).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "clip/text/detail/unicode_tables.hpp"

namespace clip::detail {

inline constexpr char32_t kReplacementCharacter = 0xFFFD;

// Class of a code point for the pre-tokenizer pattern [\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+.
enum class CharClass : std::uint8_t { other = 0, letter = 1, number = 2, skipped = 3 };

inline std::uint8_t unicode_flags(char32_t c) {
  if (c >= 0x110000) return 0;
  return unicode_tables::kBlockFlags[unicode_tables::kBlockOf[c >> 8]][c & 0xFF];
}

inline CharClass char_class(char32_t c) { return static_cast<CharClass>(unicode_flags(c) & 3u); }
inline bool is_python_space(char32_t c) { return (unicode_flags(c) & (1u << 2)) != 0; }
inline bool is_cased(char32_t c) { return (unicode_flags(c) & (1u << 3)) != 0; }
inline bool is_case_ignorable(char32_t c) { return (unicode_flags(c) & (1u << 4)) != 0; }
inline bool has_lower_mapping(char32_t c) { return (unicode_flags(c) & (1u << 5)) != 0; }

// Appends the full lower-case mapping of c (one to three code points), without Final_Sigma.
inline void append_lower(char32_t c, std::u32string& out) {
  if (!has_lower_mapping(c)) {
    out.push_back(c);
    return;
  }
  const auto* begin = std::begin(unicode_tables::kLower);
  const auto* end = std::end(unicode_tables::kLower);
  const auto* found = std::lower_bound(
    begin, end, c, [](const unicode_tables::LowerMapping& m, char32_t v) { return m.code_point < v; });
  if (found == end || found->code_point != c) {  // cannot happen with consistent tables
    out.push_back(c);
    return;
  }
  for (std::uint32_t mapped : found->lower)
    if (mapped != 0) out.push_back(static_cast<char32_t>(mapped));
}

// Python's str.lower(): full case mapping plus the Final_Sigma rule for U+03A3, decided on
// the original text: \p{Cased}\p{Case_Ignorable}* SIGMA !(\p{Case_Ignorable}*\p{Cased}).
inline std::u32string python_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c < 0x80) {
      out.push_back(c >= U'A' && c <= U'Z' ? c + 32 : c);
      continue;
    }
    if (c != 0x3A3) {
      append_lower(c, out);
      continue;
    }
    std::size_t j = i;
    while (j > 0 && is_case_ignorable(text[j - 1])) --j;
    bool final_sigma = j > 0 && is_cased(text[j - 1]);
    if (final_sigma) {
      std::size_t k = i + 1;
      while (k < text.size() && is_case_ignorable(text[k])) ++k;
      final_sigma = k == text.size() || !is_cased(text[k]);
    }
    out.push_back(final_sigma ? 0x3C2 : 0x3C3);
  }
  return out;
}

// Length of the UTF-8 sequence starting at bytes[0] if it is well-formed (Unicode Table 3-7),
// else the length of its maximal subpart (>= 1) with *valid = false. This is the unit
// Python's decoder replaces with one U+FFFD under errors="replace".
inline std::size_t utf8_sequence(const unsigned char* bytes, std::size_t available, char32_t* code_point,
                                 bool* valid) {
  const unsigned char lead = bytes[0];
  *valid = false;
  if (lead < 0x80) {
    *code_point = lead;
    *valid = true;
    return 1;
  }
  std::size_t length = 0;
  unsigned char second_min = 0x80, second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) length = 2;
  else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;
    if (lead == 0xED) second_max = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;
    if (lead == 0xF4) second_max = 0x8F;  // <= U+10FFFF
  } else {
    return 1;
  }
  char32_t value = lead & (0xFF >> (length + 1));
  for (std::size_t k = 1; k < length; ++k) {
    if (k >= available) return k;
    const unsigned char b = bytes[k];
    const unsigned char low = k == 1 ? second_min : 0x80;
    const unsigned char high = k == 1 ? second_max : 0xBF;
    if (b < low || b > high) return k;
    value = (value << 6) | (b & 0x3F);
  }
  *code_point = value;
  *valid = true;
  return length;
}

// Decodes UTF-8. Ill-formed input: each maximal subpart becomes U+FFFD when replace is true;
// otherwise returns false and sets *error_offset to the first bad byte.
inline bool decode_utf8(std::string_view text, bool replace, std::u32string& out, std::size_t* error_offset) {
  out.clear();
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t i = 0;
  while (i < text.size()) {
    char32_t c = 0;
    bool valid = false;
    const std::size_t used = utf8_sequence(bytes + i, text.size() - i, &c, &valid);
    if (!valid) {
      if (!replace) {
        if (error_offset) *error_offset = i;
        return false;
      }
      c = kReplacementCharacter;
    }
    out.push_back(c);
    i += used;
  }
  return true;
}

inline void append_utf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

inline std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) append_utf8(c, out);
  return out;
}

}  // namespace clip::detail
