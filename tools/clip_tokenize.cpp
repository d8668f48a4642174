// clip-tokenize: CLIP token ids for lines of text on stdin, one JSON array per line.

#include "common/options.hpp"

#include <clip/convert/convert.hpp>
#include <clip/formats/model_file.hpp>
#include <clip/text/tokenizer.hpp>

#include <nlohmann/json.hpp>

#include <iostream>
#include <optional>
#include <string>

namespace {

int run(int argc, char** argv) {
  clip::cli::Command command(
      "clip-tokenize",
      "Prints one JSON array of token ids per text: the context_length row (SOT, ids, EOT, zero padding), or with "
      "--raw the BPE ids alone. Texts come from --text / --texts-file / --texts-jsonl, or else one a line on "
      "standard input (with --jsonl, each line a JSON string). A text that fails (too long without --truncate, "
      "invalid UTF-8 with --strict-utf8) prints {\"error\": \"...\"} and the exit status is 1.");
  CLI::App& app = command.app();
  std::string model_path, vocab_path;
  bool raw = false, truncate = false, jsonl = false, strict = false;
  int context_length = 0;
  clip::cli::TextInputs texts;
  CLI::Option* model_option = command.add_model(model_path, /*required=*/false);
  CLI::Option* vocab_option =
      app.add_option("--vocab", vocab_path, "a vocabulary instead of a model: bpe_simple_vocab_16e6.txt.gz, a merges "
                                            "text, or vocab.json with merges.txt beside it")
          ->type_name("FILE");
  model_option->excludes(vocab_option);
  command.add_texts(texts);
  app.add_flag("--jsonl", jsonl, "standard input has one JSON string a line");
  app.add_flag("--raw", raw, "print the BPE ids alone, without SOT, EOT and padding");
  app.add_option("--context-length", context_length, "row length (0: the model's, 77 with --vocab)")
      ->check(CLI::NonNegativeNumber.description(""))
      ->type_name("N");
  command.add_truncate(truncate);
  app.add_flag("--strict-utf8", strict, "report invalid UTF-8 as an error instead of replacing it with U+FFFD");
  if (const int status = command.parse(argc, argv); status >= 0) return status;
  if (model_path.empty() == vocab_path.empty()) throw clip::Error("give --model or --vocab");
  if (context_length == 1) throw clip::Error("--context-length must be at least 2 (SOT and EOT)");

  std::optional<clip::Tokenizer> tokenizer_storage;
  if (!model_path.empty()) {
    const clip::ModelFile model(model_path);
    tokenizer_storage.emplace(clip::Tokenizer::from_merges(model.merges_text()));
    tokenizer_storage->set_context_length(model.config().text.context_length);
  } else {
    tokenizer_storage.emplace(clip::detail::load_tokenizer(vocab_path));
  }
  const clip::Tokenizer& tokenizer = *tokenizer_storage;
  const clip::InvalidUtf8 policy = strict ? clip::InvalidUtf8::error : clip::InvalidUtf8::replace;

  // Texts from the options, else lines of standard input, read as they come.
  const std::vector<std::string> given = clip::cli::resolve_texts(texts);
  std::size_t next_given = 0;
  auto next_text = [&](std::string& text) -> bool {
    if (!texts.empty()) {
      if (next_given == given.size()) return false;
      text = given[next_given++];
      return true;
    }
    if (!std::getline(std::cin, text)) return false;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    return true;
  };

  int failures = 0;
  std::size_t number = 0;
  for (std::string line; next_text(line);) {
    ++number;
    nlohmann::json output;
    try {
      std::string text = line;
      if (jsonl && texts.empty()) {
        try {
          text = nlohmann::json::parse(line).get<std::string>();
        } catch (const nlohmann::json::exception& e) {
          throw clip::Error("line " + std::to_string(number) + ": not a JSON string (" + e.what() + ")");
        }
      }
      if (raw) {
        output = tokenizer.encode(text, policy);
      } else {
        const clip::TokenMatrix row = tokenizer.tokenize(
            {text}, context_length > 0 ? std::optional<int>(context_length) : std::nullopt, truncate, policy);
        output = std::vector<std::int32_t>(row.data(), row.data() + row.cols());
      }
    } catch (const clip::Error& e) {
      output = {{"error", e.what()}};
      ++failures;
    }
    std::cout << output.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  return failures ? clip::cli::kExitSomeInputsFailed : clip::cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return clip::cli::run_main("clip-tokenize", [&] { return run(argc, argv); });
}
