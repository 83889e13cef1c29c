// kernels/launch.h: the generic CPU launcher for per-element functors.
//
// A functor f(i) for i in [0, n) is the unit of work for elementwise and per-pixel ops. On the CPU
// it runs in an OpenMP loop; kernels/cuda/launch.cuh runs the same functor in a grid-stride loop.
// So CPU tests exercise the GPU's own per-element code, index arithmetic included.
#pragma once

#include <cstdint>

namespace caf {

// Below this many elements, thread start-up costs more than it saves.
inline constexpr int64_t kParallelGrain = 1 << 14;

template <class F>
void cpu_for_each(int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace caf
