#pragma once
// clip::InvalidUtf8: what text functions do with bytes that are not well-formed UTF-8.

namespace clip {

/// What encode() and fix_text() do with bytes that are not well-formed UTF-8.
enum class InvalidUtf8 {
  replace,  ///< each maximal ill-formed subpart becomes U+FFFD (Python's errors="replace")
  error,    ///< throw clip::Error naming the byte offset
};

}  // namespace clip
