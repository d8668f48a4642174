#pragma once
// clip::Error: the one exception type the library throws for bad input, bad files and misuse.

#include <stdexcept>
#include <string>

namespace clip {

/// Thrown for every failure the caller can cause: a malformed model file, a corrupt image,
/// text that does not fit, a wrongly shaped batch. The message names the input and the problem.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace clip
