#pragma once
// ftfy 6.3.1's fix_encoding: the "badness" heuristic, the single-byte codecs it re-encodes with,
// restore_byte_a0, replace_lossy_sequences, decode_inconsistent_utf8, fix_c1_controls and the
// "utf-8-variants" decoder (CESU-8, Java's modified UTF-8). Behaviour learned from ftfy's source
// (ftfy/__init__.py, fixes.py, badness.py, chardata.py, bad_codecs/; Apache-2.0, (c) Robyn Speer);
// ftfy's regular expressions are written here as direct position tests. Eigen-free.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clip/text/detail/fix_text_tables.hpp"
#include "clip/text/detail/ftfy_classes.hpp"
#include "clip/text/detail/normalize.hpp"
#include "clip/text/detail/unicode.hpp"

namespace clip::detail::ftfy {

// ---- Codecs --------------------------------------------------------------------------------

// ftfy's CHARMAP_ENCODINGS, in the order it tries them.
enum CodecIndex : int {
  kLatin1 = 0,
  kWindows1252 = 1,  // indices 1..6 are used as ftfy's "sloppy-" variants
  kWindows1257 = 6,
  kMacRoman = 8,
  kCodecs = fix_text_tables::kCodecCount,
};

inline bool is_sloppy(int codec) { return codec >= kWindows1252 && codec <= kWindows1257; }

// A single-byte codec: decode per byte, encode through a sorted reverse table.
struct Codec {
  char32_t decode[256];
  std::vector<std::pair<char32_t, std::uint8_t>> encode;  // for the non-ASCII-identity entries
  bool sloppy;
};

// ftfy's sloppy codecs (bad_codecs/sloppy.py): bytes the real codec leaves undefined decode as
// Latin-1, and byte 0x1A stands for U+FFFD.
inline const std::array<Codec, kCodecs>& codecs() {
  static const std::array<Codec, kCodecs> table = [] {
    std::array<Codec, kCodecs> t{};
    for (int k = 0; k < kCodecs; ++k) {
      Codec& codec = t[static_cast<std::size_t>(k)];
      codec.sloppy = is_sloppy(k);
      for (int b = 0; b < 0x80; ++b) codec.decode[b] = static_cast<char32_t>(b);
      for (int b = 0x80; b < 0x100; ++b) {
        char32_t c = fix_text_tables::kCodecHighBytes[k][b - 0x80];
        if (c == 0 && codec.sloppy) c = static_cast<char32_t>(b);
        codec.decode[b] = c;
        if (c != 0) codec.encode.emplace_back(c, static_cast<std::uint8_t>(b));
      }
      if (codec.sloppy) {
        codec.decode[0x1A] = kReplacementCharacter;
        codec.encode.emplace_back(kReplacementCharacter, std::uint8_t{0x1A});
      }
      std::sort(codec.encode.begin(), codec.encode.end());
    }
    return t;
  }();
  return table;
}

// The byte for c, or -1 (chardata.possible_encoding's character class).
inline int encode_char(const Codec& codec, char32_t c) {
  if (c < 0x80 && !(codec.sloppy && c == 0x1A)) return static_cast<int>(c);
  const auto found = std::lower_bound(codec.encode.begin(), codec.encode.end(), std::make_pair(c, std::uint8_t{0}));
  return found != codec.encode.end() && found->first == c ? found->second : -1;
}

// Bit k set: codec k can encode the character. A table below U+2600, a sorted list above.
struct CodecMasks {
  std::vector<std::uint16_t> low;                               // by code point < kClassTableSize
  std::vector<std::pair<char32_t, std::uint16_t>> high;         // sorted
};

inline const CodecMasks& codec_masks() {
  static const CodecMasks masks = [] {
    CodecMasks m;
    m.low.assign(kClassTableSize, 0);
    for (int k = 0; k < kCodecs; ++k) {
      const Codec& codec = codecs()[static_cast<std::size_t>(k)];
      const auto bit = static_cast<std::uint16_t>(1u << k);
      for (char32_t c = 0; c < 0x80; ++c)
        if (encode_char(codec, c) >= 0) m.low[c] |= bit;
      for (const auto& entry : codec.encode) {
        if (entry.first < kClassTableSize) {
          m.low[entry.first] |= bit;
          continue;
        }
        auto found = std::find_if(m.high.begin(), m.high.end(), [&](const auto& h) { return h.first == entry.first; });
        if (found == m.high.end()) m.high.emplace_back(entry.first, bit);
        else found->second |= bit;
      }
    }
    std::sort(m.high.begin(), m.high.end());
    return m;
  }();
  return masks;
}

// chardata.possible_encoding for all codecs at once: bit k set when codec k can encode the text.
inline std::uint32_t possible_encodings(std::u32string_view text) {
  const CodecMasks& masks = codec_masks();
  std::uint32_t possible = (1u << kCodecs) - 1;
  for (char32_t c : text) {
    if (c < kClassTableSize) {
      possible &= masks.low[c];
    } else {
      const auto found = std::lower_bound(masks.high.begin(), masks.high.end(), std::make_pair(c, std::uint16_t{0}));
      possible &= found != masks.high.end() && found->first == c ? found->second : 0u;
    }
    if (possible == 0) break;
  }
  return possible;
}

inline std::string encode_with(std::u32string_view text, const Codec& codec) {
  std::string bytes;
  bytes.reserve(text.size());
  for (char32_t c : text) bytes.push_back(static_cast<char>(encode_char(codec, c)));
  return bytes;
}

// ftfy's "utf-8-variants" decoder, strict: UTF-8, plus C0 80 as U+0000 and CESU-8 surrogate
// pairs (ED A0-AF 80-BF ED B0-BF 80-BF) as one supplementary character. Its patterns end in
// `$`, which in Python also matches before a final "\n"; the quirk that follows (C0 or a
// CESU-8 pair cut short by a final newline swallows the newline) is kept. Lone surrogates and
// anything else ill-formed fail, as the codec raises UnicodeDecodeError.
inline std::optional<std::u32string> decode_utf8_variants(std::string_view bytes) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::u32string out;
  out.reserve(n);
  auto in = [](unsigned char x, unsigned lo, unsigned hi) { return x >= lo && x <= hi; };
  for (std::size_t i = 0; i < n;) {
    const unsigned char lead = b[i];
    if (lead < 0x80) {
      out.push_back(lead);
      ++i;
      continue;
    }
    if (lead == 0xC0) {
      if (i + 1 < n && (b[i + 1] == 0x80 || (i + 2 == n && b[i + 1] == 0x0A))) {
        out.push_back(0);
        i += 2;
        continue;
      }
      return std::nullopt;
    }
    if (lead == 0xED && i + 1 < n && in(b[i + 1], 0xA0, 0xBF)) {
      if (n - i >= 6 && in(b[i + 1], 0xA0, 0xAF) && in(b[i + 2], 0x80, 0xBF) && b[i + 3] == 0xED &&
          in(b[i + 4], 0xB0, 0xBF) && (in(b[i + 5], 0x80, 0xBF) || (i + 6 == n && b[i + 5] == 0x0A))) {
        const char32_t c = ((b[i + 1] & 0x0Fu) << 16) + ((b[i + 2] & 0x3Fu) << 10) + ((b[i + 4] & 0x0Fu) << 6) +
                           (b[i + 5] & 0x3Fu) + 0x10000u;
        out.push_back(c);
        i += 6;
        continue;
      }
      return std::nullopt;
    }
    char32_t c = 0;
    bool valid = false;
    const std::size_t used = utf8_sequence(b + i, n - i, &c, &valid);
    if (!valid) return std::nullopt;
    out.push_back(c);
    i += used;
  }
  return out;
}

