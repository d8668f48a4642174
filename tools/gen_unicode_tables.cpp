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

void emit_html_entities(const std::string& entities_py, const std::string& out_path) {
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
  } catch (const std::exception& e) {
    std::cerr << "gen_unicode_tables: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
