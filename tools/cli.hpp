#pragma once
// Small command-line helpers shared by the tools and the examples: argument values, numbers and
// list files. Nothing model-related lives here.

#include <clip/error.hpp>

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace clip::cli {

/// Walks argv; value() takes the argument after the current flag or throws naming the flag.
class Arguments {
 public:
  Arguments(int argc, char** argv) : argc_(argc), argv_(argv) {}

  bool next() { return ++index_ < argc_; }
  std::string current() const { return argv_[index_]; }
  std::string value() {
    if (index_ + 1 >= argc_) throw Error(current() + " needs a value");
    return argv_[++index_];
  }

 private:
  int argc_;
  char** argv_;
  int index_ = 0;
};

/// A whole number >= minimum, or clip::Error naming the flag.
inline long parse_integer(const std::string& flag, const std::string& text, long minimum = 1) {
  try {
    std::size_t used = 0;
    const long value = std::stol(text, &used);
    if (used == text.size() && value >= minimum) return value;
  } catch (const std::exception&) {
  }
  throw Error(flag + " needs an integer >= " + std::to_string(minimum) + ", not '" + text + "'");
}

/// The non-empty lines of a file, without line ends ("\n" or "\r\n").
inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error(path + ": cannot open");
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
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

template <typename T>
void append(std::vector<T>& to, std::vector<T> from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

/// Runs a tool's main body, turning exceptions into a message and exit status `error_status`.
template <typename Body>
int run_main(const char* program, Body body, int error_status = 2) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return error_status;
  }
}

}  // namespace clip::cli
