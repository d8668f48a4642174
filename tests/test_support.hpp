#pragma once
// Helpers shared by the test suites: the reference data location and scratch files.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace clip_test {

/// ../shared/reference made with OpenAI's implementation, from CLIP_REFERENCE_DIR; empty when
/// it is not there, and the tests that need it skip.
inline std::string reference_dir() {
  const char* dir = std::getenv("CLIP_REFERENCE_DIR");
  if (dir == nullptr || !std::filesystem::is_directory(dir)) return {};
  return dir;
}

/// Skips the current test unless `relative` exists under the reference folder; else its path.
#define CLIP_REFERENCE_OR_SKIP(variable, relative)                                                \
  const std::string variable = clip_test::reference_dir().empty()                                 \
                                   ? std::string()                                                 \
                                   : clip_test::reference_dir() + "/" + (relative);               \
  if (variable.empty() || !std::filesystem::exists(variable))                                      \
  GTEST_SKIP() << "reference data " << (relative)                                                  \
               << " not found (set CLIP_REFERENCE_DIR to ../shared/reference)"

/// A fresh folder for one test's files, private to this process (ctest runs tests in parallel).
inline std::filesystem::path scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("clip-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct CommandResult {
  int status = -1;
  std::string out;
  std::string err;
};

/// `text` as one single-quoted shell word.
inline std::string quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

/// Runs a shell command as a user would, capturing its exit status, stdout and stderr.
inline CommandResult run_command(const std::string& command) {
  const std::filesystem::path err_file = scratch_dir("run-stderr") / "stderr";
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>" + quote(err_file.string())).c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[65536];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) result.out.append(buffer, n);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(err_file);
  result.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  return result;
}

}  // namespace clip_test
