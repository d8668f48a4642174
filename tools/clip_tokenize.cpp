// clip-tokenize: CLIP token ids for lines of text on stdin, one JSON array per line (or, with
// --fix-text-only, the text after clip::fix_text).

#include "common/options.hpp"

#include <clip/convert/convert.hpp>
#include <clip/formats/model_file.hpp>
#include <clip/text/fix_text.hpp>
#include <clip/text/tokenizer.hpp>

#include <nlohmann/json.hpp>

#include <iostream>
#include <optional>
#include <string>

namespace {

// Texts from the options, else lines of standard input, read as they come (with --jsonl each
// stdin line is a JSON string).
class TextSource {
 public:
  TextSource(const clip::cli::TextInputs& inputs, bool jsonl)
      : from_options_(!inputs.empty()), jsonl_(jsonl), given_(clip::cli::resolve_texts(inputs)) {}

  bool next(std::string& line) {
    ++number_;
    if (from_options_) {
      if (next_given_ == given_.size()) return false;
      line = given_[next_given_++];
      return true;
    }
    if (!std::getline(std::cin, line)) return false;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  }

  /// The text of a line: the line itself, or the JSON string it holds.
  std::string text(const std::string& line) const {
    if (!jsonl_ || from_options_) return line;
    try {
      return nlohmann::json::parse(line).get<std::string>();
    } catch (const nlohmann::json::exception& e) {
      throw clip::Error("line " + std::to_string(number_) + ": not a JSON string (" + e.what() + ")");
    }
  }

 private:
  bool from_options_;
  bool jsonl_;
  std::vector<std::string> given_;
  std::size_t next_given_ = 0;
  std::size_t number_ = 0;
};

// --fix-text-only: each text after clip::fix_text, as it is or (--jsonl) as a JSON string.
int print_fixed_texts(const clip::cli::TextInputs& inputs, bool jsonl, bool strict) {
  const clip::InvalidUtf8 policy = strict ? clip::InvalidUtf8::error : clip::InvalidUtf8::replace;
  TextSource source(inputs, jsonl);
  int failures = 0;
  for (std::string line; source.next(line);) {
    try {
      const std::string fixed = clip::fix_text(source.text(line), policy);
      if (jsonl) std::cout << nlohmann::json(fixed).dump() << "\n";
      else std::cout << fixed << "\n";
    } catch (const clip::Error& e) {
      std::cout << nlohmann::json{{"error", e.what()}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
      ++failures;
    }
  }
  return failures ? clip::cli::kExitSomeInputsFailed : clip::cli::kExitOk;
}

int run(int argc, char** argv) {
  clip::cli::Command command(
      "clip-tokenize",
      "Prints one JSON array of token ids per text: the context_length row (SOT, ids, EOT, zero padding), or with "
      "--raw the BPE ids alone. Texts come from --text / --texts-file / --texts-jsonl, or else one a line on "
      "standard input (with --jsonl, each line a JSON string). A text that fails (too long without --truncate, "
      "invalid UTF-8 with --strict-utf8) prints {\"error\": \"...\"} and the exit status is 1. With "
      "--fix-text-only, prints each text after ftfy's fix_text instead (no model needed; with --jsonl as one JSON "
      "string a line).");
  CLI::App& app = command.app();
  std::string model_path, vocab_path;
  bool raw = false, truncate = false, jsonl = false, strict = false, no_fix_text = false, fix_text_only = false;
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
  CLI::Option* no_fix_option = command.add_no_fix_text(no_fix_text);
  app.add_flag("--fix-text-only", fix_text_only,
               "print each text after fix_text (ftfy's clean-up) instead of its ids; --jsonl: as JSON strings")
      ->excludes(no_fix_option);
  if (const int status = command.parse(argc, argv); status >= 0) return status;
  if (fix_text_only) return print_fixed_texts(texts, jsonl, strict);
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
  const clip::TokenizerOptions options{!no_fix_text, strict ? clip::InvalidUtf8::error : clip::InvalidUtf8::replace};

  TextSource source(texts, jsonl);
  int failures = 0;
  for (std::string line; source.next(line);) {
    nlohmann::json output;
    try {
      const std::string text = source.text(line);
      if (raw) {
        output = tokenizer.encode(text, options);
      } else {
        const clip::TokenMatrix row = tokenizer.tokenize(
            {text}, context_length > 0 ? std::optional<int>(context_length) : std::nullopt, truncate, options);
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
