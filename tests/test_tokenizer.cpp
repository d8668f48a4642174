// Tokenizer tests: exact parity with OpenAI's simple_tokenizer (reference data through
// CLIP_REFERENCE_DIR, made with real ftfy) and unit cases whose expected ids were computed with
// OpenAI's Python SimpleTokenizer logic without ftfy (so they run with fix_text off), never with
// this code.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "clip/text/tokenizer.hpp"

namespace {

std::string reference_dir() {
  const char* dir = std::getenv("CLIP_REFERENCE_DIR");
  return dir ? dir : "";
}

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

// OpenAI's vocabulary as the project ships it (tools/vocab, the same file as the reference
// data's), so these tests run on a fresh clone; the reference corpora skip without ../shared.
std::string bpe_gz_path() { return std::string(CLIP_SOURCE_DIR) + "/tools/vocab/bpe_simple_vocab_16e6.txt.gz"; }

const clip::Tokenizer* openai_tokenizer() {
  static const clip::Tokenizer tokenizer = clip::Tokenizer::from_bpe_gz(bpe_gz_path());
  return &tokenizer;
}

#define REQUIRE_OPENAI_TOKENIZER() [[maybe_unused]] const clip::Tokenizer* tokenizer = openai_tokenizer()

// The unit cases' ids were made without ftfy.
const clip::TokenizerOptions kWithoutFixText{false};

struct Case {
  const char* name;
  const char* text;
  std::vector<std::int32_t> ids;
};

// Expected ids from OpenAI's SimpleTokenizer.encode.
const std::vector<Case>& unit_cases() {
  static const std::vector<Case> cases = {
    {"whitespace_and_strip", u8"  Hello\t\n  World  ", {3306, 1002}},
    {"whitespace_unicode_runs", u8"a \U00003000\U00002028\U000000A0 b\034\U00000085c", {320, 321, 322}},
    {"latin_accents", u8"\U000000C0\U000000C9\U000000CE\U000000D5\U000000DC \U000000C7\U000000E0", {36149, 3459, 48704, 127, 113, 47177, 10067, 21259}},
    {"dotted_capital_i", u8"\U00000130stanbul", {328, 16384, 11231}},
    {"final_sigma", u8"\U000003A3\U00000391\U000003A3 \U0000039F\U00000394\U0000039F\U000003A3. \U000003A3", {139, 225, 138, 109, 139, 480, 138, 123, 138, 112, 138, 123, 139, 480, 269, 139, 481}},
    {"special_tokens", u8"<|startoftext|>x<|endoftext|>", {49406, 343, 49407}},
    {"contractions_lower", u8"it's don't we're they've i'm we'll he'd", {585, 568, 847, 713, 649, 982, 889, 1200, 328, 880, 649, 1342, 797, 1896}},
    {"contractions_upper", u8"IT'S DON'T WE'RE THEY'VE I'M WE'LL HE'D", {585, 568, 847, 713, 649, 982, 889, 1200, 328, 880, 649, 1342, 797, 1896}},
    {"long_s_contraction", u8"it'\U0000017F", {585, 6, 129, 379}},
    {"digits_split", u8"in 2024, 3.14", {530, 273, 271, 273, 275, 267, 274, 269, 272, 275}},
    {"punctuation_runs", u8"wow!!!?... (yes)", {2781, 11194, 22641, 263, 1958, 264}},
    {"html_entities", u8"&amp;amp; &lt;b&gt; &#39;x&#39; &eacute;t&eacute; &notit; &ampx; &#x1F600; &#150; &#0;", {261, 283, 321, 285, 262, 343, 262, 3459, 39694, 126, 361, 585, 282, 261, 343, 282, 7334, 1224, 39802}},
    {"emoji_and_cjk", u8"\U0001F600\U0001F44D\U0001F3FD \U000065E5\U0000672C\U00008A9E \U00004E2D\U00006587 \U0000D55C\U0000AD6D\U0000C5B4", {12832, 43722, 39121, 44353, 34002, 508, 19759, 255, 29032, 485, 15197, 250, 31871, 255, 31625, 368}},
    {"combining_ypogegrammeni", u8"a\U00000345b", {320, 321}},
  };
  return cases;
}

}  // namespace

