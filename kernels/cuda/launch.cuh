// kernels/cuda/launch.cuh: the generic CUDA launcher for per-element functors (see launch.h).
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/check.h"

namespace caf::cuda {

template <class F>
__global__ void for_each_kernel(int64_t n, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    f(i);
}

// Grid-stride launch of f over [0, n) on caf's stream; `what` names the op in error messages.
template <class F>
void for_each(int64_t n, F f, const char* what) {
  if (n <= 0) return;
  constexpr int kThreads = 256;
  int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 132 * 32);
  for_each_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream()>>>(n, f);
  CAF_CHECK_LAUNCH(what);
}

}  // namespace caf::cuda