// ---- Byte-level repairs ----------------------------------------------------------------------

inline bool in_range(unsigned char x, unsigned lo, unsigned hi) { return x >= lo && x <= hi; }
inline bool continuation(unsigned char x) { return in_range(x, 0x80, 0xBF); }
// [\x80-\x84\x86-\x9f\xa1-\xbf]: a continuation byte other than 0x85 and 0xA0
inline bool likely_continuation(unsigned char x) {
  return in_range(x, 0x80, 0x84) || in_range(x, 0x86, 0x9F) || in_range(x, 0xA1, 0xBF);
}

// Length of a match of chardata.ALTERED_UTF8_RE at i (UTF-8 whose 0xA0 became a space), or 0.
inline std::size_t altered_utf8_match(std::string_view s, std::size_t i) {
  const std::size_t n = s.size();
  auto at = [&](std::size_t k) -> int { return i + k < n ? static_cast<unsigned char>(s[i + k]) : -1; };
  const int b0 = at(0), b1 = at(1);
  if (b1 < 0) return 0;
  if ((b0 == 0xC2 || b0 == 0xC3 || b0 == 0xC5 || b0 == 0xCE || b0 == 0xD0 || b0 == 0xD9) && b1 == ' ') return 2;
  const int b2 = at(2);
  if (b2 >= 0) {
    if ((b0 == 0xE2 || b0 == 0xE3) && b1 == ' ' && likely_continuation(static_cast<unsigned char>(b2))) return 3;
    if (b0 >= 0xE0 && b0 <= 0xE3 && likely_continuation(static_cast<unsigned char>(b1)) && b2 == ' ') return 3;
  }
  const int b3 = at(3);
  if (b0 == 0xF0 && b2 >= 0 && b3 >= 0) {
    const auto c = [](int x) { return x >= 0x80 && x <= 0xBF; };
    if (b1 == ' ' && c(b2) && c(b3)) return 4;
    if (c(b1) && b2 == ' ' && c(b3)) return 4;
    if (c(b1) && c(b2) && b3 == ' ') return 4;
  }
  return 0;
}

