// kernels/softmax.h: softmax over the channel axis of an NCHW tensor, one pixel at a time.
//
//   softmax_channels_forward   y[n,:,h,w] = softmax(x[n,:,h,w])      (=)
//   softmax_channels_backward  gx += y * (gy - sum_c y*gy)            (+=; needs only y)
// Functor index i runs over the N*H*W pixels.
#pragma once

#include "kernels/dispatch.h"
#include "kernels/elementwise_math.h"

namespace caf {

template <class T>
struct SoftmaxChannelsForward {
  const T* x;
  T* y;
  Shape4 s;
  CAF_HD void operator()(int64_t p) const {
    int64_t n = p / s.hw(), i = p % s.hw();
    const T* xp = x + n * s.c * s.hw() + i;
    T* yp = y + n * s.c * s.hw() + i;
    T m = xp[0];
    for (int64_t c = 1; c < s.c; ++c) m = xp[c * s.hw()] > m ? xp[c * s.hw()] : m;
    T sum = 0;
    for (int64_t c = 0; c < s.c; ++c) {
      T e = math_exp(xp[c * s.hw()] - m);
      yp[c * s.hw()] = e;
      sum += e;
    }
    for (int64_t c = 0; c < s.c; ++c) yp[c * s.hw()] /= sum;
  }
};

template <class T>
struct SoftmaxChannelsBackward {
  const T* y;
  const T* gy;
  T* gx;
  Shape4 s;
  CAF_HD void operator()(int64_t p) const {
    int64_t base = (p / s.hw()) * s.c * s.hw() + p % s.hw();
    T dot = 0;
    for (int64_t c = 0; c < s.c; ++c) dot += y[base + c * s.hw()] * gy[base + c * s.hw()];
    for (int64_t c = 0; c < s.c; ++c) {
      int64_t k = base + c * s.hw();
      gx[k] += y[k] * (gy[k] - dot);
    }
  }
};

namespace cpu {
template <class T> void softmax_channels_forward(const T* x, Shape4 s, T* y);
template <class T> void softmax_channels_backward(const T* y, const T* gy, Shape4 s, T* gx);
}  // namespace cpu
namespace cuda {
void softmax_channels_forward(const float* x, Shape4 s, float* y);
void softmax_channels_backward(const float* y, const float* gy, Shape4 s, float* gx);
}  // namespace cuda

template <class T>
void softmax_channels_forward(Device d, const T* x, Shape4 s, T* y) {
  CAF_DISPATCH(T, d, softmax_channels_forward, x, s, y);
}
template <class T>
void softmax_channels_backward(Device d, const T* y, const T* gy, Shape4 s, T* gx) {
  CAF_DISPATCH(T, d, softmax_channels_backward, y, gy, s, gx);
}

}  // namespace caf
