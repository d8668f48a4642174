// Generates include/clip/text/detail/unicode_tables.hpp and include/clip/text/detail/html_entities.hpp.
//
//   gen_unicode_tables <unicode_dir> <python_html_entities.py> <output_dir (include/clip/text/detail)>
//
// <unicode_dir> holds the UCD text files (Debian's unicode-data: /usr/share/unicode):
// UnicodeData.txt, SpecialCasing.txt, CaseFolding.txt, DerivedCoreProperties.txt, PropList.txt,
// DerivedAge.txt. The entities file is CPython's Lib/html/entities.py, read as text (its
// `html5 = {...}` literal), so the table is exactly the one html.unescape uses.
//
// Two Unicode views are generated, because OpenAI's tokenizer mixes two libraries:
// - str.isspace / str.lower / Final_Sigma (CPython 3.11 = Unicode 14.0): code points assigned
//   after 14.0 get no properties (restricted with DerivedAge).
// - the `regex` module's \p{L} / \p{N} / \s under IGNORECASE: all data in <unicode_dir>.
#include <iconv.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr std::uint32_t kCodePoints = 0x110000;

// Bit layout shared with include/clip/text/detail/unicode.hpp.
constexpr std::uint8_t kClassOther = 0, kClassLetter = 1, kClassNumber = 2, kClassSkip = 3;
constexpr std::uint8_t kFlagPythonSpace = 1u << 2;
constexpr std::uint8_t kFlagCased = 1u << 3;
constexpr std::uint8_t kFlagCaseIgnorable = 1u << 4;
constexpr std::uint8_t kFlagHasLower = 1u << 5;

// Letters and numbers of Unicode 16.0 and 17.0 (the version the reference's `regex` module
// knows), as ranges of code points still unassigned (Cn) in the local 15.0 data. Applied only
// to code points the local data leaves unassigned, so a newer UCD makes them redundant.
struct NewerRange {
  std::uint32_t first, last;
  std::uint8_t char_class;
};
constexpr NewerRange kNewerLettersAndNumbers[] = {
    {0x088F, 0x088F, kClassLetter},
    {0x0C5C, 0x0C5C, kClassLetter},
    {0x0CDC, 0x0CDC, kClassLetter},
    {0x1C89, 0x1C8A, kClassLetter},
    {0xA7CB, 0xA7CF, kClassLetter},
    {0xA7D2, 0xA7D2, kClassLetter},
    {0xA7D4, 0xA7D4, kClassLetter},
    {0xA7DA, 0xA7DC, kClassLetter},
    {0xA7F1, 0xA7F1, kClassLetter},
    {0x105C0, 0x105F3, kClassLetter},
    {0x10940, 0x10959, kClassLetter},
    {0x10D40, 0x10D49, kClassNumber},
    {0x10D4A, 0x10D65, kClassLetter},
    {0x10D6F, 0x10D85, kClassLetter},
    {0x10EC2, 0x10EC7, kClassLetter},
    {0x11380, 0x11389, kClassLetter},
    {0x1138B, 0x1138B, kClassLetter},
    {0x1138E, 0x1138E, kClassLetter},
    {0x11390, 0x113B5, kClassLetter},
    {0x113B7, 0x113B7, kClassLetter},
    {0x113D1, 0x113D1, kClassLetter},
    {0x113D3, 0x113D3, kClassLetter},
    {0x116D0, 0x116E3, kClassNumber},
    {0x11BC0, 0x11BE0, kClassLetter},
    {0x11BF0, 0x11BF9, kClassNumber},
    {0x11DB0, 0x11DDB, kClassLetter},
    {0x11DE0, 0x11DE9, kClassNumber},
    {0x13460, 0x143FA, kClassLetter},
    {0x16100, 0x1611D, kClassLetter},
    {0x16130, 0x16139, kClassNumber},
    {0x16D40, 0x16D6C, kClassLetter},
    {0x16D70, 0x16D79, kClassNumber},
    {0x16EA0, 0x16EB8, kClassLetter},
    {0x16EBB, 0x16ED3, kClassLetter},
    {0x16FF2, 0x16FF3, kClassLetter},
    {0x16FF4, 0x16FF6, kClassNumber},
    {0x187F8, 0x187FF, kClassLetter},
    {0x18CFF, 0x18CFF, kClassLetter},
    {0x18D09, 0x18D1E, kClassLetter},
    {0x18D80, 0x18DF2, kClassLetter},
    {0x1CCF0, 0x1CCF9, kClassNumber},
    {0x1E5D0, 0x1E5ED, kClassLetter},
    {0x1E5F0, 0x1E5F0, kClassLetter},
    {0x1E5F1, 0x1E5FA, kClassNumber},
    {0x1E6C0, 0x1E6DE, kClassLetter},
    {0x1E6E0, 0x1E6E2, kClassLetter},
    {0x1E6E4, 0x1E6E5, kClassLetter},
    {0x1E6E7, 0x1E6ED, kClassLetter},
    {0x1E6F0, 0x1E6F4, kClassLetter},
    {0x1E6FE, 0x1E6FF, kClassLetter},
    {0x2B73A, 0x2B73F, kClassLetter},
    {0x2CEA2, 0x2CEAD, kClassLetter},
    {0x2EBF0, 0x2EE5D, kClassLetter},
    {0x323B0, 0x33479, kClassLetter},
};

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream stream(line);
  while (std::getline(stream, field, sep)) fields.push_back(field);
  if (!line.empty() && line.back() == sep) fields.emplace_back();  // keep a trailing empty field
  return fields;
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

