// clip-tokenize: CLIP token ids for lines of text on stdin, one JSON array per line.

#include "cli.hpp"

#include <clip/convert/convert.hpp>
#include <clip/formats/model_file.hpp>
#include <clip/text/tokenizer.hpp>

#include <nlohmann/json.hpp>

#include <iostream>
#include <optional>
#include <string>

namespace {

const char* const usage = R"(usage: clip-tokenize (--model M | --vocab FILE) [--raw] [--context-length N] [--truncate] [--jsonl]
                     [--strict-utf8]
Reads UTF-8 lines on stdin and prints one JSON array of token ids per line: the context_length row
(SOT, ids, EOT, zero padding), or with --raw the BPE ids alone. With --jsonl each line is a JSON
string. A line that fails (too long without --truncate, invalid UTF-8 with --strict-utf8) prints
{"error": "..."} and the exit status is 1.
)";

int run(int argc, char** argv) {
  std::string model_path, vocab_path;
  bool raw = false, truncate = false, jsonl = false, strict = false;
  std::optional<int> context_length;
  clip::cli::Arguments args(argc, argv);
  while (args.next()) {
    const std::string arg = args.current();
    auto value = [&] { return args.value(); };
    if (arg == "--model") model_path = value();
    else if (arg == "--vocab") vocab_path = value();
    else if (arg == "--raw") raw = true;
    else if (arg == "--truncate") truncate = true;
    else if (arg == "--jsonl") jsonl = true;
    else if (arg == "--strict-utf8") strict = true;
    else if (arg == "--context-length") context_length = static_cast<int>(clip::cli::parse_integer(arg, value(), 2));
    else if (arg == "-h" || arg == "--help") {
      std::cout << usage;
      return 0;
    } else throw clip::Error("unknown argument '" + arg + "'\n" + usage);
  }
  if (model_path.empty() == vocab_path.empty()) throw clip::Error(std::string("give one of --model or --vocab\n") + usage);

  int default_context = 77;
  std::optional<clip::Tokenizer> tokenizer_storage;
  if (!model_path.empty()) {
    const clip::ModelFile model(model_path);
    tokenizer_storage.emplace(clip::Tokenizer::from_merges(model.merges_text()));
    default_context = model.config().text.context_length;
  } else {
    tokenizer_storage.emplace(clip::detail::load_tokenizer(vocab_path));
  }
  const clip::Tokenizer& tokenizer = *tokenizer_storage;
  const clip::InvalidUtf8 policy = strict ? clip::InvalidUtf8::error : clip::InvalidUtf8::replace;
  const int context = context_length.value_or(default_context);

  int failures = 0;
  std::size_t line_number = 0;
  for (std::string line; std::getline(std::cin, line);) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    nlohmann::json output;
    try {
      std::string text = line;
      if (jsonl) {
        try {
          text = nlohmann::json::parse(line).get<std::string>();
        } catch (const nlohmann::json::exception& e) {
          throw clip::Error("line " + std::to_string(line_number) + ": not a JSON string (" + e.what() + ")");
        }
      }
      if (raw) {
        output = tokenizer.encode(text, policy);
      } else {
        const clip::TokenMatrix row = tokenizer.tokenize({text}, context, truncate, policy);
        output = std::vector<std::int32_t>(row.data(), row.data() + row.cols());
      }
    } catch (const clip::Error& e) {
      output = {{"error", e.what()}};
      ++failures;
    }
    std::cout << output.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clip::cli::run_main("clip-tokenize", [&] { return run(argc, argv); });
}
