// What a newcomer meets first: the tools' shared command line (one spelling per option, --help,
// --version, --opt=value, '-' for stdin, exclusive options, exit statuses), paths that are not
// files, and messages that point the right way. Everything here runs on the bundled demo model
// and images, so it needs nothing outside the project.

#include "test_support.hpp"

#include <clip/clip.hpp>
#include <clip/version.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using clip_test::CommandResult;
using clip_test::quote;
using clip_test::run_command;

const std::string source_dir = CLIP_SOURCE_DIR;
const std::string demo_model = source_dir + "/examples/models/clip-demo.safetensors";
const std::string images_dir = source_dir + "/examples/images";

std::string image(const std::string& name) { return images_dir + "/" + name + ".png"; }

struct Tool {
  const char* name;
  std::string exe;
};

const std::vector<Tool>& tools() {
  static const std::vector<Tool> all = {{"clip-convert", CLIP_CONVERT_EXE}, {"clip-embed", CLIP_EMBED_EXE},
                                        {"clip-tokenize", CLIP_TOKENIZE_EXE}, {"clip-zero-shot", CLIP_ZERO_SHOT_EXE},
                                        {"clip-bench", CLIP_BENCH_EXE}, {"clip-geometry", CLIP_GEOMETRY_EXE}, {"clip-search", CLIP_SEARCH_EXE}};
  return all;
}

CommandResult run(const std::string& exe, const std::string& arguments) { return run_command(exe + " " + arguments); }

/// Each option of a CLI11 --help: its names -> its value type and description, without what
/// differs by tool by design ("REQUIRED", "Excludes: ...", a default value).
std::map<std::string, std::string> help_options(const std::string& help) {
  std::map<std::string, std::string> options;
  std::istringstream lines(help);
  std::string name, last;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  -", 0) == 0) {
      std::string header = line.substr(2), description;
      const auto gap = header.find("  ");
      if (gap != std::string::npos) {
        description = header.substr(header.find_first_not_of(' ', gap));
        header = header.substr(0, gap);
      }
      header = std::regex_replace(header, std::regex(R"( REQUIRED| Excludes:( --?[a-z-]+)+|=\S*)"), "");
      const auto space = header.find(' ');
      name = header.substr(0, space);
      options[name] = (space == std::string::npos ? "" : header.substr(space + 1)) + " | " + description;
      last = name;
    } else if (!last.empty() && line.rfind("      ", 0) == 0) {
      options[last] += line.substr(line.find_first_not_of(' '));  // a description on its own line
      last.clear();
    } else {
      last.clear();
    }
  }
  return options;
}

// --- The shared command line ---------------------------------------------------------------------

TEST(Cli, EveryToolHasHelpAndVersion) {
  for (const Tool& tool : tools()) {
    const CommandResult help = run(tool.exe, "--help");
    EXPECT_EQ(help.status, 0) << tool.name << help.err;
    EXPECT_NE(help.out.find("Exit status: 0 done, 1 some inputs failed, 2 usage error"), std::string::npos)
        << tool.name << " --help:\n" << help.out;
    const CommandResult version = run(tool.exe, "--version");
    EXPECT_EQ(version.status, 0) << tool.name;
    EXPECT_EQ(version.out, std::string(tool.name) + " (clip) " CLIP_VERSION_STRING "\n");
  }
}