std::string strip_comment(const std::string& line) { return line.substr(0, line.find('#')); }

std::ifstream open_input(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return in;
}

// "0041..005A" or "0041" -> [first, last]
std::pair<std::uint32_t, std::uint32_t> parse_range(const std::string& text) {
  const std::string t = trim(text);
  const auto dots = t.find("..");
  if (dots == std::string::npos) {
    const auto cp = static_cast<std::uint32_t>(std::stoul(t, nullptr, 16));
    return {cp, cp};
  }
  return {static_cast<std::uint32_t>(std::stoul(t.substr(0, dots), nullptr, 16)),
      static_cast<std::uint32_t>(std::stoul(t.substr(dots + 2), nullptr, 16))};
}

// Calls visit(first, last, value) for each "range ; value" line of a UCD property file.
template <class Visit>
void read_property_file(const std::string& path, Visit visit) {
  auto in = open_input(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto fields = split(strip_comment(line), ';');
    if (fields.size() < 2) continue;
    const auto range = parse_range(fields[0]);
    visit(range.first, range.second, trim(fields[1]));
  }
}

struct UnicodeData {
  std::vector<std::string> category = std::vector<std::string>(kCodePoints, "Cn");
  std::vector<std::string> bidi = std::vector<std::string>(kCodePoints, "");
  std::vector<std::uint32_t> simple_upper = std::vector<std::uint32_t>(kCodePoints, 0);
  std::vector<std::uint32_t> simple_lower = std::vector<std::uint32_t>(kCodePoints, 0);
  std::vector<std::uint32_t> simple_title = std::vector<std::uint32_t>(kCodePoints, 0);
};

UnicodeData read_unicode_data(const std::string& path) {
  UnicodeData data;
  auto in = open_input(path);
  std::string line;
  std::uint32_t range_first = 0;
  while (std::getline(in, line)) {
    const auto f = split(line, ';');
    if (f.size() < 15) continue;
    const auto cp = static_cast<std::uint32_t>(std::stoul(f[0], nullptr, 16));
    std::uint32_t first = cp;
    if (f[1].find(", First>") != std::string::npos) {
      range_first = cp;
      continue;
    }
    if (f[1].find(", Last>") != std::string::npos) first = range_first;
    for (std::uint32_t c = first; c <= cp; ++c) {
      data.category[c] = f[2];
      data.bidi[c] = f[4];
      if (!f[12].empty()) data.simple_upper[c] = std::stoul(f[12], nullptr, 16);
      if (!f[13].empty()) data.simple_lower[c] = std::stoul(f[13], nullptr, 16);
      if (!f[14].empty()) data.simple_title[c] = std::stoul(f[14], nullptr, 16);
    }
  }
  return data;
}

// Version "14.0" -> 1400 so ages compare as integers.
int version_number(const std::string& text) {
  const auto dot = text.find('.');
  return std::stoi(text.substr(0, dot)) * 100 + std::stoi(text.substr(dot + 1));
}

