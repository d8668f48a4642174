#pragma once
// Writing outputs without ever leaving a partial file: write a temporary file in the target's
// folder, flush it, then rename it over the target (atomic on POSIX file systems).

#include <clip/error.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

namespace clip::detail {

inline void write_file_atomically(const std::string& path, std::string_view contents) {
  std::random_device entropy;
  const std::string temporary = path + ".tmp-" + std::to_string(entropy());
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (file == nullptr) throw Error(path + ": cannot create " + temporary + " (" + std::strerror(errno) + ")");
  const bool written = std::fwrite(contents.data(), 1, contents.size(), file) == contents.size();
  const bool closed = std::fclose(file) == 0;
  if (!written || !closed) {
    std::remove(temporary.c_str());
    throw Error(path + ": write failed (disk full?)");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    std::remove(temporary.c_str());
    throw Error(path + ": cannot rename " + temporary + " into place (" + std::strerror(error) + ")");
  }
}

}  // namespace clip::detail