TEST(Cli, SharedOptionsAreSpelledAndExplainedTheSameEverywhere) {
  const std::vector<std::string> shared = {"--model", "--image",    "--input", "--text",     "--texts-file",
                                           "--texts-jsonl", "--json", "--npy", "--threads", "--truncate",
                                           "--version", "-h,--help"};
  std::map<std::string, std::string> first_seen;  // option -> type and description
  std::map<std::string, std::string> seen_in;
  std::map<std::string, int> tools_with;
  for (const Tool& tool : tools()) {
    const CommandResult help = run(tool.exe, "--help");
    ASSERT_EQ(help.status, 0) << tool.name;
    const auto options = help_options(help.out);
    for (const std::string& name : shared) {
      const auto found = options.find(name);
      if (found == options.end()) continue;
      ++tools_with[name];
      const auto [it, inserted] = first_seen.emplace(name, found->second);
      if (inserted) seen_in[name] = tool.name;
      else EXPECT_EQ(found->second, it->second) << name << " differs between " << seen_in[name] << " and " << tool.name;
    }
  }
  // Each shared option is in every tool that does the job it names.
  EXPECT_EQ(tools_with["-h,--help"], 7);
  EXPECT_EQ(tools_with["--version"], 7);
  EXPECT_EQ(tools_with["--model"], 6);  // all but clip-convert
  EXPECT_EQ(tools_with["--image"], 4);  // clip-embed, clip-zero-shot, clip-geometry, clip-search
  EXPECT_EQ(tools_with["--input"], 4);
  EXPECT_EQ(tools_with["--text"], 3);  // clip-embed, clip-tokenize, clip-search
  EXPECT_EQ(tools_with["--texts-file"], 3);
  EXPECT_EQ(tools_with["--truncate"], 3);  // clip-embed, clip-tokenize, clip-geometry
  EXPECT_EQ(tools_with["--threads"], 5);  // clip-embed, clip-zero-shot, clip-bench, clip-geometry, clip-search
  EXPECT_EQ(tools_with["--json"], 6);  // all but clip-tokenize, whose output is JSON lines
  EXPECT_EQ(tools_with["--npy"], 1);      // clip-embed
}

TEST(Cli, HelpStatesDefaults) {
  const CommandResult help = run(CLIP_EMBED_EXE, "--help");
  EXPECT_TRUE(std::regex_search(help.out, std::regex(R"(--batch N=16 )"))) << help.out;
  const CommandResult zero_shot = run(CLIP_ZERO_SHOT_EXE, "--help");
  EXPECT_TRUE(std::regex_search(zero_shot.out, std::regex(R"(--top-k K=0)"))) << zero_shot.out;
}

TEST(Cli, UnknownOptionsAndMissingValuesAreUsageErrorsInEveryTool) {
  for (const Tool& tool : tools()) {
    // Required options given (clip-search also needs --collection), so the unknown one is what is reported.
    const CommandResult unknown = run(tool.exe, "--model " + quote(demo_model) + " --collection . --no-such-option");
    EXPECT_EQ(unknown.status, 2) << tool.name;
    EXPECT_NE(unknown.err.find(std::string(tool.name) + ": "), std::string::npos) << unknown.err;
    EXPECT_NE(unknown.err.find("--no-such-option"), std::string::npos) << tool.name << ": " << unknown.err;
    EXPECT_NE(unknown.err.find("--help"), std::string::npos) << unknown.err;
  }
  const CommandResult missing = run(CLIP_EMBED_EXE, "--text hello");
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("--model is required"), std::string::npos) << missing.err;
}

TEST(Cli, OptionEqualsValueWorks) {
  const CommandResult tokenized = run(CLIP_TOKENIZE_EXE, "--model=" + quote(demo_model) + " --text=" + quote("a red star"));
  ASSERT_EQ(tokenized.status, 0) << tokenized.err;
  const nlohmann::json ids = nlohmann::json::parse(tokenized.out);
  EXPECT_EQ(ids.size(), 16u);  // the demo model's context_length
}

TEST(Cli, ExclusiveOptionsAreRejected) {
  const CommandResult both = run(CLIP_EMBED_EXE, "--model " + quote(demo_model) + " --text a --json --npy /tmp/x");
  EXPECT_EQ(both.status, 2);
  EXPECT_NE(both.err.find("excludes"), std::string::npos) << both.err;
  const auto scratch = clip_test::scratch_dir("cli-exclusive");
  clip_test::write_bytes(scratch / "labels.txt", "red circle\n");
  const CommandResult labels = run(CLIP_ZERO_SHOT_EXE, "--model " + quote(demo_model) + " --image " +
                                                           quote(image("red_circle")) + " --labels cat --labels-file " +
                                                           quote((scratch / "labels.txt").string()));
  EXPECT_EQ(labels.status, 2);
  EXPECT_NE(labels.err.find("excludes"), std::string::npos) << labels.err;
  EXPECT_FALSE(fs::exists("/tmp/x.json"));
}