TEST(TokenizerReference, PublicCorpusIdsAndDecode) {
  REQUIRE_OPENAI_TOKENIZER();
  const std::string path = reference_dir() + "/tokenizer/public.jsonl";
  std::ifstream in(path);
  if (!in) GTEST_SKIP() << "missing " << path;
  std::string line;
  int lines = 0, ids_match = 0, decode_match = 0;
  while (std::getline(in, line)) {
    const auto row = nlohmann::json::parse(line);
    const std::string text = row.at("text");
    const auto expected = row.at("ids").get<std::vector<std::int32_t>>();
    const std::string decoded = row.at("decoded");
    ++lines;
    const auto ids = tokenizer->encode(text);
    if (ids == expected) ++ids_match;
    else ADD_FAILURE() << "ids differ for \"" << text << "\"";
    if (tokenizer->decode(expected) == decoded) ++decode_match;
    else ADD_FAILURE() << "decode differs for \"" << text << "\"";
  }
  std::cout << "public.jsonl: ids match " << ids_match << "/" << lines << ", decode match " << decode_match << "/"
            << lines << "\n";
  EXPECT_GT(lines, 0);
  EXPECT_EQ(ids_match, lines);
  EXPECT_EQ(decode_match, lines);
}

TEST(TokenizerReference, GoldenRowsWithTruncation) {
  REQUIRE_OPENAI_TOKENIZER();
  const std::string path = reference_dir() + "/tiny-a/golden.json";
  std::ifstream in(path);
  if (!in) GTEST_SKIP() << "missing " << path;
  const auto golden = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& entry : golden.at("texts")) {
    const std::string text = entry.at("text");
    const auto expected = entry.at("tokens").get<std::vector<std::int32_t>>();
    const clip::TokenMatrix row = tokenizer->tokenize({text}, 77, /*truncate=*/true);
    ASSERT_EQ(row.cols(), static_cast<Eigen::Index>(expected.size()));
    for (std::size_t k = 0; k < expected.size(); ++k)
      ASSERT_EQ(row(0, static_cast<Eigen::Index>(k)), expected[k]) << "\"" << text << "\" at " << k;
    ++checked;
  }
  std::cout << "golden.json: " << checked << " texts match\n";
  EXPECT_GT(checked, 0);
}

TEST(TokenizerReference, HuggingFaceFilesGiveTheSameTokenizer) {
  REQUIRE_OPENAI_TOKENIZER();
  const std::string hf = reference_dir() + "/tiny-a/hf";
  if (!file_exists(hf + "/vocab.json") || !file_exists(hf + "/merges.txt")) GTEST_SKIP() << "missing " << hf;
  const clip::Tokenizer from_hf = clip::Tokenizer::from_hf(hf + "/vocab.json", hf + "/merges.txt");
  EXPECT_EQ(from_hf.vocab_size(), tokenizer->vocab_size());
  EXPECT_EQ(from_hf.sot_id(), 49406);
  EXPECT_EQ(from_hf.eot_id(), 49407);
  for (const Case& c : unit_cases()) EXPECT_EQ(from_hf.encode(c.text, kWithoutFixText), c.ids) << c.name;
  // The stored merges text reloads to the same tokenizer (what the model file keeps).
  const clip::Tokenizer reloaded = clip::Tokenizer::from_merges(from_hf.merges_text());
  EXPECT_EQ(reloaded.merges_text(), from_hf.merges_text());
  for (const Case& c : unit_cases()) EXPECT_EQ(reloaded.encode(c.text, kWithoutFixText), c.ids) << c.name;
}

TEST(TokenizerReference, HuggingFaceVocabularyMismatchIsAnError) {
  REQUIRE_OPENAI_TOKENIZER();
  const std::string hf = reference_dir() + "/tiny-a/hf";
  if (!file_exists(hf + "/merges.txt")) GTEST_SKIP() << "missing " << hf;
  const std::string vocab_path = ::testing::TempDir() + "clip_bad_vocab.json";
  {
    std::ofstream out(vocab_path);
    out << R"({"a": 0, "b": 1})";
  }
  EXPECT_THROW(clip::Tokenizer::from_hf(vocab_path, hf + "/merges.txt"), clip::Error);
}

TEST(Tokenizer, UnitCasesMatchOpenAi) {
  REQUIRE_OPENAI_TOKENIZER();
  EXPECT_EQ(tokenizer->vocab_size(), 49408u);
  EXPECT_EQ(tokenizer->sot_id(), 49406);
  EXPECT_EQ(tokenizer->eot_id(), 49407);
  for (const Case& c : unit_cases()) EXPECT_EQ(tokenizer->encode(c.text, kWithoutFixText), c.ids) << c.name;
}

