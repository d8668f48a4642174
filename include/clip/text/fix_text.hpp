#pragma once
// clip::fix_text: ftfy 6.3.1's fix_text with its default configuration (what OpenAI's CLIP
// tokenizer runs first), character for character, on CPython 3.11's Unicode 14.0. The rules
// come from ftfy's source and documentation (rspeer/python-ftfy v6.3.1, Apache-2.0, (c) Robyn
// Speer); this is an independent C++ implementation. See docs/tokenizer.md. Eigen-free.
//
//   std::string clean = clip::fix_text("cafÃ© “quoted” ﬁsh");   // "café \"quoted\" fish"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "clip/detail/compilation.hpp"
#include "clip/error.hpp"
#include "clip/text/invalid_utf8.hpp"

namespace clip {

/// ftfy.fix_text(text) with ftfy 6.3.1's default configuration, on code points (which may
/// include surrogates, as a Python str can). The text is fixed line by line (segments end
/// after each "\n", or every 1 000 000 code points); HTML entities are decoded until a
/// segment containing "<" is seen, and not in it or any later segment; each segment's fixes
/// repeat until it stops changing.
std::u32string fix_text(std::u32string_view text);

/// ftfy.fix_text on UTF-8. Ill-formed UTF-8 is first replaced as Python's
/// bytes.decode("utf-8", errors="replace") does (or, with InvalidUtf8::error, throws
/// clip::Error naming the byte offset).
std::string fix_text(std::string_view utf8, InvalidUtf8 policy = InvalidUtf8::replace);

/// ftfy.fix_encoding(text): only the mojibake repair of fix_text (with restore_byte_a0,
/// replace_lossy_sequences, decode_inconsistent_utf8 and fix_c1_controls), on the whole text
/// at once.
std::u32string fix_encoding(std::u32string_view text);

std::string fix_encoding(std::string_view utf8, InvalidUtf8 policy = InvalidUtf8::replace);

}  // namespace clip

// The implementation and its Unicode tables are compiled once in clip_compiled under separate
// compilation (CLIP_HEADER_DEFINITIONS, see clip/detail/compilation.hpp).
#if CLIP_HEADER_DEFINITIONS

#include "clip/text/detail/fix_text_tables.hpp"
#include "clip/text/detail/html_unescape.hpp"
#include "clip/text/detail/mojibake.hpp"
#include "clip/text/detail/normalize.hpp"
#include "clip/text/detail/unicode.hpp"

namespace clip::detail::ftfy {

inline bool is_ascii_alnum(char32_t c) { return is_ascii_letter(c) || (c >= U'0' && c <= U'9'); }

// fixes.unescape_html: HTML_ENTITY_RE = &#?[0-9A-Za-z]{1,24}; replaced when it is an html5
// name with ';', one of ftfy's upper-cased names (&EACUTE;), or a numeric reference that
// html.unescape decodes entirely.
inline void unescape_html(std::u32string& text) {
  if (text.find(U'&') == std::u32string::npos) return;
  std::u32string out;
  out.reserve(text.size());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    if (text[i] != U'&') {
      out.push_back(text[i++]);
      continue;
    }
    const bool numeric = i + 1 < n && text[i + 1] == U'#';
    const std::size_t name_start = i + 1 + (numeric ? 1 : 0);
    std::size_t k = name_start;
    while (k < n && k - name_start <= 24 && is_ascii_alnum(text[k])) ++k;
    const std::size_t run = k - name_start;
    if (run < 1 || run > 24 || k >= n || text[k] != U';') {
      out.push_back(text[i++]);
      continue;
    }
    const std::u32string_view match(text.data() + i, k + 1 - i);  // "&...;"
    const std::u32string_view name = match.substr(1);              // "...;"
    if (const HtmlEntity* entity = find_html_entity(name)) {
      out.append(entity->value);
    } else if (const auto* upper = [&]() -> const fix_text_tables::UpperEntity* {
                 std::string ascii(name.begin(), name.end());  // ASCII by construction
                 const auto* begin = std::begin(fix_text_tables::kUpperEntities);
                 const auto* end = std::end(fix_text_tables::kUpperEntities);
                 const auto* found = std::lower_bound(begin, end, std::string_view(ascii),
                                                      [](const fix_text_tables::UpperEntity& e, std::string_view v) {
                                                        return e.name < v;
                                                      });
                 return found != end && found->name == ascii ? found : nullptr;
               }()) {
      out.append(upper->value);
    } else if (numeric) {
      const std::u32string decoded = html_unescape(match);
      if (decoded.find(U';') == std::u32string::npos) out += decoded;
      else out.append(match);
    } else {
      out.append(match);
    }
    i = k + 1;
  }
  text = std::move(out);
}