void emit_unicode_tables(const std::string& unicode_dir, const std::string& out_path) {
  const UnicodeData ucd = read_unicode_data(unicode_dir + "/UnicodeData.txt");

  // CPython 3.11's str methods use Unicode 14.0.
  constexpr int kPythonUnicodeVersion = 1400;
  std::vector<bool> in_python(kCodePoints, false);
  read_property_file(unicode_dir + "/DerivedAge.txt",
                       [&](std::uint32_t a, std::uint32_t b, const std::string& age) {
                           if (version_number(age) <= kPythonUnicodeVersion)
                               for (auto c = a; c <= b; ++c) in_python[c] = true;
                       });

  std::vector<bool> cased(kCodePoints, false), case_ignorable(kCodePoints, false);
  read_property_file(unicode_dir + "/DerivedCoreProperties.txt",
                       [&](std::uint32_t a, std::uint32_t b, const std::string& prop) {
                           for (auto c = a; c <= b; ++c) {
                               if (prop == "Cased") cased[c] = true;
                               if (prop == "Case_Ignorable") case_ignorable[c] = true;
                           }
                       });
  std::vector<bool> white_space(kCodePoints, false);
  read_property_file(unicode_dir + "/PropList.txt",
                       [&](std::uint32_t a, std::uint32_t b, const std::string& prop) {
                           if (prop == "White_Space")
                               for (auto c = a; c <= b; ++c) white_space[c] = true;
                       });

  // Full lower-case mappings: SpecialCasing's unconditional entries override UnicodeData
  // (as CPython's makeunicodedata does; conditional ones are ignored, Final_Sigma is code).
  std::map<std::uint32_t, std::vector<std::uint32_t>> lower;
  for (std::uint32_t c = 0; c < kCodePoints; ++c)
    if (ucd.simple_lower[c] != 0 && ucd.simple_lower[c] != c) lower[c] = {ucd.simple_lower[c]};
  {
    auto in = open_input(unicode_dir + "/SpecialCasing.txt");
    std::string line;
    while (std::getline(in, line)) {
      const auto f = split(strip_comment(line), ';');
      if (f.size() < 5 || !trim(f[4]).empty()) continue;
      const auto cp = static_cast<std::uint32_t>(std::stoul(f[0], nullptr, 16));
      std::vector<std::uint32_t> mapped;
      std::istringstream parts(f[1]);
      std::string part;
      while (parts >> part) mapped.push_back(std::stoul(part, nullptr, 16));
      if (mapped == std::vector<std::uint32_t>{cp}) lower.erase(cp);
      else lower[cp] = mapped;
    }
  }
  for (auto it = lower.begin(); it != lower.end();)
    it = in_python[it->first] ? std::next(it) : lower.erase(it);

  // Simple case-equivalence classes, as the regex module uses them under IGNORECASE.
  std::vector<std::set<std::uint32_t>> equivalents(kCodePoints);
  auto link = [&](std::uint32_t a, std::uint32_t b) {
    if (a == b || b == 0) return;
    equivalents[a].insert(b);
    equivalents[b].insert(a);
  };
  for (std::uint32_t c = 0; c < kCodePoints; ++c) {
    link(c, ucd.simple_lower[c]);
    link(c, ucd.simple_upper[c]);
    link(c, ucd.simple_title[c]);
  }
  {
    auto in = open_input(unicode_dir + "/CaseFolding.txt");
    std::string line;
    while (std::getline(in, line)) {
      const auto f = split(strip_comment(line), ';');
      if (f.size() < 3) continue;
      const std::string status = trim(f[1]);
      if (status != "C" && status != "S") continue;
      link(std::stoul(f[0], nullptr, 16), std::stoul(trim(f[2]), nullptr, 16));
    }
  }
  // Close the classes (e.g. K, k and KELVIN SIGN) transitively.
  for (int pass = 0; pass < 2; ++pass)
    for (std::uint32_t c = 0; c < kCodePoints; ++c) {
      std::set<std::uint32_t> closure = equivalents[c];
      for (auto e : equivalents[c]) closure.insert(equivalents[e].begin(), equivalents[e].end());
      closure.erase(c);
      equivalents[c] = closure;
    }

  auto is_letter = [&](std::uint32_t c) { return ucd.category[c][0] == 'L'; };
  auto is_number = [&](std::uint32_t c) { return ucd.category[c][0] == 'N'; };

  std::vector<std::uint8_t> flags(kCodePoints, 0);
  for (std::uint32_t c = 0; c < kCodePoints; ++c) {
    std::uint8_t cls = kClassOther;
    if (ucd.category[c] == "Cn") {
      for (const auto& r : kNewerLettersAndNumbers)
        if (c >= r.first && c <= r.last) cls = r.char_class;
    }
    if (cls != kClassOther) {
      // already classified from the newer ranges
    } else if (is_letter(c)) cls = kClassLetter;
    else if (is_number(c)) cls = kClassNumber;
    else if (white_space[c]) cls = kClassSkip;
    else {
      // regex's negated class [^\s\p{L}\p{N}] under IGNORECASE rejects a character
      // whose case equivalent is a letter or number (U+0345 -> iota), while [\p{L}]
      // does not accept it: such a character matches no alternative and is dropped.
      for (auto e : equivalents[c])
        if (is_letter(e) || is_number(e)) cls = kClassSkip;
    }
    std::uint8_t f = cls;
    if (in_python[c]) {
      const std::string& bidi = ucd.bidi[c];
      if (ucd.category[c] == "Zs" || bidi == "WS" || bidi == "B" || bidi == "S")
        f |= kFlagPythonSpace;
      if (cased[c]) f |= kFlagCased;
      if (case_ignorable[c]) f |= kFlagCaseIgnorable;
      if (lower.count(c)) f |= kFlagHasLower;
    }
    flags[c] = f;
  }

  // Two-stage table: block index per 256 code points, then the distinct blocks.
  std::vector<std::array<std::uint8_t, 256>> blocks;
  std::map<std::array<std::uint8_t, 256>, std::size_t> block_index;
  std::vector<std::size_t> stage1;
  for (std::uint32_t base = 0; base < kCodePoints; base += 256) {
    std::array<std::uint8_t, 256> block{};
    std::copy(flags.begin() + base, flags.begin() + base + 256, block.begin());
    auto found = block_index.find(block);
    if (found == block_index.end()) {
      found = block_index.emplace(block, blocks.size()).first;
      blocks.push_back(block);
    }
    stage1.push_back(found->second);
  }

  std::ofstream out(out_path);
  if (!out) throw std::runtime_error("cannot write " + out_path);
  out << "// GENERATED by tools/gen_unicode_tables.cpp from the Unicode Character Database\n"
           "// (Debian unicode-data, Unicode 15.0). Do not edit.\n"
           "#pragma once\n\n#include <cstdint>\n\nnamespace clip::detail::unicode_tables {\n\n";
  out << "// Flags per code point: bits 0-1 pre-tokenizer class (0 other, 1 letter, 2 number,\n"
           "// 3 skipped), bit 2 Python isspace, bit 3 Cased, bit 4 Case_Ignorable, bit 5 has a\n"
           "// lower-case mapping (Python str.lower, Unicode 14.0).\n";
  out << "inline constexpr std::uint16_t kBlockOf[" << stage1.size() << "] = {";
  for (std::size_t i = 0; i < stage1.size(); ++i) out << (i % 16 ? " " : "\n    ") << stage1[i] << ",";
  out << "\n};\n\n";
  out << "inline constexpr std::uint8_t kBlockFlags[" << blocks.size() << "][256] = {\n";
  for (const auto& block : blocks) {
    out << "    {";
    for (std::size_t i = 0; i < 256; ++i) out << (i % 32 ? " " : "\n        ") << int(block[i]) << ",";
    out << "\n    },\n";
  }
  out << "};\n\n";
  out << "struct LowerMapping {\n    std::uint32_t code_point;\n    std::uint32_t lower[3];\n};\n\n";
  out << "// Sorted by code_point; unused slots of lower[] are 0.\n";
  out << "inline constexpr LowerMapping kLower[" << lower.size() << "] = {\n";
  for (const auto& [cp, mapped] : lower) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "    {0x%04X, {0x%04X, 0x%04X, 0x%04X}},\n", cp, mapped[0],
                      mapped.size() > 1 ? mapped[1] : 0, mapped.size() > 2 ? mapped[2] : 0);
    out << buf;
  }
  out << "};\n\n}  // namespace clip::detail::unicode_tables\n";
}