// ids from the issue (OpenAI's tokenizer with and without ftfy): the switch picks the pipeline.
TEST(Tokenizer, FixTextIsOnByDefaultAndCanBeSwitchedOff) {
  REQUIRE_OPENAI_TOKENIZER();
  const std::string text = "don\u2019t stop";
  EXPECT_EQ(tokenizer->encode(text), (std::vector<std::int32_t>{847, 713, 1691}));
  EXPECT_EQ(tokenizer->encode(text, kWithoutFixText), (std::vector<std::int32_t>{847, 728, 503, 339, 1691}));
  const clip::TokenMatrix rows = tokenizer->tokenize({text}, 77, false, kWithoutFixText);
  EXPECT_EQ(rows(0, 2), 728);
  EXPECT_EQ(tokenizer->tokenize({text})(0, 2), 713);
}

// Reference ids of ftfy's cases and the generated lines, made with real ftfy 6.3.1.
TEST(TokenizerReference, FtfyCorporaIdsWithFixText) {
  REQUIRE_OPENAI_TOKENIZER();
  int total = 0;
  for (const char* name : {"cases.jsonl", "public.jsonl"}) {
    const std::string path = reference_dir() + "/ftfy/" + name;
    std::ifstream in(path);
    if (!in) GTEST_SKIP() << "missing " << path;
    int lines = 0, ids_match = 0;
    for (std::string line; std::getline(in, line);) {
      const auto row = nlohmann::json::parse(line);
      const std::string text = row.contains("original") ? row.at("original") : row.at("text");
      ++lines;
      if (tokenizer->encode(text) == row.at("ids").get<std::vector<std::int32_t>>()) ++ids_match;
      else ADD_FAILURE() << name << ": ids differ for " << nlohmann::json(text).dump();
    }
    std::cout << "ftfy/" << name << ": ids match " << ids_match << "/" << lines << "\n";
    EXPECT_GT(lines, 0);
    total += lines;
  }
  EXPECT_GT(total, 0);
}

TEST(Tokenizer, EmptyAndBlankTexts) {
  REQUIRE_OPENAI_TOKENIZER();
  EXPECT_TRUE(tokenizer->encode("").empty());
  EXPECT_TRUE(tokenizer->encode(" \t\n ").empty());
  const clip::TokenMatrix rows = tokenizer->tokenize({"", "a"}, 5);
  const std::vector<std::int32_t> expected = {49406, 49407, 0, 0, 0, 49406, 320, 49407, 0, 0};
  ASSERT_EQ(rows.rows(), 2);
  for (int k = 0; k < 10; ++k) EXPECT_EQ(rows(k / 5, k % 5), expected[static_cast<std::size_t>(k)]);
}

TEST(Tokenizer, TruncationKeepsFirstTokensAndEndsWithEot) {
  REQUIRE_OPENAI_TOKENIZER();
  // "in 2024, 3.14" is 10 ids; with SOT and EOT 12 > 6.
  const clip::TokenMatrix row = tokenizer->tokenize({"in 2024, 3.14"}, 6, true);
  const std::vector<std::int32_t> expected = {49406, 530, 273, 271, 273, 49407};
  for (int k = 0; k < 6; ++k) EXPECT_EQ(row(0, k), expected[static_cast<std::size_t>(k)]);
}

TEST(Tokenizer, TooLongTextIsAnErrorNamingTextAndCount) {
  REQUIRE_OPENAI_TOKENIZER();
  try {
    tokenizer->tokenize({"short", "in 2024, 3.14"}, 6);
    FAIL() << "expected clip::Error";
  } catch (const clip::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("in 2024, 3.14"), std::string::npos) << message;
    EXPECT_NE(message.find("12 tokens"), std::string::npos) << message;
  }
  EXPECT_THROW(tokenizer->tokenize({"a"}, 0), clip::Error);
}

TEST(Tokenizer, InvalidUtf8ReplacedLikePythonOrRejected) {
  REQUIRE_OPENAI_TOKENIZER();
  const std::string raw = "ab\xff\xfe" "cd\xe2\x82 x\xed\xa0\x80y";
  // ids of raw.decode('utf-8', errors='replace') in OpenAI's tokenizer.
  const std::vector<std::int32_t> expected = {3937, 47356, 39802, 4480, 39802, 343, 47356, 47356, 39802, 344};
  EXPECT_EQ(tokenizer->encode(raw), expected);
  EXPECT_EQ(tokenizer->encode(raw, clip::InvalidUtf8::replace), expected);
  try {
    tokenizer->encode(raw, clip::InvalidUtf8::error);
    FAIL() << "expected clip::Error";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tokenizer->tokenize({raw}, 77, false, clip::InvalidUtf8::error), clip::Error);
}

