// clip::fix_text tests: parity with ftfy 6.3.1 (reference data made with real ftfy, through
// CLIP_REFERENCE_DIR) and hand-made cases per fix. Every expected value below was worked out from
// ftfy's rules and checked by running ftfy 6.3.1 itself (Python 3.11), never produced by this code.
// Eigen-free: this file includes only the fix_text header.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "clip/text/fix_text.hpp"
#include "test_support.hpp"

namespace {

std::string fix(const std::string& text) { return clip::fix_text(text); }

// One line per JSON row, parsed.
std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

}  // namespace

// ---- Reference data ------------------------------------------------------------------------

TEST(FixTextReference, CasesJsonlFixTextAndFixEncoding) {
  CLIP_REFERENCE_OR_SKIP(path, "ftfy/cases.jsonl");
  int rows = 0, fix_text_match = 0, fix_encoding_match = 0;
  for (const auto& row : read_jsonl(path)) {
    const std::string original = row.at("original");
    ++rows;
    if (clip::fix_text(original) == row.at("fix_text").get<std::string>()) ++fix_text_match;
    else ADD_FAILURE() << row.at("label") << ": fix_text differs for " << nlohmann::json(original).dump();
    if (clip::fix_encoding(original) == row.at("fix_encoding").get<std::string>()) ++fix_encoding_match;
    else ADD_FAILURE() << row.at("label") << ": fix_encoding differs for " << nlohmann::json(original).dump();
  }
  std::cout << "ftfy/cases.jsonl: fix_text " << fix_text_match << "/" << rows << ", fix_encoding "
            << fix_encoding_match << "/" << rows << "\n";
  EXPECT_GT(rows, 0);
}

TEST(FixTextReference, PublicJsonlFixed) {
  CLIP_REFERENCE_OR_SKIP(path, "ftfy/public.jsonl");
  int rows = 0, matches = 0;
  for (const auto& row : read_jsonl(path)) {
    const std::string text = row.at("text");
    ++rows;
    if (clip::fix_text(text) == row.at("fixed").get<std::string>()) ++matches;
    else ADD_FAILURE() << "fix_text differs for " << nlohmann::json(text).dump();
  }
  std::cout << "ftfy/public.jsonl: fix_text " << matches << "/" << rows << "\n";
  EXPECT_GT(rows, 0);
}

// ---- Segments, repetition and the "<" rule ---------------------------------------------------

TEST(FixText, HtmlIsUnescapedUntilALineWithLessThanAndNotAfter) {
  EXPECT_EQ(fix("&amp; a\n<b> &amp;\n&amp;"), "& a\n<b> &amp;\n&amp;");
  EXPECT_EQ(fix("<p>&amp;</p>"), "<p>&amp;</p>");
  EXPECT_EQ(fix("&eacute; <"), "&eacute; <");  // the whole line counts, also after the entity
  // A "<" made by decoding &lt; does not switch unescaping off.
  EXPECT_EQ(fix("&lt;b&gt;\n&amp;"), "<b>\n&");
}

TEST(FixText, FixesRepeatUntilTheTextStopsChanging) {
  EXPECT_EQ(fix("&amp;eacute;"), "é");     // entity, then the entity it revealed
  EXPECT_EQ(fix("&amp;amp;amp;"), "&");    // one level per round
  EXPECT_EQ(fix("ÃƒÂ©"), "é");             // mojibake twice over
  EXPECT_EQ(fix("The Mona Lisa doesnÃƒÂ¢Ã¢â€šÂ¬Ã¢â€žÂ¢t have eyebrows."), "The Mona Lisa doesn't have eyebrows.");
}

TEST(FixText, SegmentsAreFixedIndependently) {
  // Each line is judged on its own: the mojibake line is fixed, the other one left alone.
  EXPECT_EQ(fix("cafÃ©\nÃÃÃ"), "café\nÃÃÃ");
  EXPECT_EQ(fix(""), "");
}

// ---- unescape_html -------------------------------------------------------------------------

TEST(FixText, UnescapeHtmlNamesNumbersAndUpperCase) {
  EXPECT_EQ(fix("&EACUTE;"), "É");
  EXPECT_EQ(fix("BUNDESSTRA&SZLIG;E"), "BUNDESSTRASSE");
  EXPECT_EQ(fix("&ntilde; &Ntilde; &NTILDE; &nTILDE;"), "ñ Ñ Ñ &nTILDE;");
  EXPECT_EQ(fix("&notit;"), "&notit;");           // only exact names with ';'
  EXPECT_EQ(fix("this&not that"), "this&not that");  // no ';', no entity
  EXPECT_EQ(fix("&#x1F600;"), "😀");
  EXPECT_EQ(fix("&#12a;"), "&#12a;");             // html.unescape would leave the ';'
  EXPECT_EQ(fix("&#0;"), "\uFFFD");
  EXPECT_EQ(fix("a&#1;b"), "ab");
  EXPECT_EQ(fix("&aaaaaaaaaaaaaaaaaaaaaaaaa;"), "&aaaaaaaaaaaaaaaaaaaaaaaaa;");  // 25 characters: too long
}