inline bool altered_utf8_search(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i)
    if (altered_utf8_match(s, i)) return true;
  return false;
}

// fixes.restore_byte_a0: first A_GRAVE_WORD_RE (C3 + space, not before " ", "quele", "quela",
// "quilo" or "s ", gets an A0 inserted), then every ALTERED_UTF8_RE match has its spaces -> A0.
inline std::string restore_byte_a0(std::string_view bytes) {
  std::string first;
  first.reserve(bytes.size() + 8);
  const std::size_t n = bytes.size();
  for (std::size_t i = 0; i < n;) {
    if (static_cast<unsigned char>(bytes[i]) == 0xC3 && i + 1 < n && bytes[i + 1] == ' ') {
      const std::string_view rest = bytes.substr(i + 2);
      auto starts = [&](std::string_view p) { return rest.substr(0, p.size()) == p; };
      if (!(starts(" ") || starts("quele") || starts("quela") || starts("quilo") || starts("s "))) {
        first += "\xC3\xA0 ";
        i += 2;
        continue;
      }
    }
    first.push_back(bytes[i++]);
  }
  std::string out;
  out.reserve(first.size());
  for (std::size_t i = 0; i < first.size();) {
    if (const std::size_t length = altered_utf8_match(first, i)) {
      for (std::size_t k = 0; k < length; ++k) out.push_back(first[i + k] == ' ' ? '\xA0' : first[i + k]);
      i += length;
    } else {
      out.push_back(first[i++]);
    }
  }
  return out;
}