TEST(Cli, SeveralPathsAfterOneImageOption) {
  // What a shell makes of --image examples/images/*.png.
  const CommandResult result =
      run(CLIP_ZERO_SHOT_EXE, "--json --model " + quote(demo_model) + " --labels 'red circle,blue square' --image " +
                                  quote(image("red_circle")) + " " + quote(image("blue_square")));
  ASSERT_EQ(result.status, 0) << result.err;
  const nlohmann::json output = nlohmann::json::parse(result.out);
  ASSERT_EQ(output["images"].size(), 2u);
  EXPECT_EQ(output["images"][0]["predictions"][0]["label"], "red circle");
  EXPECT_EQ(output["images"][1]["predictions"][0]["label"], "blue square");
}

TEST(Cli, DashReadsStandardInput) {
  const CommandResult listed = run_command("printf '%s\\n' " + quote(image("yellow_star")) + " | " + CLIP_ZERO_SHOT_EXE +
                                           " --json --model " + quote(demo_model) +
                                           " --labels 'yellow star,red circle' --input -");
  ASSERT_EQ(listed.status, 0) << listed.err;
  EXPECT_EQ(nlohmann::json::parse(listed.out)["images"][0]["predictions"][0]["label"], "yellow star");
  const CommandResult texts = run_command(std::string("printf 'a red star\\na blue cross\\n' | ") + CLIP_EMBED_EXE +
                                          " --json --model " + quote(demo_model) + " --texts-file -");
  ASSERT_EQ(texts.status, 0) << texts.err;
  EXPECT_EQ(nlohmann::json::parse(texts.out)["texts"].size(), 2u);
}

TEST(Cli, TruncationIsTheSameChoiceInEveryTool) {
  std::string long_text;
  for (int i = 0; i < 30; ++i) long_text += "red ";  // more than the demo model's 16 positions
  // Refused by default, reported per text, exit 1; cut with --truncate.
  const CommandResult embed = run(CLIP_EMBED_EXE, "--json --model " + quote(demo_model) + " --text " + quote(long_text));
  EXPECT_EQ(embed.status, 1);
  EXPECT_TRUE(nlohmann::json::parse(embed.out)["texts"][0].contains("error"));
  const CommandResult tokenize = run(CLIP_TOKENIZE_EXE, "--model " + quote(demo_model) + " --text " + quote(long_text));
  EXPECT_EQ(tokenize.status, 1);
  EXPECT_TRUE(nlohmann::json::parse(tokenize.out).contains("error"));
  EXPECT_EQ(run(CLIP_EMBED_EXE, "--json --truncate --model " + quote(demo_model) + " --text " + quote(long_text)).status, 0);
  EXPECT_EQ(run(CLIP_TOKENIZE_EXE, "--truncate --model " + quote(demo_model) + " --text " + quote(long_text)).status, 0);
}

TEST(Cli, JsonAndSummaryAreDifferentOutputs) {
  const std::string args = "--model " + quote(demo_model) + " --image " + quote(image("red_circle")) + " --text " +
                           quote("a red circle");
  const CommandResult summary = run(CLIP_EMBED_EXE, args);
  ASSERT_EQ(summary.status, 0) << summary.err;
  EXPECT_NE(summary.out.find("logits_per_image"), std::string::npos) << summary.out;
  EXPECT_THROW((void)nlohmann::json::parse(summary.out), nlohmann::json::exception);
  const CommandResult json = run(CLIP_EMBED_EXE, "--json " + args);
  ASSERT_EQ(json.status, 0) << json.err;
  EXPECT_EQ(nlohmann::json::parse(json.out)["images"][0]["features"].size(), 64u);
}

