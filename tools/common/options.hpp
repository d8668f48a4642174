#pragma once
// The command line every clip tool shares: one parser (CLI11), the same spelling and help for
// the same option in every tool, one set of exit statuses, and inputs (image folders, list
// files, stdin) resolved the same way. Nothing model-related lives here.
//
// Exit statuses, the same in every tool (README, "Exit status"):
//   0  everything asked for was done
//   1  some inputs failed (each is reported; the rest were done)
//   2  usage error, or nothing could be done (unreadable model, missing input)

#include <clip/error.hpp>
#include <clip/version.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <vector>

namespace clip::cli {

enum ExitStatus : int { kExitOk = 0, kExitSomeInputsFailed = 1, kExitUsage = 2 };

/// Image files given as files (--image) and as sources (--input: folders or list files).
struct ImageInputs {
  std::vector<std::string> files;
  std::vector<std::string> sources;
};

/// Texts given on the command line (--text) and in files (--texts-file, --texts-jsonl).
struct TextInputs {
  std::vector<std::string> texts;
  std::vector<std::string> files;
  std::vector<std::string> jsonl_files;
  bool empty() const { return texts.empty() && files.empty() && jsonl_files.empty(); }
};

/// Where results go: a person's summary on stdout (default), JSON on stdout, or files.
struct OutputOptions {
  bool json = false;
  std::string npy_prefix;
  std::string output_dir;
};

/// A tool's command line: a CLI11 app with the shared options added by name.
class Command {
 public:
  Command(const std::string& name, const std::string& description) : app_(description, name) {
    app_.set_version_flag("--version", std::string(name + " (clip) " CLIP_VERSION_STRING));
    app_.option_defaults()->always_capture_default();
    app_.get_formatter()->column_width(30);
    app_.footer(
        "Options taking values accept --option=value. Several values may follow one --image or --text.\n"
        "A FILE of '-' is standard input. Exit status: 0 done, 1 some inputs failed, 2 usage error or "
        "nothing could be done.");
  }

  CLI::App& app() { return app_; }

  /// --model M: the clip model file (clip-convert makes one).
  CLI::Option* add_model(std::string& path, bool required = true) {
    CLI::Option* option = app_.add_option("--model", path, "clip model file (.safetensors, from clip-convert)");
    if (required) option->required();
    return option->type_name("FILE");
  }

  /// --threads N: threads inside one encode.
  CLI::Option* add_threads(int& threads) {
    return app_.add_option("--threads", threads, "threads used inside one encode (0: all cores)")
        ->check(CLI::NonNegativeNumber.description(""))
        ->type_name("N");
  }

  /// --image PATH..., --input SOURCE...
  void add_images(ImageInputs& inputs) {
    list_option(app_.add_option("--image", inputs.files, "image files (PNG, JPEG, BMP, GIF, TGA, PNM)"), "PATH");
    list_option(app_.add_option("--input", inputs.sources,
                                "a folder of images (searched recursively) or a list file of image paths, one a line"),
                "SOURCE");
  }

  /// --text STR..., --texts-file FILE..., --texts-jsonl FILE...
  void add_texts(TextInputs& inputs) {
    list_option(app_.add_option("--text", inputs.texts, "texts"), "STR");
    list_option(app_.add_option("--texts-file", inputs.files, "files of texts, one a line (every non-empty line)"),
                "FILE");
    list_option(app_.add_option("--texts-jsonl", inputs.jsonl_files, "files of texts, one JSON string a line"), "FILE");
  }

  /// --truncate: cut texts longer than the context (the last token stays EOT) instead of failing.
  CLI::Option* add_truncate(bool& truncate) {
    return app_.add_flag("--truncate", truncate,
                         "cut texts longer than the model's context (last token EOT) instead of reporting them as "
                         "errors, as OpenAI's truncate=True");
  }

