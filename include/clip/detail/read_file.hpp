#pragma once
// Reading a whole file the user named: every path the library opens comes through here (or
// through MappedFile), so a directory, a device or a file too large for its purpose is a clear
// clip::Error naming the path, never a huge allocation from a bogus size.

#include <clip/error.hpp>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace clip::detail {

/// Why `status` (from stat/fstat) is not a regular file, for a message; empty when it is one.
inline std::string not_regular_file_reason(const struct stat& status) {
  if (S_ISREG(status.st_mode)) return {};
  if (S_ISDIR(status.st_mode)) return "is a directory, not a file";
  return "is not a regular file";
}

/// Opens `path` read-only and checks it is a regular file; returns the descriptor and its size.
inline int open_regular_file(const std::string& path, std::size_t& size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat status {};
  if (::fstat(fd, &status) != 0) {
    const int error = errno;
    ::close(fd);
    throw Error(path + ": cannot stat (" + std::strerror(error) + ")");
  }
  const std::string reason = not_regular_file_reason(status);
  if (!reason.empty()) {
    ::close(fd);
    throw Error(path + ": " + reason);
  }
  size = static_cast<std::size_t>(status.st_size);
  return fd;
}

/// The whole contents of a regular file of at most `max_bytes` bytes. `what` names the kind
/// of file in messages ("image file", "vocabulary").
inline std::string read_file(const std::string& path, std::size_t max_bytes, const char* what = "file") {
  std::size_t size = 0;
  const int fd = open_regular_file(path, size);
  if (size > max_bytes) {
    ::close(fd);
    throw Error(path + ": " + what + " of " + std::to_string(size) + " bytes exceeds the limit of " +
                std::to_string(max_bytes) + " bytes");
  }
  std::string contents(size, '\0');
  std::size_t done = 0;
  while (done < size) {
    const ssize_t got = ::read(fd, &contents[done], size - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const int error = got < 0 ? errno : 0;
      ::close(fd);
      throw Error(path + ": read error" + (error ? std::string(" (") + std::strerror(error) + ")" : " (file shrank)"));
    }
    done += static_cast<std::size_t>(got);
  }
  ::close(fd);
  return contents;
}

}  // namespace clip::detail