// fixes.fix_latin_ligatures (chardata.LIGATURES); nullptr when c is not one.
inline const char32_t* latin_ligature(char32_t c) {
  switch (c) {
    case 0x0132: return U"IJ";
    case 0x0133: return U"ij";
    case 0x0149: return U"\u02BCn";
    case 0x01F1: return U"DZ";
    case 0x01F2: return U"Dz";
    case 0x01F3: return U"dz";
    case 0x01C4: return U"D\u017D";
    case 0x01C5: return U"D\u017E";
    case 0x01C6: return U"d\u017E";
    case 0x01C7: return U"LJ";
    case 0x01C8: return U"Lj";
    case 0x01C9: return U"lj";
    case 0x01CA: return U"NJ";
    case 0x01CB: return U"Nj";
    case 0x01CC: return U"nj";
    case 0xFB00: return U"ff";
    case 0xFB01: return U"fi";
    case 0xFB02: return U"fl";
    case 0xFB03: return U"ffi";
    case 0xFB04: return U"ffl";
    case 0xFB05: return U"\u017Ft";
    case 0xFB06: return U"st";
    default: return nullptr;
  }
}

// fixes.fix_character_width (chardata.WIDTH_MAP); empty when c keeps its width.
inline std::u32string_view width_form(char32_t c) {
  if (c != 0x3000 && (c < 0xFF01 || c > 0xFFEF)) return {};
  const auto* begin = std::begin(fix_text_tables::kWidthMap);
  const auto* end = std::end(fix_text_tables::kWidthMap);
  const auto* found = std::lower_bound(begin, end, c, [](const fix_text_tables::Mapping& m, char32_t v) {
    return m.code_point < v;
  });
  return found != end && found->code_point == c ? found->to : std::u32string_view{};
}

// fixes.uncurl_quotes: [\u02bc\u2018-\u201b] -> ', [\u201c-\u201f] -> ".
inline char32_t uncurled(char32_t c) {
  if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) return U'\'';
  if (c >= 0x201C && c <= 0x201F) return U'"';
  return c;
}

inline bool maps_per_character(char32_t c) {
  return latin_ligature(c) != nullptr || c == 0x3000 || (c >= 0xFF01 && c <= 0xFFEF) || uncurled(c) != c;
}

// fix_latin_ligatures, then fix_character_width, then uncurl_quotes, fused: each is a
// character-to-string map applied to the previous one's output.
inline void fix_ligatures_width_quotes(std::u32string& text) {
  if (std::none_of(text.begin(), text.end(), [](char32_t c) { return c >= 0x130 && maps_per_character(c); }))
    return;
  std::u32string out;
  out.reserve(text.size() + 8);
  auto after_ligatures = [&](char32_t c) {
    const std::u32string_view wide = width_form(c);
    if (wide.empty()) return out.push_back(uncurled(c));
    for (char32_t w : wide) out.push_back(uncurled(w));
  };
  for (char32_t c : text) {
    if (const char32_t* parts = latin_ligature(c)) {
      for (; *parts; ++parts) after_ligatures(*parts);
    } else {
      after_ligatures(c);
    }
  }
  text = std::move(out);
}

// fixes.fix_line_breaks: \r\n, \r, U+2028, U+2029, U+0085 -> \n.
inline void fix_line_breaks(std::u32string& text) {
  if (std::none_of(text.begin(), text.end(),
                   [](char32_t c) { return c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x85; }))
    return;
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == U'\r') {
      if (i + 1 < text.size() && text[i + 1] == U'\n') ++i;
      out.push_back(U'\n');
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
      out.push_back(U'\n');
    } else {
      out.push_back(c);
    }
  }
  text = std::move(out);
}

// fixes.fix_surrogates: a high + low surrogate pair -> its character, any other surrogate -> U+FFFD.
inline void fix_surrogates(std::u32string& text) {
  auto surrogate = [](char32_t c) { return c >= 0xD800 && c <= 0xDFFF; };
  if (std::none_of(text.begin(), text.end(), surrogate)) return;
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < text.size() && text[i + 1] >= 0xDC00 && text[i + 1] <= 0xDFFF) {
      out.push_back(0x10000 + (c - 0xD800) * 0x400 + (text[i + 1] - 0xDC00));
      ++i;
    } else {
      out.push_back(surrogate(c) ? kReplacementCharacter : c);
    }
  }
  text = std::move(out);
}