// --- Paths that are not files --------------------------------------------------------------------

TEST(Paths, DirectoryWhereAFileBelongsIsAClipError) {
  auto expect_directory_error = [](auto&& call, const char* what) {
    try {
      call();
      ADD_FAILURE() << what << ": no error";
    } catch (const clip::Error& e) {
      EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << what << ": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": not a clip::Error: " << e.what();
    }
  };
  expect_directory_error([] { (void)clip::decode_image_file(images_dir); }, "decode_image_file");
  expect_directory_error([] { (void)clip::Model<float>(images_dir); }, "Model");
  expect_directory_error([] { (void)clip::TensorFile(images_dir); }, "TensorFile");
  expect_directory_error([] { (void)clip::Tokenizer::from_bpe_gz(images_dir); }, "Tokenizer::from_bpe_gz");
}

TEST(Paths, ToolsReportADirectoryImageAndGoOn) {
  const CommandResult embed = run(CLIP_EMBED_EXE, "--json --model " + quote(demo_model) + " --image " +
                                                      quote(images_dir) + " " + quote(image("red_circle")));
  EXPECT_EQ(embed.status, 1) << embed.err;
  const nlohmann::json output = nlohmann::json::parse(embed.out);
  EXPECT_NE(output["images"][0]["error"].get<std::string>().find("is a directory"), std::string::npos);
  EXPECT_TRUE(output["images"][1].contains("features"));

  const CommandResult zero_shot = run(CLIP_ZERO_SHOT_EXE, "--json --model " + quote(demo_model) +
                                                              " --labels 'red circle,blue square' --image " +
                                                              quote(images_dir) + " " + quote(image("red_circle")));
  EXPECT_EQ(zero_shot.status, 1);
  const nlohmann::json classified = nlohmann::json::parse(zero_shot.out);
  ASSERT_EQ(classified["images"].size(), 2u);  // the failed image is in the output, in its place
  EXPECT_TRUE(classified["images"][0].contains("error"));
  EXPECT_EQ(classified["images"][1]["predictions"][0]["label"], "red circle");
}