// ---- fix_encoding --------------------------------------------------------------------------

TEST(FixEncoding, MojibakeThroughTheSingleByteCodecs) {
  EXPECT_EQ(clip::fix_encoding("cafÃ©"), "café");                                // latin-1
  EXPECT_EQ(clip::fix_encoding("âœ” No problems"), "✔ No problems");            // sloppy windows-1252
  EXPECT_EQ(clip::fix_encoding("Ð¿Ñ€Ð¸Ð²ÐµÑ‚"), "привет");                      // windows-1252, Cyrillic
  EXPECT_EQ(clip::fix_encoding("Ã© ‚Äúmac‚Äù"), "\u0329 “mac”");               // macroman
  EXPECT_EQ(clip::fix_encoding("Ã¢â‚¬Å“mixedâ€\u009D and cafÃ©"), "“mixed” and café");
  EXPECT_EQ(clip::fix_encoding("ÃÃÃÃÃ"), "ÃÃÃÃÃ");                            // not bad: left alone
  EXPECT_EQ(clip::fix_encoding("&amp;"), "&amp;");                              // no HTML here
}

TEST(FixEncoding, RestoreByteA0AndLossySequences) {
  EXPECT_EQ(clip::fix_encoding("voilÃ le travail"), "voilà le travail");
  EXPECT_EQ(clip::fix_encoding("â€œ like this â€\uFFFD"), "“ like this \uFFFD");
  EXPECT_EQ(clip::fix_encoding("Ãºnico Ã?"), "único \uFFFD");
}

TEST(FixEncoding, Utf8VariantsCesu8AndJavaNull) {
  // 😀 as CESU-8 (ED A0 BD ED B8 80) read as Latin-1.
  EXPECT_EQ(clip::fix_encoding("í\u00A0½í¸\u0080"), "😀");
  EXPECT_EQ(clip::fix_encoding("aÀ\u0080b"), std::string("a\0b", 3));  // C0 80 is Java's U+0000
  EXPECT_EQ(fix("aÀ\u0080b"), "ab");                                       // then removed as a control
  // ftfy's decoder lets C0 before a final "\n" stand for U+0000 too, eating the newline.
  EXPECT_EQ(clip::fix_encoding("cafÃ© À\n"), std::string("café \0", 7));
  EXPECT_EQ(fix("cafÃ© À\n"), "café ");
}

TEST(FixEncoding, C1ControlsAsWindows1252) {
  EXPECT_EQ(clip::fix_encoding("\u0093quoted\u0094"), "“quoted”");
  // U+0081 is undefined in windows-1252: the strict decode fails, fix_c1_controls does the rest.
  EXPECT_EQ(clip::fix_encoding("\u0081\u0093x\u0094"), "\u0081“x”");
  EXPECT_EQ(fix("What is this \u0085 I don't even"), "What is this … I don't even");
}

// ---- The character fixes -------------------------------------------------------------------

TEST(FixText, LatinLigatures) {
  EXPECT_EQ(fix("ﬂuﬃeﬆ"), "fluffiest");
  EXPECT_EQ(fix("ŉ"), "'n");  // U+02BC then uncurled
}

TEST(FixText, CharacterWidth) {
  EXPECT_EQ(fix("ＬＯＵＤ\u3000ＮＯＩＳＥＳ"), "LOUD NOISES");
  EXPECT_EQ(fix("Ｕﾀｰﾝ"), "Uターン");
  EXPECT_EQ(fix("ｶﾞ"), "ガ");  // halfwidth voiced mark becomes combining, NFC composes
}

TEST(FixText, UncurlQuotes) { EXPECT_EQ(fix("“here’s a test”"), "\"here's a test\""); }

TEST(FixText, LineBreaks) { EXPECT_EQ(fix("a\r\nb\rc\u2028d\u2029e"), "a\nb\nc\nd\ne"); }

TEST(FixText, SurrogatesInCodePoints) {
  EXPECT_EQ(clip::fix_text(std::u32string{0xD83D, 0xDCA9}), U"💩");
  EXPECT_EQ(clip::fix_text(std::u32string{0xDCA9, 0xD83D}), U"\uFFFD\uFFFD");
}