// Decodes one Python string literal ('...' or "...") starting at pos; returns code points.
std::u32string parse_python_string(const std::string& text, std::size_t& pos) {
  const char quote = text.at(pos++);
  std::u32string value;
  while (text.at(pos) != quote) {
    char c = text[pos++];
    if (c != '\\') {
      if (static_cast<unsigned char>(c) >= 0x80) throw std::runtime_error("non-ASCII literal");
      value.push_back(static_cast<char32_t>(c));
      continue;
    }
    c = text.at(pos++);
    int hex_digits = 0;
    if (c == 'x') hex_digits = 2;
    else if (c == 'u') hex_digits = 4;
    else if (c == 'U') hex_digits = 8;
    else if (c == 'n') value.push_back(U'\n');
    else if (c == 't') value.push_back(U'\t');
    else if (c == '\\' || c == '\'' || c == '"') value.push_back(static_cast<char32_t>(c));
    else throw std::runtime_error(std::string("unsupported escape \\") + c);
    if (hex_digits) {
      value.push_back(static_cast<char32_t>(std::stoul(text.substr(pos, hex_digits), nullptr, 16)));
      pos += hex_digits;
    }
  }
  ++pos;
  return value;
}

std::map<std::string, std::u32string> read_html5_entities(const std::string& entities_py) {
  auto in = open_input(entities_py);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::size_t pos = text.find("\nhtml5 = {");
  if (pos == std::string::npos) throw std::runtime_error(entities_py + ": no html5 table");
  const std::size_t end = text.find("\n}", pos);
  pos = text.find('{', pos) + 1;
  std::map<std::string, std::u32string> entities;
  while (true) {
    pos = text.find_first_of("'\"}", pos);
    if (pos >= end) break;
    std::u32string name = parse_python_string(text, pos);
    pos = text.find_first_of("'\"", text.find(':', pos));
    std::u32string value = parse_python_string(text, pos);
    std::string ascii_name(name.begin(), name.end());
    entities[ascii_name] = value;
  }
  if (entities.size() < 2000) throw std::runtime_error(entities_py + ": too few entities");
  return entities;
}