// Length of a match of chardata.LOSSY_UTF8_RE at i (UTF-8 with bytes lost to 0x1A or '?'), or 0.
inline std::size_t lossy_utf8_match(std::string_view s, std::size_t i) {
  const std::size_t n = s.size();
  auto at = [&](std::size_t k) -> int { return i + k < n ? static_cast<unsigned char>(s[i + k]) : -1; };
  auto lost = [](int x) { return x == 0x1A || x == '?'; };                       // [\x1a?]
  auto sub_or_cont = [](int x) { return x == 0x1A || (x >= 0x80 && x <= 0xBF); };  // [\x1a\x80-\xbf]
  auto any = [&](int x) { return lost(x) || (x >= 0x80 && x <= 0xBF); };         // [\x1a?\x80-\xbf]
  const int b0 = at(0), b1 = at(1), b2 = at(2), b3 = at(3);
  if (b0 >= 0xC2 && b0 <= 0xDF && b1 == 0x1A) return 2;
  if ((b0 == 0xC2 || b0 == 0xC3) && b1 == '?') return 2;
  if (b0 == 0xED) {
    const int b4 = at(4), b5 = at(5);
    const bool frame = b1 >= 0xA0 && b1 <= 0xAF && b3 == 0xED && b4 >= 0xB0 && b4 <= 0xBF;
    if (frame && lost(b2) && any(b5)) return 6;
    if (frame && any(b2) && lost(b5)) return 6;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (lost(b1) && sub_or_cont(b2)) return 3;
    if (sub_or_cont(b1) && lost(b2)) return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (lost(b1) && sub_or_cont(b2) && sub_or_cont(b3)) return 4;
    if (sub_or_cont(b1) && lost(b2) && sub_or_cont(b3)) return 4;
    if (sub_or_cont(b1) && sub_or_cont(b2) && lost(b3)) return 4;
  }
  if (b0 == 0x1A) return 1;
  return 0;
}

// fixes.replace_lossy_sequences: each LOSSY_UTF8_RE match -> the UTF-8 of U+FFFD.
inline std::string replace_lossy_sequences(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    if (const std::size_t length = lossy_utf8_match(bytes, i)) {
      out += "\xEF\xBF\xBD";
      i += length;
    } else {
      out.push_back(bytes[i++]);
    }
  }
  return out;
}

// ---- The badness heuristic -------------------------------------------------------------------

inline constexpr char32_t kNoChar = 0xFFFFFFFFu;