TEST(FixText, TerminalEscapes) {
  EXPECT_EQ(fix("\x1b[36;44mI'm blue\x1b[0m"), "I'm blue");
  EXPECT_EQ(fix("\x1b[١m!"), "!");    // Python's \d takes any decimal digit
  EXPECT_EQ(fix("\x1b[12"), "[12");    // not an escape: only the ESC control is removed
}

TEST(FixText, ControlCharacters) {
  const std::string text = std::string("a") + '\0' + "b" + '\x07' + "c" + '\x7f' + "\uFEFFd\u206Ae\uFFFCf\tg\fh";
  EXPECT_EQ(fix(text), "abcdef\tg\fh");
}

TEST(FixText, NfcNormalization) {
  EXPECT_EQ(fix("e\u0301"), "é");
  EXPECT_EQ(fix("\u1100\u1161\u11A8"), "각");           // Hangul L V T
  EXPECT_EQ(fix("a\u0302\u0323"), "\u1EAD");            // reordered, then composed
  EXPECT_EQ(fix("\u0958"), "\u0915\u093C");             // composition exclusion
  EXPECT_EQ(fix("\u212B"), "\u00C5");                   // singleton
  EXPECT_EQ(fix("\u0344"), "\u0308\u0301");             // non-starter decomposition
}

TEST(FixText, CleanAsciiIsReturnedUnchanged) {
  const std::string text = "A photo of a cat, 3 dogs & \"quotes\"; tabs\tand\nnew lines.\n";
  EXPECT_EQ(fix(text), "A photo of a cat, 3 dogs & \"quotes\"; tabs\tand\nnew lines.\n");
}

// ---- Bad input stays total (results asserted, not timed) -----------------------------------

TEST(FixTextBadInput, InvalidUtf8IsReplacedOrAnError) {
  EXPECT_EQ(fix("ab\xff\xfe" "cd"), "ab\uFFFD\uFFFDcd");
  try {
    clip::fix_text("ab\xff", clip::InvalidUtf8::error);
    FAIL() << "expected clip::Error";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte 2"), std::string::npos) << e.what();
  }
}

TEST(FixTextBadInput, SurrogatesEncodedAsUtf8) {
  // ED A0 80 is ill-formed UTF-8: one U+FFFD per maximal subpart, as Python's decoder.
  EXPECT_EQ(fix("x\xed\xa0\x80y"), "x\uFFFD\uFFFD\uFFFDy");
  EXPECT_EQ(fix("\xed\xa0\xbd\xed\xb8\x80"), "\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD");
}

TEST(FixTextBadInput, MegabyteOfCombiningMarks) {
  const std::size_t n = std::size_t{1} << 19;  // 2 bytes each: 1 MiB
  std::string marks;
  for (std::size_t i = 0; i < n; ++i) marks += "\u0301";
  EXPECT_EQ(fix(marks), marks);  // nothing to compose with, nothing to reorder
  // a + alternating classes 230 / 220: canonical order puts all 220s first, then a + U+0323 -> ạ.
  std::string mixed = "a";
  for (std::size_t i = 0; i < n / 2; ++i) mixed += "\u0301\u0323";
  std::string expected = "\u1EA1";
  for (std::size_t i = 0; i + 1 < n / 2; ++i) expected += "\u0323";
  for (std::size_t i = 0; i < n / 2; ++i) expected += "\u0301";
  EXPECT_EQ(fix(mixed), expected);
}

TEST(FixTextBadInput, MegabyteOfAWithTilde) {
  std::string text;
  for (std::size_t i = 0; i < (std::size_t{1} << 19); ++i) text += "Ã";
  EXPECT_EQ(fix(text), text);  // "ÃÃ" is not mojibake by ftfy's heuristic
  std::string pairs;
  for (std::size_t i = 0; i < (std::size_t{1} << 18); ++i) pairs += "Ã©";
  std::string fixed;
  for (std::size_t i = 0; i < (std::size_t{1} << 18); ++i) fixed += "é";
  EXPECT_EQ(fix(pairs), fixed);
}

TEST(FixTextBadInput, DeepHtmlEscapingIsBounded) {
  // 200 000 levels of "&amp;": ftfy would need as many rounds. A segment's rounds are bounded
  // (16 * 2^20 / its length = 20 for these 800 001 code points) and each decodes one level.
  std::string text = "&";
  for (int i = 0; i < 200000; ++i) text += "amp;";
  std::string expected = "&";
  for (int i = 0; i < 200000 - 20; ++i) expected += "amp;";
  EXPECT_EQ(fix(text), expected);
}
