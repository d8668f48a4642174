// The tools' fix_text switches: clip-tokenize --fix-text-only (the cleaned text instead of ids),
// --no-fix-text in clip-tokenize and clip-embed. Runs on the bundled demo model; expected texts
// are ftfy 6.3.1's (checked with ftfy itself). Eigen-free.
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

namespace {

using clip_test::CommandResult;
using clip_test::quote;
using clip_test::run_command;

const std::string demo_model = std::string(CLIP_SOURCE_DIR) + "/examples/models/clip-demo.safetensors";

CommandResult tokenize(const std::string& arguments) { return run_command(std::string(CLIP_TOKENIZE_EXE) + " " + arguments); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST(FixTextTools, TokenizeFixTextOnlyPrintsTheCleanedText) {
  const CommandResult plain = tokenize("--fix-text-only --text " + quote("cafÃ© “ok”") + " " + quote("ﬁsh"));
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_EQ(plain.out, "café \"ok\"\nfish\n");

  // --jsonl: JSON strings in, JSON strings out (one a line), so any text survives the trip.
  const auto scratch = clip_test::scratch_dir("fix-text-only");
  clip_test::write_bytes(scratch / "in.jsonl", "\"a\\r\\nb\"\n\"&amp; \\u00c3\\u00a9\"\n\"<b>&amp;</b>\"\n");
  const CommandResult json = run_command(std::string(CLIP_TOKENIZE_EXE) + " --fix-text-only --jsonl < " +
                                         quote((scratch / "in.jsonl").string()));
  ASSERT_EQ(json.status, 0) << json.err;
  const std::vector<std::string> lines = lines_of(json.out);
  ASSERT_EQ(lines.size(), 3u) << json.out;
  EXPECT_EQ(nlohmann::json::parse(lines[0]).get<std::string>(), "a\nb");
  EXPECT_EQ(nlohmann::json::parse(lines[1]).get<std::string>(), "& é");
  EXPECT_EQ(nlohmann::json::parse(lines[2]).get<std::string>(), "<b>&amp;</b>");

  const CommandResult bad = tokenize("--fix-text-only --strict-utf8 --text " + quote("ok\xff"));
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("\"error\""), std::string::npos) << bad.out;

  const CommandResult both = tokenize("--fix-text-only --no-fix-text --text x");
  EXPECT_EQ(both.status, 2);
}

TEST(FixTextTools, NoFixTextTokenizesTheTextAsGiven) {
  // fix_text uncurls the apostrophe: by default "don’t" tokenizes as "don't".
  const CommandResult curly = tokenize("--raw --model " + quote(demo_model) + " --text " + quote("don’t"));
  const CommandResult straight = tokenize("--raw --model " + quote(demo_model) + " --text " + quote("don't"));
  const CommandResult unfixed =
      tokenize("--raw --no-fix-text --model " + quote(demo_model) + " --text " + quote("don’t"));
  ASSERT_EQ(curly.status, 0) << curly.err;
  ASSERT_EQ(unfixed.status, 0) << unfixed.err;
  EXPECT_EQ(curly.out, straight.out);
  EXPECT_NE(curly.out, unfixed.out);

  auto embed_tokens = [](const std::string& flags) {
    const CommandResult result = run_command(std::string(CLIP_EMBED_EXE) + " --json --model " + quote(demo_model) +
                                             " --text " + quote("don’t") + " " + flags);
    EXPECT_EQ(result.status, 0) << result.err;
    return nlohmann::json::parse(result.out).at("texts").at(0).at("tokens");
  };
  const nlohmann::json with = embed_tokens(""), without = embed_tokens("--no-fix-text");
  EXPECT_NE(with, without);
  EXPECT_EQ(with, nlohmann::json::parse(tokenize("--model " + quote(demo_model) + " --text " + quote("don't")).out));
}