void emit_html_entities(const std::string& entities_py, const std::string& out_path) {
  const std::map<std::string, std::u32string> entities = read_html5_entities(entities_py);

  std::ofstream out(out_path);
  if (!out) throw std::runtime_error("cannot write " + out_path);
  out << "// GENERATED by tools/gen_unicode_tables.cpp from CPython 3.11 Lib/html/entities.py\n"
           "// (the html5 table html.unescape uses). Do not edit.\n"
           "#pragma once\n\n#include <string_view>\n\nnamespace clip::detail {\n\n"
           "struct HtmlEntity {\n    std::string_view name;  // with ';' when the standard requires it\n"
           "    std::u32string_view value;\n};\n\n";
  out << "// Sorted by name (byte order).\n";
  out << "inline constexpr HtmlEntity kHtmlEntities[" << entities.size() << "] = {\n";
  for (const auto& [name, value] : entities) {
    out << "    {\"" << name << "\", U\"";
    for (char32_t c : value) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\U%08X", static_cast<unsigned>(c));
      out << buf;
    }
    out << "\"},\n";
  }
  out << "};\n\n}  // namespace clip::detail\n";
}

// ---------------------------------------------------------------------------------------------
// fix_text_tables.hpp: what clip::fix_text (ftfy 6.3.1 on CPython 3.11) needs from Unicode 14.0
// and from the single-byte codecs ftfy tries.

struct NormalizationData {
  std::vector<std::uint8_t> ccc = std::vector<std::uint8_t>(kCodePoints, 0);
  std::vector<bool> canonical = std::vector<bool>(kCodePoints, false);  // decomposition has no <tag>
  std::vector<std::vector<std::uint32_t>> decomposition = std::vector<std::vector<std::uint32_t>>(kCodePoints);
  std::vector<bool> decimal = std::vector<bool>(kCodePoints, false);   // field 6: str.isdecimal, re's \d
  std::vector<bool> numeric = std::vector<bool>(kCodePoints, false);   // field 8: str.isnumeric
  std::vector<bool> letter = std::vector<bool>(kCodePoints, false);    // L*: str.isalpha
};

NormalizationData read_normalization_data(const std::string& path, const std::vector<bool>& in_python) {
  NormalizationData data;
  auto in = open_input(path);
  std::string line;
  std::uint32_t range_first = 0;
  while (std::getline(in, line)) {
    const auto f = split(line, ';');
    if (f.size() < 15) continue;
    const auto cp = static_cast<std::uint32_t>(std::stoul(f[0], nullptr, 16));
    std::uint32_t first = cp;
    if (f[1].find(", First>") != std::string::npos) {
      range_first = cp;
      continue;
    }
    if (f[1].find(", Last>") != std::string::npos) first = range_first;
    for (std::uint32_t c = first; c <= cp; ++c) {
      if (!in_python[c]) continue;  // CPython 3.11 knows nothing of it
      data.ccc[c] = static_cast<std::uint8_t>(std::stoul(f[3]));
      data.letter[c] = f[2][0] == 'L';
      data.decimal[c] = !f[6].empty();
      data.numeric[c] = !f[8].empty();
      if (!f[5].empty()) {
        std::istringstream parts(f[5]);
        std::string part;
        bool tagged = false;
        while (parts >> part) {
          if (part[0] == '<') tagged = true;
          else data.decomposition[c].push_back(std::stoul(part, nullptr, 16));
        }
        data.canonical[c] = !tagged;
      }
    }
  }
  return data;
}

// Recursive decomposition (canonical only, or also compatibility), then canonical ordering.
void decompose(const NormalizationData& d, std::uint32_t c, bool compatibility, std::vector<std::uint32_t>& out) {
  if (!d.decomposition[c].empty() && (compatibility || d.canonical[c])) {
    for (auto part : d.decomposition[c]) decompose(d, part, compatibility, out);
    return;
  }
  out.push_back(c);
}

void canonical_order(const NormalizationData& d, std::vector<std::uint32_t>& s) {
  for (std::size_t i = 0; i < s.size();) {
    if (d.ccc[s[i]] == 0) { ++i; continue; }
    std::size_t j = i;
    while (j < s.size() && d.ccc[s[j]] != 0) ++j;
    std::stable_sort(s.begin() + i, s.begin() + j, [&](auto a, auto b) { return d.ccc[a] < d.ccc[b]; });
    i = j;
  }
}

