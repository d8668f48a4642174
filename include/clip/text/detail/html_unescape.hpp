#pragma once
// Python 3.11's html.unescape on code points (the tokenizer's basic_clean applies it twice;
// fix_text uses it for numeric references). Eigen-free.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "clip/text/detail/html_entities.hpp"
#include "clip/text/detail/unicode.hpp"

namespace clip::detail {

inline const HtmlEntity* find_html_entity(std::u32string_view name) {
  std::string ascii;
  ascii.reserve(name.size());
  for (char32_t c : name) {
    if (c >= 0x80) return nullptr;  // every entity name is ASCII
    ascii.push_back(static_cast<char>(c));
  }
  const auto* begin = std::begin(kHtmlEntities);
  const auto* end = std::end(kHtmlEntities);
  const auto* found = std::lower_bound(begin, end, std::string_view(ascii),
                                         [](const HtmlEntity& e, std::string_view v) { return e.name < v; });
  return found != end && found->name == ascii ? found : nullptr;
}

// html._replace_charref for a numeric reference whose value saturates at 0x110000.
inline void append_numeric_charref(std::uint32_t number, std::u32string& out) {
  // _invalid_charrefs: NUL, CR and the windows-1252 remapping of 0x80-0x9F.
  static constexpr char32_t kCp1252[32] = {
    0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
  if (number == 0x00) return out.push_back(kReplacementCharacter);
  if (number == 0x0D) return out.push_back(U'\r');
  if (number >= 0x80 && number <= 0x9F) return out.push_back(kCp1252[number - 0x80]);
  if ((number >= 0xD800 && number <= 0xDFFF) || number > 0x10FFFF) return out.push_back(kReplacementCharacter);
  // _invalid_codepoints are dropped.
  const bool invalid = (number >= 0x1 && number <= 0x8) || number == 0xB || (number >= 0xE && number <= 0x1F) ||
                         (number >= 0x7F && number <= 0x9F) || (number >= 0xFDD0 && number <= 0xFDEF) ||
                         (number & 0xFFFE) == 0xFFFE;
  if (!invalid) out.push_back(static_cast<char32_t>(number));
}

inline bool is_ascii_digit(char32_t c) { return c >= U'0' && c <= U'9'; }
inline int hex_value(char32_t c) {
  if (is_ascii_digit(c)) return static_cast<int>(c - U'0');
  if (c >= U'a' && c <= U'f') return static_cast<int>(c - U'a' + 10);
  if (c >= U'A' && c <= U'F') return static_cast<int>(c - U'A' + 10);
  return -1;
}

// Python's html.unescape: the regex &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
// replaced left to right, named references by exact name or else by their longest prefix.
inline std::u32string html_unescape(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    if (text[i] != U'&') {
      out.push_back(text[i++]);
      continue;
    }
    const std::size_t start = i + 1;
    if (start < n && text[start] == U'#') {
      std::size_t j = start + 1;
      int base = 10;
      if (j < n && (text[j] == U'x' || text[j] == U'X') && j + 1 < n && hex_value(text[j + 1]) >= 0) {
        base = 16;
        ++j;
      } else if (!(j < n && is_ascii_digit(text[j]))) {
        out.push_back(text[i++]);  // "&#" without digits is left alone
        continue;
      }
      std::uint32_t number = 0;
      for (; j < n && (base == 16 ? hex_value(text[j]) >= 0 : is_ascii_digit(text[j])); ++j)
        number = std::min<std::uint32_t>(0x110000, number * base + static_cast<std::uint32_t>(hex_value(text[j])));
      if (j < n && text[j] == U';') ++j;
      append_numeric_charref(number, out);
      i = j;
      continue;
    }
    std::size_t j = start;
    while (j < n && j - start < 32) {
      const char32_t c = text[j];
      if (c == U'\t' || c == U'\n' || c == U'\f' || c == U' ' || c == U'<' || c == U'&' || c == U'#' || c == U';')
        break;
      ++j;
    }
    if (j == start) {
      out.push_back(text[i++]);
      continue;
    }
    if (j < n && text[j] == U';') ++j;
    const std::u32string_view name = text.substr(start, j - start);
    i = j;
    if (const HtmlEntity* entity = find_html_entity(name)) {
      out.append(entity->value);
      continue;
    }
    bool replaced = false;
    for (std::size_t length = name.size() - 1; length >= 2 && length < name.size(); --length) {
      if (const HtmlEntity* entity = find_html_entity(name.substr(0, length))) {
        out.append(entity->value);
        out.append(name.substr(length));
        replaced = true;
        break;
      }
    }
    if (!replaced) {
      out.push_back(U'&');
      out.append(name);
    }
  }
  return out;
}

}  // namespace clip::detail
