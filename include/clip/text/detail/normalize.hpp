#pragma once
// Unicode NFC as CPython 3.11's unicodedata.normalize("NFC") (Unicode 14.0): full canonical
// decomposition (Hangul algorithmically), canonical ordering, canonical composition without
// the Full_Composition_Exclusion characters. Tables: fix_text_tables.hpp (generated).
// O(n log n) for any input: reordering sorts each run of combining marks with a stable sort
// (CPython's insertion sort gives the same order), and composition is one pass.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "clip/text/detail/fix_text_tables.hpp"

namespace clip::detail {

inline std::uint8_t combining_class(char32_t c) {
  if (c >= 0x110000) return 0;
  return fix_text_tables::kCccBlocks[fix_text_tables::kCccBlockOf[c >> 8]][c & 0xFF];
}

inline std::uint8_t fix_text_flags(char32_t c) {
  if (c >= 0x110000) return 0;
  return fix_text_tables::kFlagsBlocks[fix_text_tables::kFlagsBlockOf[c >> 8]][c & 0xFF];
}

inline bool has_canonical_decomposition(char32_t c) { return (fix_text_flags(c) & 1u) != 0; }
inline bool can_compose_with_previous(char32_t c) { return (fix_text_flags(c) & 2u) != 0; }
/// Python re's \w on str: str.isalnum() or '_'.
inline bool is_python_word(char32_t c) { return (fix_text_flags(c) & 4u) != 0; }
/// Python re's \d on str: str.isdecimal().
inline bool is_python_decimal(char32_t c) { return (fix_text_flags(c) & 8u) != 0; }

namespace hangul {
inline constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
inline constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                          kSCount = kLCount * kNCount;
}  // namespace hangul

inline void append_canonical_decomposition(char32_t c, std::u32string& out) {
  using namespace hangul;
  if (c >= kSBase && c < kSBase + kSCount) {
    const char32_t index = c - kSBase;
    out.push_back(kLBase + index / kNCount);
    out.push_back(kVBase + (index % kNCount) / kTCount);
    if (index % kTCount != 0) out.push_back(kTBase + index % kTCount);
    return;
  }
  if (!has_canonical_decomposition(c)) {
    out.push_back(c);
    return;
  }
  const auto* begin = std::begin(fix_text_tables::kDecompositions);
  const auto* end = std::end(fix_text_tables::kDecompositions);
  const auto* found = std::lower_bound(begin, end, c, [](const fix_text_tables::Mapping& m, char32_t v) {
    return m.code_point < v;
  });
  if (found == end || found->code_point != c) return out.push_back(c);  // consistent tables: never
  out.append(found->to);
}

// The primary composite of (first, second), or 0 when there is none.
inline char32_t compose_pair(char32_t first, char32_t second) {
  using namespace hangul;
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase && second < kVBase + kVCount)
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 && second > kTBase &&
      second < kTBase + kTCount)
    return first + (second - kTBase);
  const auto* begin = std::begin(fix_text_tables::kCompositions);
  const auto* end = std::end(fix_text_tables::kCompositions);
  const auto* found = std::lower_bound(begin, end, std::make_pair(first, second),
                                       [](const fix_text_tables::Composition& c, std::pair<char32_t, char32_t> v) {
                                         return c.first != v.first ? c.first < v.first : c.second < v.second;
                                       });
  return found != end && found->first == first && found->second == second ? found->composite : 0;
}

// True when NFC certainly leaves the text alone: nothing decomposes, nothing needs reordering,
// nothing can compose with what precedes it.
inline bool nfc_unchanged_quick(std::u32string_view text) {
  for (char32_t c : text) {
    if (c < 0x300) continue;
    if ((c >= hangul::kSBase && c < hangul::kSBase + hangul::kSCount)) continue;  // alone, a syllable stays
    if ((fix_text_flags(c) & 3u) != 0 || combining_class(c) != 0) return false;
  }
  return true;
}

inline std::u32string nfc(std::u32string_view text) {
  if (nfc_unchanged_quick(text)) return std::u32string(text);
  std::u32string d;
  d.reserve(text.size() + text.size() / 4);
  for (char32_t c : text) append_canonical_decomposition(c, d);

  // Canonical ordering: stable sort of every run of non-starters by combining class.
  for (std::size_t i = 0; i < d.size();) {
    if (combining_class(d[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < d.size() && combining_class(d[j]) != 0) ++j;
    if (j - i > 1)
      std::stable_sort(d.begin() + static_cast<std::ptrdiff_t>(i), d.begin() + static_cast<std::ptrdiff_t>(j),
                       [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }

  // Canonical composition (UAX #15): a character combines with the last starter unless blocked
  // by a character between them of class 0 or of a class >= its own.
  std::u32string out;
  out.reserve(d.size());
  std::size_t starter = std::u32string::npos;  // index in out of the last starter
  int last_class = -1;                         // class of the last character appended after it
  for (char32_t c : d) {
    const int cls = combining_class(c);
    if (starter != std::u32string::npos) {
      const bool blocked = last_class != -1 && (last_class == 0 || last_class >= cls);
      if (!blocked) {
        if (const char32_t composite = compose_pair(out[starter], c)) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (cls == 0) {
      starter = out.size();
      last_class = -1;
    } else {
      last_class = cls;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace clip::detail