// Two-stage table of one byte per code point: kBlockOf<name>[cp >> 8] picks a 256-entry block.
void emit_two_stage(std::ostream& out, const std::string& name, const std::vector<std::uint8_t>& values) {
  std::vector<std::array<std::uint8_t, 256>> blocks;
  std::map<std::array<std::uint8_t, 256>, std::size_t> block_index;
  std::vector<std::size_t> stage1;
  for (std::uint32_t base = 0; base < kCodePoints; base += 256) {
    std::array<std::uint8_t, 256> block{};
    std::copy(values.begin() + base, values.begin() + base + 256, block.begin());
    auto found = block_index.find(block);
    if (found == block_index.end()) {
      found = block_index.emplace(block, blocks.size()).first;
      blocks.push_back(block);
    }
    stage1.push_back(found->second);
  }
  out << "inline constexpr std::uint16_t k" << name << "BlockOf[" << stage1.size() << "] = {";
  for (std::size_t i = 0; i < stage1.size(); ++i) out << (i % 16 ? " " : "\n    ") << stage1[i] << ",";
  out << "\n};\n\n";
  out << "inline constexpr std::uint8_t k" << name << "Blocks[" << blocks.size() << "][256] = {\n";
  for (const auto& block : blocks) {
    out << "    {";
    for (std::size_t i = 0; i < 256; ++i) out << (i % 32 ? " " : "\n        ") << int(block[i]) << ",";
    out << "\n    },\n";
  }
  out << "};\n\n";
}

std::string hex_list(const std::vector<std::uint32_t>& cps) {
  std::string s;
  for (auto c : cps) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "\\U%08X", c);
    s += buf;
  }
  return s;
}

// The single-byte codecs ftfy tries (its CHARMAP_ENCODINGS order), decoded with glibc's iconv.
struct CodecSpec {
  const char* ftfy_name;  // as ftfy/CPython call it
  const char* iconv_name;
};
constexpr CodecSpec kCodecs[] = {
    {"latin-1", "ISO-8859-1"}, {"windows-1252", "CP1252"}, {"windows-1251", "CP1251"},
    {"windows-1250", "CP1250"}, {"windows-1253", "CP1253"}, {"windows-1254", "CP1254"},
    {"windows-1257", "CP1257"}, {"iso-8859-2", "ISO-8859-2"}, {"macroman", "MACINTOSH"}, {"cp437", "IBM437"},
};

// Code point of one byte in an iconv charset, 0 when the byte is undefined there.
std::uint32_t iconv_decode_byte(const char* charset, unsigned char byte) {
  iconv_t cd = iconv_open("UTF-32LE", charset);
  if (cd == reinterpret_cast<iconv_t>(-1)) throw std::runtime_error(std::string("iconv has no charset ") + charset);
  char in_byte = static_cast<char>(byte);
  unsigned char out_bytes[8] = {};
  char* in_ptr = &in_byte;
  char* out_ptr = reinterpret_cast<char*>(out_bytes);
  std::size_t in_left = 1, out_left = sizeof out_bytes;
  const std::size_t status = iconv(cd, &in_ptr, &in_left, &out_ptr, &out_left);
  iconv_close(cd);
  if (status == static_cast<std::size_t>(-1) || out_left != 4) return 0;
  return out_bytes[0] | (out_bytes[1] << 8) | (out_bytes[2] << 16) | (static_cast<std::uint32_t>(out_bytes[3]) << 24);
}

// Python's str.upper() of a short string (full mappings; used for ftfy's upper-case entities).
std::vector<std::uint32_t> python_upper(const std::u32string& text, const std::string& unicode_dir) {
  static std::map<std::uint32_t, std::vector<std::uint32_t>> upper;
  if (upper.empty()) {
    const UnicodeData ucd = read_unicode_data(unicode_dir + "/UnicodeData.txt");
    for (std::uint32_t c = 0; c < kCodePoints; ++c)
      if (ucd.simple_upper[c] != 0) upper[c] = {ucd.simple_upper[c]};
    auto in = open_input(unicode_dir + "/SpecialCasing.txt");
    std::string line;
    while (std::getline(in, line)) {
      const auto f = split(strip_comment(line), ';');
      if (f.size() < 5 || !trim(f[4]).empty()) continue;
      const auto cp = static_cast<std::uint32_t>(std::stoul(f[0], nullptr, 16));
      std::vector<std::uint32_t> mapped;
      std::istringstream parts(f[3]);
      std::string part;
      while (parts >> part) mapped.push_back(std::stoul(part, nullptr, 16));
      upper[cp] = mapped;
    }
  }
  std::vector<std::uint32_t> out;
  for (char32_t c : text) {
    const auto found = upper.find(c);
    if (found == upper.end()) out.push_back(c);
    else out.insert(out.end(), found->second.begin(), found->second.end());
  }
  return out;
}

std::map<std::string, std::u32string> read_html5_entities(const std::string& entities_py);

