#include "kernels/error.h"

#include <cstring>

namespace caf {

std::string format_error(const char* kind, const char* call, const char* file, int line,
                         const std::string& detail) {
  const char* base = std::strrchr(file, '/');
  std::string where = std::string(base ? base + 1 : file) + ":" + std::to_string(line);
  std::string msg = where + ": " + kind + " failed: " + call;
  if (!detail.empty()) msg += " (" + detail + ")";
  return msg;
}

std::string describe(const std::exception& e) {
  std::string msg = e.what();
  if (auto* ce = dynamic_cast<const Error*>(&e); ce && !ce->hint().empty())
    msg += "\n  hint: " + ce->hint();
  return msg;
}

}  // namespace caf

#include "kernels/dispatch.h"

namespace caf::detail {
void throw_no_cuda(const char* op, bool double_precision) {
  if (double_precision)
    throw Error(std::string(op) + ": double precision runs on the CPU reference only");
  throw Error(std::string(op) + ": CUDA tensor in a build without CUDA",
              "configure with -DCAF_CUDA=ON, or keep tensors on the CPU");
}
}  // namespace caf::detail