TEST(Tokenizer, DecodeReplacesIllFormedBytesAndEndOfWord) {
  REQUIRE_OPENAI_TOKENIZER();
  // Byte symbols 0xE2 0x82, "a</w>", 0xFF, 0xED 0xA0 0x80: Python gives one U+FFFD per
  // maximal ill-formed subpart.
  const std::vector<std::int32_t> ids = {158, 224, 320, 187, 169, 254, 222};
  EXPECT_EQ(tokenizer->decode(ids), u8"\uFFFDa \uFFFD\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(tokenizer->decode({3306, 1002}), "hello world ");
  EXPECT_EQ(tokenizer->decode({}), "");
  EXPECT_THROW(tokenizer->decode({49408}), clip::Error);
  EXPECT_THROW(tokenizer->decode({-1}), clip::Error);
}

TEST(Tokenizer, LongWordsAreExactAndFast) {
  REQUIRE_OPENAI_TOKENIZER();
  // 'a' * 300 is 38 ids in OpenAI's tokenizer.
  EXPECT_EQ(tokenizer->encode(std::string(300, 'a')).size(), 38u);
  // A one-megabyte single word must finish (heap BPE is O(n log n)); decode restores it.
  std::string word;
  for (int i = 0; word.size() < (1u << 20); ++i) word += static_cast<char>('a' + (i * 7 + i / 13) % 26);
  const auto ids = tokenizer->encode(word);
  EXPECT_EQ(tokenizer->decode(ids), word + " ");
}

TEST(Tokenizer, ConcurrentEncodeGivesTheSameIds) {
  REQUIRE_OPENAI_TOKENIZER();
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round)
        for (const Case& c : unit_cases())
          if (tokenizer->encode(c.text, kWithoutFixText) != c.ids) ++failures[static_cast<std::size_t>(t)];
    });
  for (auto& thread : threads) thread.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

// A hand-made vocabulary: no reference data needed.
TEST(TokenizerCustom, SmallMergesFileBuildsOpenAiVocabulary) {
  const clip::Tokenizer tokenizer = clip::Tokenizer::from_merges("#version: test\nl o\nlo w</w>\nh e\n");
  EXPECT_EQ(tokenizer.vocab_size(), 512u + 3u + 2u);
  EXPECT_EQ(tokenizer.sot_id(), 515);
  EXPECT_EQ(tokenizer.eot_id(), 516);
  // "low" -> l o w</w> -> (l o) -> lo w</w> -> (lo w</w>) = id 513.
  EXPECT_EQ(tokenizer.encode("Low"), std::vector<std::int32_t>{513});
  EXPECT_EQ(tokenizer.decode({513}), "low ");
  // "he": h e</w> has no merge ("h e" ends in e, not e</w>): byte ids h=71, e</w>=256+68.
  EXPECT_EQ(tokenizer.encode("he"), (std::vector<std::int32_t>{71, 324}));
  EXPECT_EQ(tokenizer.merges_text(), "#version: test\nl o\nlo w</w>\nh e\n");
  const clip::Tokenizer limited = clip::Tokenizer::from_merges(tokenizer.merges_text(), 1);
  EXPECT_EQ(limited.vocab_size(), 512u + 1u + 2u);
  EXPECT_EQ(limited.merges_text(), "#version: test\nl o\n");
  EXPECT_EQ(limited.encode("low"), (std::vector<std::int32_t>{512, 342}));
}

TEST(TokenizerCustom, RepeatedPairMergesLeftToRight) {
  // OpenAI's loop merges the non-overlapping occurrences left to right: "aaa" -> aa, a</w>.
  const clip::Tokenizer tokenizer = clip::Tokenizer::from_merges("#h\na a\n");
  EXPECT_EQ(tokenizer.encode("aaa"), (std::vector<std::int32_t>{512, 256 + 64}));
}

TEST(TokenizerCustom, MalformedMergesAreErrors) {
  EXPECT_THROW(clip::Tokenizer::from_merges(""), clip::Error);
  EXPECT_THROW(clip::Tokenizer::from_merges("#h\na b c\n"), clip::Error);
  EXPECT_THROW(clip::Tokenizer::from_merges("#h\n\na b\n"), clip::Error);
  EXPECT_THROW(clip::Tokenizer::from_merges("#h\na \x01\n"), clip::Error);
  EXPECT_THROW(clip::Tokenizer::from_merges("#h\na \xff\n"), clip::Error);
  EXPECT_THROW(clip::Tokenizer::from_bpe_gz("/nonexistent/bpe.txt.gz"), clip::Error);
}

TEST(TokenizerCustom, CorruptGzipIsAnError) {
  const std::string path = ::testing::TempDir() + "clip_corrupt_bpe.txt.gz";
  {
    std::ofstream out(path, std::ios::binary);
    out << "\x1f\x8b\x08\x00garbage";
  }
  EXPECT_THROW(clip::Tokenizer::from_bpe_gz(path), clip::Error);
}