void emit_fix_text_tables(const std::string& unicode_dir, const std::string& entities_py, const std::string& out_path) {
  constexpr int kPythonUnicodeVersion = 1400;
  std::vector<bool> in_python(kCodePoints, false);
  read_property_file(unicode_dir + "/DerivedAge.txt", [&](std::uint32_t a, std::uint32_t b, const std::string& age) {
    if (version_number(age) <= kPythonUnicodeVersion)
      for (auto c = a; c <= b; ++c) in_python[c] = true;
  });
  const NormalizationData d = read_normalization_data(unicode_dir + "/UnicodeData.txt", in_python);
  std::vector<bool> excluded(kCodePoints, false);
  read_property_file(unicode_dir + "/DerivedNormalizationProps.txt",
                     [&](std::uint32_t a, std::uint32_t b, const std::string& prop) {
                       if (prop == "Full_Composition_Exclusion")
                         for (auto c = a; c <= b; ++c) excluded[c] = true;
                     });

  // Canonical compositions: two-code-point canonical decompositions not excluded.
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint32_t> compositions;
  std::vector<bool> second(kCodePoints, false);
  for (std::uint32_t c = 0; c < kCodePoints; ++c)
    if (d.canonical[c] && d.decomposition[c].size() == 2 && !excluded[c]) {
      compositions[{d.decomposition[c][0], d.decomposition[c][1]}] = c;
      second[d.decomposition[c][1]] = true;
    }
  for (std::uint32_t c = 0x1161; c <= 0x1175; ++c) second[c] = true;  // Hangul V
  for (std::uint32_t c = 0x11A8; c <= 0x11C2; ++c) second[c] = true;  // Hangul T

  std::map<std::uint32_t, std::vector<std::uint32_t>> full_decomposition;
  for (std::uint32_t c = 0; c < kCodePoints; ++c)
    if (d.canonical[c] && !d.decomposition[c].empty()) {
      std::vector<std::uint32_t> parts;
      decompose(d, c, false, parts);
      full_decomposition[c] = parts;
    }

  // Flags: bit 0 has a canonical decomposition, bit 1 may combine with what precedes it in a
  // composition, bit 2 Python re's \w (str.isalnum() or '_'), bit 3 re's \d (str.isdecimal()).
  std::vector<std::uint8_t> flags(kCodePoints, 0), ccc(kCodePoints, 0);
  for (std::uint32_t c = 0; c < kCodePoints; ++c) {
    std::uint8_t f = 0;
    if (full_decomposition.count(c)) f |= 1;
    if (second[c]) f |= 2;
    if (d.letter[c] || d.decimal[c] || d.numeric[c] || c == '_') f |= 4;
    if (d.decimal[c]) f |= 8;
    flags[c] = f;
    ccc[c] = d.ccc[c];
  }

  // ftfy's fix_character_width: U+3000 -> ' ' and NFKC of U+FF01..U+FFEF where it differs.
  std::map<std::uint32_t, std::vector<std::uint32_t>> width;
  width[0x3000] = {0x20};
  for (std::uint32_t c = 0xFF01; c < 0xFFF0; ++c) {
    std::vector<std::uint32_t> parts;
    decompose(d, c, true, parts);
    canonical_order(d, parts);
    for (std::size_t i = 0; i + 1 < parts.size(); ++i)
      if (compositions.count({parts[i], parts[i + 1]}))
        throw std::runtime_error("width map: NFKD of a halfwidth/fullwidth form recomposes");
    if (parts != std::vector<std::uint32_t>{c}) width[c] = parts;
  }

  // The codecs, bytes 0x80..0xFF (0x00..0x7F are ASCII in all of them, checked here).
  std::vector<std::array<std::uint32_t, 128>> codecs;
  for (const auto& spec : kCodecs) {
    for (int b = 0; b < 0x80; ++b)
      if (iconv_decode_byte(spec.iconv_name, static_cast<unsigned char>(b)) != static_cast<std::uint32_t>(b))
        throw std::runtime_error(std::string(spec.iconv_name) + ": byte below 0x80 is not ASCII");
    std::array<std::uint32_t, 128> table{};
    for (int b = 0x80; b < 0x100; ++b) table[b - 0x80] = iconv_decode_byte(spec.iconv_name, static_cast<unsigned char>(b));
    // CPython's mac_roman follows Apple's ROMAN.TXT where glibc's MACINTOSH does not.
    if (std::string(spec.ftfy_name) == "macroman") {
      table[0xC6 - 0x80] = 0x2206;  // INCREMENT (glibc: GREEK CAPITAL LETTER DELTA)
      table[0xF0 - 0x80] = 0xF8FF;  // Apple logo, private use (glibc: U+E01E)
    }
    codecs.push_back(table);
  }

  // ftfy's HTML_ENTITIES additions: for a lower-case html5 name with ';', its upper-cased form
  // decodes to the upper-cased value when html.unescape leaves that form alone.
  const auto html5 = read_html5_entities(entities_py);
  std::map<std::string, std::vector<std::uint32_t>> upper_entities;
  for (const auto& [name, value] : html5) {
    if (name.empty() || name.back() != ';') continue;
    std::string upper = name;
    bool has_lower = false;
    for (char& ch : upper)
      if (ch >= 'a' && ch <= 'z') {
        ch = static_cast<char>(ch - 32);
        has_lower = true;
      }
    bool is_lower = true;
    for (char ch : name)
      if (ch >= 'A' && ch <= 'Z') is_lower = false;
    if (!is_lower || !has_lower) continue;
    bool unescapes = html5.count(upper) > 0;  // html.unescape: exact name, else longest prefix >= 2
    for (std::size_t x = upper.size() - 1; x > 1 && !unescapes; --x) unescapes = html5.count(upper.substr(0, x)) > 0;
    if (!unescapes) upper_entities[upper] = python_upper(value, unicode_dir);
  }

  std::ofstream out(out_path);
  if (!out) throw std::runtime_error("cannot write " + out_path);
  out << "// GENERATED by tools/gen_unicode_tables.cpp from the Unicode Character Database (Debian\n"
         "// unicode-data, restricted to Unicode 14.0 as CPython 3.11 has it), glibc's iconv charsets and\n"
         "// CPython 3.11 Lib/html/entities.py. Do not edit. Used by clip::fix_text (ftfy 6.3.1).\n"
         "#pragma once\n\n#include <cstdint>\n#include <string_view>\n\nnamespace clip::detail::fix_text_tables {\n\n";
  out << "// Canonical combining class per code point.\n";
  emit_two_stage(out, "Ccc", ccc);
  out << "// Bit 0 has a canonical decomposition, bit 1 can be the second of a canonical composition\n"
         "// (Hangul V and T jamo included), bit 2 Python re's \\w, bit 3 Python re's \\d.\n";
  emit_two_stage(out, "Flags", flags);
  out << "struct Mapping {\n    char32_t code_point;\n    std::u32string_view to;\n};\n\n";
  out << "// Full canonical decompositions (recursive; Hangul syllables are algorithmic), sorted.\n";
  out << "inline constexpr Mapping kDecompositions[" << full_decomposition.size() << "] = {\n";
  for (const auto& [c, parts] : full_decomposition) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "    {0x%04X, U\"", c);
    out << buf << hex_list(parts) << "\"},\n";
  }
  out << "};\n\n";
  out << "struct Composition {\n    char32_t first, second, composite;\n};\n\n";
  out << "// Canonical compositions without the Full_Composition_Exclusion ones, sorted by (first, second).\n";
  out << "inline constexpr Composition kCompositions[" << compositions.size() << "] = {\n";
  for (const auto& [pair, c] : compositions) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "    {0x%04X, 0x%04X, 0x%04X},\n", pair.first, pair.second, c);
    out << buf;
  }
  out << "};\n\n";
  out << "// ftfy's WIDTH_MAP: U+3000 and the NFKC forms of U+FF01..U+FFEF, sorted.\n";
  out << "inline constexpr Mapping kWidthMap[" << width.size() << "] = {\n";
  for (const auto& [c, parts] : width) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "    {0x%04X, U\"", c);
    out << buf << hex_list(parts) << "\"},\n";
  }
  out << "};\n\n";
  out << "// Bytes 0x80..0xFF of the codecs in ftfy's CHARMAP_ENCODINGS order, as CPython decodes them;\n"
         "// 0 = undefined. (The sloppy- variants are built from these at run time.)\n";
  out << "inline constexpr int kCodecCount = " << codecs.size() << ";\n";
  out << "inline constexpr std::string_view kCodecNames[" << codecs.size() << "] = {";
  for (const auto& spec : kCodecs) out << "\"" << spec.ftfy_name << "\", ";
  out << "};\n";
  out << "inline constexpr char32_t kCodecHighBytes[" << codecs.size() << "][128] = {\n";
  for (const auto& table : codecs) {
    out << "    {";
    for (std::size_t i = 0; i < 128; ++i) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "0x%04X,", table[i]);
      out << (i % 12 ? " " : "\n        ") << buf;
    }
    out << "\n    },\n";
  }
  out << "};\n\n";
  out << "struct UpperEntity {\n    std::string_view name;  // without '&', with ';'\n    std::u32string_view value;\n};\n\n";
  out << "// ftfy's upper-cased entities (&EACUTE; -> U+00C9), sorted by name.\n";
  out << "inline constexpr UpperEntity kUpperEntities[" << upper_entities.size() << "] = {\n";
  for (const auto& [name, value] : upper_entities) out << "    {\"" << name << "\", U\"" << hex_list(value) << "\"},\n";
  out << "};\n\n}  // namespace clip::detail::fix_text_tables\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: gen_unicode_tables <unicode_dir> <html/entities.py> <out_dir>\n"
                     "  e.g. gen_unicode_tables /usr/share/unicode /usr/lib/python3.11/html/entities.py"
                     " include/clip/text/detail\n";
    return 2;
  }
  try {
    const std::string out_dir = argv[3];
    emit_unicode_tables(argv[1], out_dir + "/unicode_tables.hpp");
    emit_html_entities(argv[2], out_dir + "/html_entities.hpp");
    emit_fix_text_tables(argv[1], argv[2], out_dir + "/fix_text_tables.hpp");
  } catch (const std::exception& e) {
    std::cerr << "gen_unicode_tables: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