inline bool is_ascii_letter(char32_t c) { return (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z'); }
inline bool is_ascii_lower(char32_t c) { return c >= U'a' && c <= U'z'; }
inline bool one_of(char32_t c, std::u32string_view set) { return c != kNoChar && set.find(c) != std::u32string_view::npos; }

// badness.is_bad: does BADNESS_RE match anywhere? Each alternative of the expression is a test
// at position i (only existence matters, so they are grouped by what their first character
// needs: nothing classed, any class, upper_accented, Greek/Cyrillic).
inline bool is_bad(std::u32string_view t) {
  const std::size_t n = t.size();
  constexpr std::uint32_t kAnyBadnessClass = (1u << 14) - 1;
  bool candidate = false;
  for (char32_t c : t)
    if (c >= 0x80 && (classes_of(c) & kAnyBadnessClass)) {
      candidate = true;
      break;
    }
  if (!candidate) return false;  // every alternative needs a character of some class

  std::vector<std::uint32_t> cls(n + 4, 0);
  for (std::size_t i = 0; i < n; ++i) cls[i] = classes_of(t[i]);
  auto ch = [&](std::size_t i) { return i < n ? t[i] : kNoChar; };

  constexpr std::uint32_t LA = kLowerAccented, UA = kUpperAccented, LC = kLowerCommon, UC = kUpperCommon,
                          BOX = kBox, SP = kStartPunctuation, EP = kEndPunctuation, CUR = kCurrency,
                          NUM = kNumeric, LAW = kLaw, BAD = kBad, C1 = kC1, COMMON = kCommon, KAO = kKaomoji;
  auto ascii_punctuation_before_a_circumflex = [](char32_t c) {
    return c == U'.' || c == U',' || c == U'?' || c == U'!';
  };
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t k0 = cls[i], k1 = cls[i + 1], k2 = cls[i + 2];
    // Every alternative has a classed character among its first three.
    if (((k0 | k1 | k2) & kAnyBadnessClass) == 0) continue;
    const char32_t c0 = t[i];

    // Alternatives that start with an unclassed character: an ASCII letter, punctuation or a space.
    if (c0 < 0x80) {
      if (is_ascii_letter(c0) && (k1 & (LC | UC)) && (k2 & BAD)) return true;
      if (is_ascii_lower(c0)) {
        if ((k1 & UA) && (k2 & (SP | CUR))) return true;
        // [a-z]\s?[ÃÂ][ ]
        if (one_of(ch(i + 1), U"ÃÂ") && ch(i + 2) == U' ') return true;
        if (i + 1 < n && is_python_space(t[i + 1]) && one_of(ch(i + 2), U"ÃÂ") && ch(i + 3) == U' ') return true;
      }
      // [a-z.,?!{end_punctuation}] Â [ {start_punctuation}{end_punctuation}]
      if ((is_ascii_lower(c0) || ascii_punctuation_before_a_circumflex(c0)) && ch(i + 1) == U'Â' &&
          (ch(i + 2) == U' ' || (k2 & (SP | EP))))
        return true;
    }
    if (is_python_space(c0) && (k1 & UA) && (k2 & CUR)) return true;  // \s [upper_accented] [currency]
    if (!(k0 & kAnyBadnessClass)) continue;

    if (k0 & C1) return true;
    if ((k0 & (BAD | LA | UA | BOX | SP | EP | CUR | NUM | LAW)) && (k1 & BAD)) return true;
    if ((k0 & BAD) && (k1 & (LA | UA | BOX | SP | EP | CUR | NUM | LAW))) return true;
    if ((k0 & (LA | LC | BOX | EP | CUR | NUM)) && (k1 & UA)) return true;
    if ((k0 & (BOX | EP | CUR | NUM)) && (k1 & LA)) return true;
    if ((k0 & (LA | BOX | EP)) && (k1 & CUR)) return true;
    if ((k0 & (UA | BOX)) && (k1 & (NUM | LAW))) return true;
    if ((k0 & (LA | UA | BOX | CUR | EP)) && (k1 & SP) && (k2 & NUM)) return true;
    if ((k0 & (LA | UA | CUR | NUM | BOX | LAW)) && (k1 & EP) && (k2 & SP)) return true;
    if ((k0 & (CUR | NUM | BOX)) && (k1 & SP)) return true;
    if ((k0 & BOX) && (k1 & KAO)) return true;
    if ((k0 & (LA | UA | CUR | NUM | SP | EP | LAW)) && (k1 & BOX)) return true;
    if ((k0 & BOX) && (k1 & EP)) return true;
    if ((k0 & (LA | UA)) && (k1 & (SP | EP)) && i + 2 < n && is_python_word(t[i + 2])) return true;
    if ((k0 & EP) && ch(i + 1) == U'Â' && (ch(i + 2) == U' ' || (k2 & (SP | EP)))) return true;
    // the ligature oe when not followed by an unaccented Latin letter
    if ((c0 == U'Œ' || c0 == U'œ') && i + 1 < n && !is_ascii_letter(t[i + 1])) return true;
    if (k0 & UA) {
      // degree signs after capital letters
      if (ch(i + 1) == U'°') return true;
      // common Windows-1252 2-character mojibake
      if (one_of(c0, U"ÂÃÎÐ") &&
          (one_of(ch(i + 1), U"€œŠš¢£Ÿž\u00A0\u00AD®©°·»–—´") || (k1 & (SP | EP))))
        return true;
      // Windows-1252 encodings of 'à' and 'á', and of U+00A0 itself
      if (c0 == U'Ã' && one_of(ch(i + 1), U"\u00A0¡")) return true;
      if (i == 0 && one_of(c0, U"ÃÂ") && ch(1) == U' ') return true;
    }
    if (c0 == U'×' && one_of(ch(i + 1), U"²³")) return true;
    // Windows-1252 mojibake of Arabic words: four characters
    if (c0 == U'Ø' || c0 == U'Ù') {
      auto arabic_second = [&](std::size_t k) {
        return (cls[k] & (COMMON | CUR | BAD | NUM | SP)) || one_of(ch(k), U"ŸŠ®°µ»");
      };
      if (arabic_second(i + 1) && one_of(ch(i + 2), U"ØÙ") && arabic_second(i + 3)) return true;
    }
    // Windows-1252 mojibake starting 3-character sequences of some South Asian alphabets
    if (c0 == U'à' && one_of(ch(i + 1), U"²µ¹¼½¾")) return true;
    // MacRoman mojibake
    if (c0 == U'√' && one_of(ch(i + 1), U"±∂†≠®™´≤≥¥µø")) return true;
    if (c0 == U'≈' && one_of(ch(i + 1), U"°¢")) return true;
    if (c0 == U'‚' && ch(i + 1) == U'Ä' && one_of(ch(i + 2), U"ìîïòôúùû†°¢π")) return true;
    if (c0 == U'‚' && one_of(ch(i + 1), U"âó") && one_of(ch(i + 2), U"àä°ê")) return true;
    if (k0 & (UC | LC)) {
      // Windows-1251 mojibake of the U+2000 range, of Latin-1 and of the Cyrillic alphabet
      if (c0 == U'в' && ch(i + 1) == U'Ђ') return true;
      if (one_of(c0, U"ВГРС") && ((k1 & (C1 | BAD | SP | EP | CUR)) || one_of(ch(i + 1), U"°µ")) &&
          one_of(ch(i + 2), U"ВГРС"))
        return true;
      if (c0 == U'Г' && t.substr(i, 5) == U"ГўВЂВ" && i + 5 < n && t[i + 5] != U'\n' &&
          (is_ascii_letter(ch(i + 6)) || ch(i + 6) == U' '))
        return true;
      // Windows-1253 mojibake of the U+2000 range, of Latin-1 and of the Greek alphabet
      if (c0 == U'β' && ch(i + 1) == U'€' && one_of(ch(i + 2), U"™\u00A0Ά\u00AD®°")) return true;
      if (one_of(c0, U"ΒΓΞΟ") && ((k1 & (C1 | BAD | SP | EP | CUR)) || ch(i + 1) == U'°') &&
          one_of(ch(i + 2), U"ΒΓΞΟ"))
        return true;
    }
    // Windows-1257 mojibake of the U+2000 range
    if (c0 == U'ā' && ch(i + 1) == U'€') return true;
  }
  return false;
}

// ---- fix_encoding ----------------------------------------------------------------------------

// fixes.fix_c1_controls: U+0080..U+009F as their sloppy-windows-1252 characters.
inline std::u32string fix_c1_controls(std::u32string_view text) {
  const Codec& cp1252 = codecs()[kWindows1252];
  std::u32string out(text);
  for (char32_t& c : out)
    if (c >= 0x80 && c <= 0x9F) c = cp1252.decode[c];
  return out;
}

inline bool has_c1_control(std::u32string_view text) {
  return std::any_of(text.begin(), text.end(), [](char32_t c) { return c >= 0x80 && c <= 0x9F; });
}

inline std::u32string fix_encoding(std::u32string_view text, int depth = 0);

// Bound on decode_inconsistent_utf8's recursion (a piece's fix_encoding may find mojibake in
// a smaller piece of it, and so on): ftfy has none, but each level needs mojibake nested
// inside mojibake that no encoding explains, so real text never goes past two.
inline constexpr int kMaxInconsistentDepth = 4;

// Length of a UTF8_DETECTOR_RE match at i: one or more of first_of_2 + 1 continuation,
// first_of_3 + 2, first_of_4 + 3 (first alternative that fits, each time); 0 if none.
inline std::size_t utf8_detector_match(std::u32string_view t, std::size_t i) {
  const std::size_t n = t.size();
  auto k = [&](std::size_t j) { return j < n ? classes_of(t[j]) : 0u; };
  std::size_t j = i;
  while (j < n) {
    const std::uint32_t first = k(j);
    if ((first & kFirstOf2) && (k(j + 1) & kContinuation)) j += 2;
    else if ((first & kFirstOf3) && (k(j + 1) & kContinuation) && (k(j + 2) & kContinuation)) j += 3;
    else if ((first & kFirstOf4) && (k(j + 1) & kContinuation) && (k(j + 2) & kContinuation) &&
             (k(j + 3) & kContinuation))
      j += 4;
    else break;
  }
  return j - i;
}

// fixes.decode_inconsistent_utf8: each UTF8_DETECTOR_RE match (not preceded by a strict
// continuation character) shorter than the text and bad on its own is replaced by its
// fix_encoding. *matched tells whether the expression matched at all.
inline std::u32string decode_inconsistent_utf8(std::u32string_view t, bool* matched, int depth) {
  std::u32string out;
  out.reserve(t.size());
  *matched = false;
  const std::size_t n = t.size();
  for (std::size_t i = 0; i < n;) {
    if (i == 0 || !(classes_of(t[i - 1]) & kContinuationStrict)) {
      if (const std::size_t length = utf8_detector_match(t, i)) {
        *matched = true;
        const std::u32string_view piece = t.substr(i, length);
        if (length < n && depth < kMaxInconsistentDepth && is_bad(piece)) out += fix_encoding(piece, depth + 1);
        else out.append(piece);
        i += length;
        continue;
      }
    }
    out.push_back(t[i++]);
  }
  return out;
}

// ftfy._fix_encoding_one_step_and_explain with the default configuration.
inline std::u32string fix_encoding_one_step(std::u32string_view text, int depth) {
  if (text.empty()) return std::u32string(text);
  if (std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; }) || !is_bad(text))
    return std::u32string(text);
  const std::uint32_t possible = possible_encodings(text);
  const bool latin1_possible = (possible & (1u << kLatin1)) != 0;
  for (int k = 0; k < kCodecs; ++k) {
    const Codec& codec = codecs()[static_cast<std::size_t>(k)];
    if (!(possible & (1u << k))) continue;
    std::string bytes = encode_with(text, codec);
    if (k != kMacRoman && altered_utf8_search(bytes)) bytes = restore_byte_a0(bytes);
    if (codec.sloppy) bytes = replace_lossy_sequences(bytes);
    if (std::optional<std::u32string> decoded = decode_utf8_variants(bytes)) return std::move(*decoded);
  }
  bool matched = false;
  std::u32string fixed = decode_inconsistent_utf8(text, &matched, depth);
  if (matched && fixed != text) return fixed;
  // ftfy then asks whether "windows-1252" is among the possible encodings, but its list holds
  // "sloppy-windows-1252", so the answer is always no and Latin-1 text is re-read as strict
  // windows-1252 whenever that decodes.
  if (latin1_possible) {
    const auto& real_1252 = fix_text_tables::kCodecHighBytes[kWindows1252];
    std::u32string decoded(text);
    bool ok = true;
    for (char32_t& c : decoded)
      if (c >= 0x80) {
        c = real_1252[c - 0x80];
        if (c == 0) {
          ok = false;
          break;
        }
      }
    if (ok && decoded != text) return decoded;
  }
  if (has_c1_control(text)) return fix_c1_controls(text);
  return std::u32string(text);
}

// Bound on fix_encoding's rounds. Each round that changes the text at least halves its count
// of non-ASCII characters or removes every C1 control, so real text settles in a few; the bound
// only keeps the work linear on hostile input.
inline constexpr int kMaxEncodingRounds = 32;

// ftfy.fix_encoding: one step until the text stops changing.
inline std::u32string fix_encoding(std::u32string_view text, int depth) {
  std::u32string current(text);
  for (int round = 0; round < kMaxEncodingRounds; ++round) {
    std::u32string next = fix_encoding_one_step(current, depth);
    if (next == current) break;
    current = std::move(next);
  }
  return current;
}

}  // namespace clip::detail::ftfy