  /// --no-fix-text: tokenize without clip::fix_text (ftfy.fix_text, which OpenAI's tokenizer runs first).
  CLI::Option* add_no_fix_text(bool& no_fix_text) {
    return app_.add_flag("--no-fix-text", no_fix_text,
                         "tokenize texts as given, without ftfy's fix_text clean-up (mojibake, curly quotes, "
                         "fullwidth forms, NFC...) that OpenAI's tokenizer applies first");
  }

  /// --json, and where the tool has them --npy PREFIX / --output-dir DIR; at most one of them.
  void add_output(OutputOptions& output, bool npy = false, bool output_dir = false) {
    std::vector<CLI::Option*> choices{app_.add_flag("--json", output.json, "print JSON instead of a summary")};
    if (npy)
      choices.push_back(app_.add_option("--npy", output.npy_prefix,
                                        "write PREFIX.images.npy, PREFIX.texts.npy (float32 [N, D]) and PREFIX.json")
                            ->type_name("PREFIX"));
    if (output_dir)
      choices.push_back(app_.add_option("--output-dir", output.output_dir, "write sharded outputs into DIR")
                            ->type_name("DIR"));
    for (CLI::Option* a : choices)
      for (CLI::Option* b : choices)
        if (a != b) a->excludes(b);
  }

  /// Parses argv. Returns -1 to go on, or the status to exit with (help, version: 0; errors: 2).
  int parse(int argc, char** argv) {
    try {
      app_.parse(argc, argv);
      return -1;
    } catch (const CLI::CallForHelp&) {
      std::cout << app_.help();
      return kExitOk;
    } catch (const CLI::CallForVersion& e) {
      std::cout << e.what() << "\n";
      return kExitOk;
    } catch (const CLI::ParseError& e) {
      const std::string prefix = app_.get_name() + ": ";
      const std::string message = e.what();
      std::cerr << (message.rfind(prefix, 0) == 0 ? "" : prefix) << message << "\nRun '" << app_.get_name()
                << " --help' for the options.\n";
      return kExitUsage;
    }
  }

 private:
  /// An option taking any number of values: no "[]" default shown, CLI11 adds the "...".
  static CLI::Option* list_option(CLI::Option* option, const char* type) {
    return option->default_str("")->type_name(type);
  }

  CLI::App app_;
};

/// Runs a tool's body after parsing, turning clip::Error (and any other exception) into a
/// message and exit status 2: the body returns 0 or 1 itself.
template <typename Body>
int run_main(const char* program, Body body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return kExitUsage;
  }
}

// --- Reading inputs ------------------------------------------------------------------------------

/// The lines of a file ('-': standard input) without line ends ("\n" or "\r\n"). With
/// `skip_comments`, blank lines and lines whose first non-blank character is '#' are dropped
/// (label, template and path lists); otherwise only empty lines are.
inline std::vector<std::string> read_lines(const std::string& path, bool skip_comments) {
  std::ifstream file;
  if (path != "-") {
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) throw Error(path + ": is a directory, not a file");
    file.open(path, std::ios::binary);
    if (!file) throw Error(path + ": cannot open");
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (skip_comments) {
      const auto first = line.find_first_not_of(" \t");
      if (first == std::string::npos || line[first] == '#') continue;
    }
    if (!line.empty()) lines.push_back(line);
  }
  if (in.bad()) throw Error(path + ": read error");
  return lines;
}

/// "cat, dog,a red car" -> {"cat", "dog", "a red car"}: split on commas, trimmed, empty parts dropped.
inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string part = text.substr(start, end - start);
    const auto first = part.find_first_not_of(" \t");
    if (first != std::string::npos) parts.push_back(part.substr(first, part.find_last_not_of(" \t") - first + 1));
    start = end + 1;
  }
  return parts;
}

/// The file extensions read as images, lower case.
inline const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> extensions = {".jpg", ".jpeg", ".png", ".bmp", ".gif",
                                                      ".tga", ".pnm",  ".ppm", ".pgm"};
  return extensions;
}

