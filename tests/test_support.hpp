#pragma once
// Helpers shared by the test suites: the reference data location and scratch files.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

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

}  // namespace clip_test
