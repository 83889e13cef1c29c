#include "kernels/reduce.h"

#include "kernels/launch.h"

namespace caf::cpu {

// Fixed chunks summed in parallel, then combined in order: the result does not depend on the
// thread count or timing (an OpenMP reduction combines partial sums in an unspecified order).
template <class T>
void reduce_all_forward(const T* x, int64_t n, T scale, T* y) {
  constexpr int64_t kChunks = 64;
  acc_t<T> part[kChunks] = {};
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t c = 0; c < kChunks; ++c)
    for (int64_t i = n * c / kChunks; i < n * (c + 1) / kChunks; ++i) part[c] += x[i];
  acc_t<T> s = 0;
  for (int64_t c = 0; c < kChunks; ++c) s += part[c];
  y[0] = T(scale * s);
}

template <class T>
void reduce_all_backward(const T* gy, int64_t n, T scale, T* gx) {
  cpu_for_each(n, ReduceAllBackward<T>{gy, gx, scale});
}

template <class T>
void reduce_channels_forward(const T* x, Shape4 s, T scale, T* y) {
#pragma omp parallel for if (s.numel() >= kParallelGrain)
  for (int64_t c = 0; c < s.c; ++c) {
    acc_t<T> acc = 0;
    for (int64_t n = 0; n < s.n; ++n) {
      const T* p = x + (n * s.c + c) * s.hw();
      for (int64_t i = 0; i < s.hw(); ++i) acc += p[i];
    }
    y[c] = T(scale * acc);
  }
}

template <class T>
void reduce_channels_backward(const T* gy, Shape4 s, T scale, T* gx) {
  cpu_for_each(s.numel(), ReduceChannelsBackward<T>{gy, gx, s, scale});
}

template <class T>
void reduce_minmax(const T* x, int64_t n, T* y) {
  T lo = x[0], hi = x[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  y[0] = lo;
  y[1] = hi;
}

#define CAF_INSTANTIATE(T)                                                    \
  template void reduce_all_forward<T>(const T*, int64_t, T, T*);              \
  template void reduce_all_backward<T>(const T*, int64_t, T, T*);             \
  template void reduce_channels_forward<T>(const T*, Shape4, T, T*);          \
  template void reduce_channels_backward<T>(const T*, Shape4, T, T*);          \
  template void reduce_minmax<T>(const T*, int64_t, T*);
CAF_INSTANTIATE(float)
CAF_INSTANTIATE(double)

}  // namespace caf::cpu