TEST(Paths, FolderInputSaysWhatItSkipped) {
  const auto scratch = clip_test::scratch_dir("cli-folder");
  fs::copy_file(image("red_circle"), scratch / "a.png");
  clip_test::write_bytes(scratch / ".hidden.png", "not looked at");
  clip_test::write_bytes(scratch / "notes.txt", "not an image");
  const CommandResult result = run(CLIP_ZERO_SHOT_EXE, "--json --model " + quote(demo_model) +
                                                           " --labels 'red circle,blue square' --input " +
                                                           quote(scratch.string()));
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(nlohmann::json::parse(result.out)["images"].size(), 1u);
  EXPECT_NE(result.err.find("skipped 1 hidden"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("1 without an image extension"), std::string::npos) << result.err;

  const auto empty = clip_test::scratch_dir("cli-empty-folder");
  const CommandResult none = run(CLIP_ZERO_SHOT_EXE, "--model " + quote(demo_model) + " --labels cat --input " +
                                                         quote(empty.string()));
  EXPECT_EQ(none.status, 2);
  EXPECT_NE(none.err.find("no image files in this folder"), std::string::npos) << none.err;
}

// --- Messages that point the right way ------------------------------------------------------------

TEST(Messages, NotASafetensorsFileSaysSo) {
  const CommandResult png = run(CLIP_EMBED_EXE, "--model " + quote(image("red_circle")) + " --text a");
  EXPECT_EQ(png.status, 2);
  EXPECT_NE(png.err.find("not a safetensors file"), std::string::npos) << png.err;
  EXPECT_EQ(png.err.find("header length"), std::string::npos) << png.err;
}

TEST(Messages, TextErrorsNameTheTextOnce) {
  std::string long_text;
  for (int i = 0; i < 30; ++i) long_text += "red ";
  const CommandResult embed = run(CLIP_EMBED_EXE, "--model " + quote(demo_model) + " --text ok --text " + quote(long_text));
  EXPECT_EQ(embed.status, 1);
  EXPECT_NE(embed.err.find("clip-embed: text 2: tokenizer: \"red red"), std::string::npos) << embed.err;
  EXPECT_EQ(embed.err.find("text 0"), std::string::npos) << embed.err;
}

TEST(Messages, ConvertSaysWhatIsMissing) {
  const CommandResult no_output = run(CLIP_CONVERT_EXE, "--random ViT-B-32");
  EXPECT_EQ(no_output.status, 2);
  EXPECT_NE(no_output.err.find("--output (-o) is required"), std::string::npos) << no_output.err;
  const CommandResult nothing = run(CLIP_CONVERT_EXE, "");
  EXPECT_EQ(nothing.status, 2);
  EXPECT_NE(nothing.err.find("nothing to do"), std::string::npos) << nothing.err;
}

TEST(Messages, InspectOfAnUnusableFileExitsOne) {
  const auto scratch = clip_test::scratch_dir("cli-inspect");
  const std::string file = (scratch / "one.safetensors").string();
  const std::vector<float> values = {1.0f};
  clip::TensorWriter writer;
  writer.add("vision.proj", clip::DType::F32, {1}, values.data());
  writer.write(file);
  const CommandResult inspected = run(CLIP_CONVERT_EXE, "--inspect " + quote(file));
  EXPECT_EQ(inspected.status, 1);
  EXPECT_NE(inspected.out.find("vision.proj"), std::string::npos) << inspected.out;  // the table is still printed
  EXPECT_NE(inspected.out.find("not a usable clip model file"), std::string::npos) << inspected.out;
  EXPECT_EQ(run(CLIP_CONVERT_EXE, "--inspect " + quote(demo_model)).status, 0);
}

// --- Choices that used to be silent --------------------------------------------------------------

TEST(Choices, LabelFilesHaveCommentsAndRejectDuplicates) {
  const auto scratch = clip_test::scratch_dir("cli-labels");
  clip_test::write_bytes(scratch / "labels.txt", "# shapes to look for\nred circle\n\n  # another comment\nblue square\n");
  const CommandResult result = run(CLIP_ZERO_SHOT_EXE, "--json --model " + quote(demo_model) + " --image " +
                                                           quote(image("red_circle")) + " --labels-file " +
                                                           quote((scratch / "labels.txt").string()));
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(nlohmann::json::parse(result.out)["images"][0]["predictions"].size(), 2u);

  const CommandResult duplicate = run(CLIP_ZERO_SHOT_EXE, "--model " + quote(demo_model) + " --image " +
                                                              quote(image("red_circle")) +
                                                              " --labels 'red circle,blue square,red circle'");
  EXPECT_EQ(duplicate.status, 2);
  EXPECT_NE(duplicate.err.find("label 'red circle' is given twice (labels 1 and 3)"), std::string::npos)
      << duplicate.err;
}

// --- The API as README shows it ------------------------------------------------------------------

TEST(Api, ModelTokenizerGivesTheModelsContextLength) {
  const clip::Model<float> model(demo_model);
  const clip::TokenMatrix tokens = model.tokenizer().tokenize({"a photo of a cat", "a photo of a dog"});
  EXPECT_EQ(tokens.cols(), model.config().text.context_length);
  EXPECT_EQ(model.tokenizer().context_length(), 16);
  EXPECT_EQ(model.encode_texts(tokens).rows(), 2);
  // A tokenizer on its own keeps OpenAI's 77.
  const clip::Tokenizer plain = clip::Tokenizer::from_merges(model.tokenizer().merges_text());
  EXPECT_EQ(plain.tokenize({"a"}).cols(), 77);
}

}  // namespace
