// kernels/error.h: typed exceptions and the check macros that throw them.
//
// Library code never exits: it throws a caf::Error carrying the failing call, file:line and a
// hint for the user. tools/ mains catch, print one message and return non-zero. Destructors use
// the non-throwing CAF_WARN_* variants (see kernels/cuda/check.h).
#pragma once

#include <stdexcept>
#include <string>

namespace caf {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, std::string hint = {})
      : std::runtime_error(what), hint_(std::move(hint)) {}
  const std::string& hint() const { return hint_; }

 private:
  std::string hint_;
};

class CudaError : public Error { using Error::Error; };
class CudnnError : public Error { using Error::Error; };
class CublasError : public Error { using Error::Error; };
class IoError : public Error { using Error::Error; };
class ConfigError : public Error { using Error::Error; };
class ShapeError : public Error { using Error::Error; };
class OutOfMemory : public Error { using Error::Error; };

// "where: what (call) [hint]" in one line; used by every check macro.
std::string format_error(const char* kind, const char* call, const char* file, int line,
                         const std::string& detail);

// The full message plus hint, as tools print it.
std::string describe(const std::exception& e);

}  // namespace caf

#define CAF_STRINGIFY2(x) #x
#define CAF_STRINGIFY(x) CAF_STRINGIFY2(x)

// Precondition check for library code: throws ExcType with file:line and the failed condition.
#define CAF_REQUIRE_T(ExcType, cond, msg)                                                  \
  do {                                                                                     \
    if (!(cond))                                                                           \
      throw ExcType(::caf::format_error("requirement", #cond, __FILE__, __LINE__, (msg))); \
  } while (0)
#define CAF_REQUIRE(cond, msg) CAF_REQUIRE_T(::caf::Error, cond, msg)
#define CAF_REQUIRE_SHAPE(cond, msg) CAF_REQUIRE_T(::caf::ShapeError, cond, msg)