inline bool has_image_extension(const std::filesystem::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(), [](unsigned char c) { return std::tolower(c); });
  const auto& known = image_extensions();
  return std::find(known.begin(), known.end(), extension) != known.end();
}

/// The image files under `dir`, recursively, sorted by path. Hidden files and folders (names
/// starting with '.') and files with other extensions are skipped, and `notes` says how many.
inline std::vector<std::string> images_in_folder(const std::string& dir, std::ostream& notes) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  std::vector<std::string> hidden, other;
  std::error_code error;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, error), end;
  if (error) throw Error(dir + ": cannot read folder (" + error.message() + ")");
  for (; it != end; it.increment(error)) {
    if (error) throw Error(dir + ": cannot read folder (" + error.message() + ")");
    const fs::path& path = it->path();
    if (path.filename().string().front() == '.') {
      hidden.push_back(path.string());
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory()) continue;
    if (has_image_extension(path)) files.push_back(path.string());
    else other.push_back(path.string());
  }
  std::sort(files.begin(), files.end());
  auto examples = [](std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    std::string text;
    for (std::size_t i = 0; i < std::min<std::size_t>(names.size(), 3); ++i) text += (i ? ", " : "") + names[i];
    return names.size() > 3 ? text + ", ..." : text;
  };
  std::string skipped;
  if (!hidden.empty()) skipped += std::to_string(hidden.size()) + " hidden (" + examples(hidden) + ")";
  if (!other.empty())
    skipped += std::string(skipped.empty() ? "" : " and ") + std::to_string(other.size()) +
               " without an image extension (" + examples(other) + ")";
  if (files.empty()) {
    std::string extensions;
    for (const std::string& e : image_extensions()) extensions += " " + e;
    throw Error(dir + ": no image files in this folder (looked for" + extensions + ")" +
                (skipped.empty() ? std::string() : "; skipped " + skipped));
  }
  if (!skipped.empty()) notes << "note: " << dir << ": skipped " << skipped << "\n";
  return files;
}

/// Every image path the user gave, in order: --image's as given (checked when read), then each
/// --input: a folder's images, or a list file's paths ('-': standard input).
inline std::vector<std::string> resolve_images(const ImageInputs& inputs, std::ostream& notes) {
  std::vector<std::string> paths = inputs.files;
  for (const std::string& source : inputs.sources) {
    std::error_code error;
    if (source != "-" && std::filesystem::is_directory(source, error)) {
      const std::vector<std::string> found = images_in_folder(source, notes);
      paths.insert(paths.end(), found.begin(), found.end());
      continue;
    }
    if (has_image_extension(source))
      throw Error(source + ": --input takes a folder or a list file of paths; give image files with --image");
    const std::vector<std::string> listed = read_lines(source, true);
    if (listed.empty()) throw Error(source + ": the list of image paths is empty");
    paths.insert(paths.end(), listed.begin(), listed.end());
  }
  return paths;
}

/// Every text the user gave, in order: --text's, then each --texts-file's and --texts-jsonl's.
inline std::vector<std::string> resolve_texts(const TextInputs& inputs) {
  std::vector<std::string> texts = inputs.texts;
  for (const std::string& file : inputs.files) {
    const std::vector<std::string> lines = read_lines(file, false);
    texts.insert(texts.end(), lines.begin(), lines.end());
  }
  for (const std::string& file : inputs.jsonl_files) {
    std::size_t number = 0;
    for (const std::string& line : read_lines(file, false)) {
      ++number;
      try {
        texts.push_back(nlohmann::json::parse(line).get<std::string>());
      } catch (const nlohmann::json::exception& e) {
        throw Error(file + ":" + std::to_string(number) + ": not a JSON string (" + e.what() + ")");
      }
    }
  }
  return texts;
}

}  // namespace clip::cli