// fixes.remove_terminal_escapes: ANSI_RE = \033\[((?:\d|;)*)([a-zA-Z]) (\d: any decimal digit).
inline void remove_terminal_escapes(std::u32string& text) {
  if (text.find(U'\x1b') == std::u32string::npos) return;
  std::u32string out;
  out.reserve(text.size());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    if (text[i] == U'\x1b' && i + 1 < n && text[i + 1] == U'[') {
      std::size_t j = i + 2;
      while (j < n && (text[j] == U';' || is_python_decimal(text[j]))) ++j;
      if (j < n && is_ascii_letter(text[j])) {
        i = j + 1;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  text = std::move(out);
}

// fixes.remove_control_chars (chardata.CONTROL_CHARS).
inline bool is_removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

inline void remove_control_chars(std::u32string& text) {
  if (std::none_of(text.begin(), text.end(), is_removed_control)) return;
  text.erase(std::remove_if(text.begin(), text.end(), is_removed_control), text.end());
}

// A segment no step can change: ASCII without controls other than \t \n \f (and without '&'
// while HTML unescaping is on). Every fix leaves such text as it is, so it is the fast path.
inline bool is_inert(std::u32string_view segment, bool unescape_html) {
  for (char32_t c : segment) {
    if (c >= 0x20 && c < 0x7F) {
      if (c == U'&' && unescape_html) return false;
      continue;
    }
    if (c != U'\t' && c != U'\n' && c != U'\f') return false;
  }
  return true;
}

// Bound on the rounds of fix_and_explain's "repeat until nothing changes" for one segment: at
// least 16, more for short segments, so a segment costs O(16 * 2^20) character steps at most.
// Real text settles in two or three rounds; only text HTML-escaped dozens of times over can
// tell the difference (each round decodes one level of "&amp;amp;...").
inline int max_fix_rounds(std::size_t length) {
  constexpr std::size_t kBudget = std::size_t{16} << 20;
  return static_cast<int>(std::clamp<std::size_t>(kBudget / std::max<std::size_t>(length, 1), 16, 1024));
}

// ftfy.fix_and_explain on one segment with the default configuration.
inline std::u32string fix_segment(std::u32string_view segment, bool unescape) {
  std::u32string text(segment);
  const int rounds = max_fix_rounds(segment.size());
  for (int round = 0; round < rounds; ++round) {
    const std::u32string before = text;
    if (unescape) unescape_html(text);
    text = fix_encoding(text);
    if (has_c1_control(text)) text = fix_c1_controls(text);
    fix_ligatures_width_quotes(text);
    fix_line_breaks(text);
    fix_surrogates(text);
    remove_terminal_escapes(text);
    remove_control_chars(text);
    text = nfc(text);
    if (text == before) break;
  }
  return text;
}

// ftfy's max_decode_length: a line longer than this many code points is fixed in pieces.
inline constexpr std::size_t kMaxSegmentLength = 1000000;

}  // namespace clip::detail::ftfy

namespace clip {

CLIP_INLINE std::u32string fix_text(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  bool unescape = true;  // unescape_html="auto"
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find(U'\n', pos);
    end = end == std::u32string_view::npos ? text.size() : end + 1;
    end = std::min(end, pos + detail::ftfy::kMaxSegmentLength);
    const std::u32string_view segment = text.substr(pos, end - pos);
    if (unescape && segment.find(U'<') != std::u32string_view::npos) unescape = false;
    if (detail::ftfy::is_inert(segment, unescape)) out.append(segment);
    else out += detail::ftfy::fix_segment(segment, unescape);
    pos = end;
  }
  return out;
}

CLIP_INLINE std::string fix_text(std::string_view utf8, InvalidUtf8 policy) {
  std::u32string code_points;
  std::size_t error_offset = 0;
  if (!detail::decode_utf8(utf8, policy == InvalidUtf8::replace, code_points, &error_offset))
    throw Error("fix_text: text is not valid UTF-8 at byte " + std::to_string(error_offset));
  return detail::encode_utf8(fix_text(std::u32string_view(code_points)));
}

CLIP_INLINE std::u32string fix_encoding(std::u32string_view text) { return detail::ftfy::fix_encoding(text); }

CLIP_INLINE std::string fix_encoding(std::string_view utf8, InvalidUtf8 policy) {
  std::u32string code_points;
  std::size_t error_offset = 0;
  if (!detail::decode_utf8(utf8, policy == InvalidUtf8::replace, code_points, &error_offset))
    throw Error("fix_encoding: text is not valid UTF-8 at byte " + std::to_string(error_offset));
  return detail::encode_utf8(detail::ftfy::fix_encoding(code_points));
}

}  // namespace clip

#endif  // CLIP_HEADER_DEFINITIONS
