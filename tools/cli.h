// tools/cli.h: option parsing shared by the caf commands (header-only; tools/ mains only).
#pragma once

#include <string>

#include "kernels/error.h"

namespace caf {

// The integer value of option `what` (e.g. "make-toy: --size"), which must lie in [lo, hi];
// anything else is a ConfigError that names the option, the range and the text given.
inline long long cli_integer(const std::string& what, const std::string& value, long long lo, long long hi,
                             const std::string& hint = {}) {
  try {
    size_t used = 0;
    const long long n = std::stoll(value, &used);
    if (used == value.size() && n >= lo && n <= hi) return n;
  } catch (const std::exception&) {
  }
  throw ConfigError(what + " expects an integer in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" +
                        value + "'",
                    hint);
}

}  // namespace caf
