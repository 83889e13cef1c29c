// tests/test_util.h: helpers shared by the doctest suites.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/runtime.h"

// GPU tests call this first: on a machine without a usable GPU they pass with a message.
#define CAF_NEED_GPU()                                            \
  do {                                                            \
    if (!::caf::cuda_available()) {                               \
      MESSAGE("skipped: no usable GPU on this machine");          \
      return;                                                     \
    }                                                             \
  } while (0)

namespace caf::test {

inline double nmse(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += double(a[i] - ref[i]) * double(a[i] - ref[i]);
    den += double(ref[i]) * double(ref[i]);
  }
  return den > 0 ? num / den : num;
}

}  // namespace caf::test
