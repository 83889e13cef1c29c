// kernels/reduce.h: sums and means, over everything or per channel.
//
//   reduce_all_forward         y[0] = scale * sum_i x[i]              (=; scale 1 sum, 1/n mean)
//   reduce_all_backward        gx[i] += scale * gy[0]                 (+=)
//   reduce_channels_forward    y[c] = scale * sum_{n,h,w} x[n,c,h,w]  (=)
//   reduce_channels_backward   gx[n,c,h,w] += scale * gy[c]           (+=)
//   reduce_minmax              y[0] = min x, y[1] = max x            (=; not differentiable)
// gy stays on the op's device: the backward never copies a scalar back to the host.
#pragma once

#include "kernels/dispatch.h"

namespace caf {

template <class T>
struct ReduceAllBackward {
  const T* gy;
  T* gx;
  T scale;
  CAF_HD void operator()(int64_t i) const { gx[i] += scale * gy[0]; }
};

template <class T>
struct ReduceChannelsBackward {
  const T* gy;
  T* gx;
  Shape4 s;
  T scale;
  CAF_HD void operator()(int64_t i) const { gx[i] += scale * gy[(i / s.hw()) % s.c]; }
};

namespace cpu {
template <class T> void reduce_all_forward(const T* x, int64_t n, T scale, T* y);
template <class T> void reduce_all_backward(const T* gy, int64_t n, T scale, T* gx);
template <class T> void reduce_channels_forward(const T* x, Shape4 s, T scale, T* y);
template <class T> void reduce_channels_backward(const T* gy, Shape4 s, T scale, T* gx);
template <class T> void reduce_minmax(const T* x, int64_t n, T* y);
}  // namespace cpu

namespace cuda {
void reduce_all_forward(const float* x, int64_t n, float scale, float* y);
void reduce_all_backward(const float* gy, int64_t n, float scale, float* gx);
void reduce_channels_forward(const float* x, Shape4 s, float scale, float* y);
void reduce_channels_backward(const float* gy, Shape4 s, float scale, float* gx);
void reduce_minmax(const float* x, int64_t n, float* y);
}  // namespace cuda

template <class T>
void reduce_all_forward(Device d, const T* x, int64_t n, T scale, T* y) {
  CAF_DISPATCH(T, d, reduce_all_forward, x, n, scale, y);
}
template <class T>
void reduce_all_backward(Device d, const T* gy, int64_t n, T scale, T* gx) {
  CAF_DISPATCH(T, d, reduce_all_backward, gy, n, scale, gx);
}
template <class T>
void reduce_channels_forward(Device d, const T* x, Shape4 s, T scale, T* y) {
  CAF_DISPATCH(T, d, reduce_channels_forward, x, s, scale, y);
}
template <class T>
void reduce_channels_backward(Device d, const T* gy, Shape4 s, T scale, T* gx) {
  CAF_DISPATCH(T, d, reduce_channels_backward, gy, s, scale, gx);
}

template <class T>
void reduce_minmax(Device d, const T* x, int64_t n, T* y) {
  CAF_DISPATCH(T, d, reduce_minmax, x, n, y);
}

}  // namespace caf
