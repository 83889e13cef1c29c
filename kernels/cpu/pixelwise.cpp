// kernels/cpu/pixelwise.cpp: CPU launchers of the per-pixel functor ops (softmax, channel copy,
// pooling, upsampling, Gaussian filter). The arithmetic lives in the ops' headers, shared with
// kernels/cuda/pixelwise.cu.
#include <cmath>
#include <vector>

#include "kernels/channels.h"
#include "kernels/error.h"
#include "kernels/gaussian.h"
#include "kernels/launch.h"
#include "kernels/pool.h"
#include "kernels/softmax.h"
#include "kernels/upsample.h"

namespace caf {

template <class T>
GaussianWindow<T> gaussian_window(int k, double sigma) {
  CAF_REQUIRE(k >= 1 && k <= kMaxGaussianWindow && k % 2 == 1,
              "Gaussian window size must be odd and at most 31");
  GaussianWindow<T> w{};
  w.k = k;
  double g[kMaxGaussianWindow], sum = 0;
  for (int i = 0; i < k; ++i) {
    double d = i - k / 2;
    g[i] = std::exp(-d * d / (2 * sigma * sigma));
    sum += g[i];
  }
  for (int i = 0; i < k; ++i) w.g[i] = T(g[i] / sum);
  return w;
}
template GaussianWindow<float> gaussian_window<float>(int, double);
template GaussianWindow<double> gaussian_window<double>(int, double);

namespace cpu {

template <class T>
void softmax_channels_forward(const T* x, Shape4 s, T* y) {
  cpu_for_each(s.n * s.hw(), SoftmaxChannelsForward<T>{x, y, s});
}
template <class T>
void softmax_channels_backward(const T* y, const T* gy, Shape4 s, T* gx) {
  cpu_for_each(s.n * s.hw(), SoftmaxChannelsBackward<T>{y, gy, gx, s});
}
template <class T>
void channel_copy(const T* src, T* dst, ChannelCopyArgs a, bool accumulate) {
  cpu_for_each(a.n * a.count * a.hw, ChannelCopy<T>{src, dst, a, accumulate});
}
void maxpool2d_forward_index(const float* x, Shape4 s, float* y, uint8_t* idx) {
  cpu_for_each(s.n * s.c * (s.h / 2) * (s.w / 2), MaxPoolForwardIndex<>{x, y, idx, s});
}
void maxpool2d_forward_index_bf16(const uint16_t* x, Shape4 s, uint16_t* y, uint8_t* idx, bool last) {
  cpu_for_each(s.n * s.c * (s.h / 2) * (s.w / 2), MaxPoolForwardIndex<uint16_t>{x, y, idx, s, last});
}
void maxpool2d_backward_index(const uint8_t* idx, const float* gy, Shape4 s, float* gx, bool overwrite, bool last) {
  cpu_for_each(s.n * s.c * (s.h / 2) * (s.w / 2), MaxPoolBackwardIndex<>{idx, gy, gx, s, overwrite, last});
}
void maxpool2d_backward_index(const uint8_t* idx, const uint16_t* gy, Shape4 s, float* gx, bool overwrite, bool last) {
  cpu_for_each(s.n * s.c * (s.h / 2) * (s.w / 2),
               MaxPoolBackwardIndex<uint16_t, float>{idx, gy, gx, s, overwrite, last});
}
void maxpool2d_backward_index(const uint8_t* idx, const uint16_t* gy, Shape4 s, uint16_t* gx, bool overwrite,
                              bool last) {
  cpu_for_each(s.n * s.c * (s.h / 2) * (s.w / 2),
               MaxPoolBackwardIndex<uint16_t, uint16_t>{idx, gy, gx, s, overwrite, last});
}
template <class T>
void maxpool2d_forward(const T* x, Shape4 s, T* y) {
  cpu_for_each(s.n * s.c * (s.h / 2) * (s.w / 2), MaxPoolForward<T>{x, y, s});
}
template <class T>
void maxpool2d_backward(const T* x, const T* gy, Shape4 s, T* gx) {
  cpu_for_each(s.n * s.c * (s.h / 2) * (s.w / 2), MaxPoolBackward<T>{x, gy, gx, s});
}
template <class T>
void avg_pool2d_forward(const T* x, Shape4 s, int64_t k, T* y) {
  cpu_for_each(s.numel(), BoxMean<T>{x, y, s, k, false});
}
template <class T>
void avg_pool2d_backward(const T* gy, Shape4 s, int64_t k, T* gx) {
  cpu_for_each(s.numel(), BoxMean<T>{gy, gx, s, k, true});
}
template <class T>
void upsample_bilinear2x_forward(const T* x, Shape4 s, T* y) {
  cpu_for_each(s.numel() * 4, UpsampleForward<T>{x, y, s});
}
void upsample_bilinear2x_forward_bf16(const uint16_t* x, Shape4 s, uint16_t* y, bool last) {
  cpu_for_each(s.numel() * 4, UpsampleForward<float, uint16_t>{x, y, s, last});
}
void channel_copy_bf16(const uint16_t* src, uint16_t* dst, ChannelCopyArgs a) {
  cpu_for_each(a.n * a.count * a.hw, ChannelCopy<uint16_t>{src, dst, a, false});
}
void channel_copy_widen(const uint16_t* src, float* dst, ChannelCopyArgs a, bool accumulate) {
  cpu_for_each(a.n * a.count * a.hw, ChannelCopy<float, uint16_t>{src, dst, a, accumulate});
}
template <class T>
void upsample_bilinear2x_backward(const T* gy, Shape4 s, T* gx, bool accumulate, bool last) {
  cpu_for_each(s.numel(), UpsampleBackward<T>{gy, gx, s, accumulate, last});
}
void upsample_bilinear2x_backward_bf16(const uint16_t* gy, Shape4 s, float* gx, bool accumulate, bool last) {
  cpu_for_each(s.numel(), UpsampleBackward<float, uint16_t>{gy, gx, s, accumulate, last});
}
template <class T>
void gaussian_blur_forward(const T* x, Shape4 s, int k, double sigma, T* y) {
  const GaussianWindow<T> w = gaussian_window<T>(k, sigma);
  std::vector<T> tmp(static_cast<size_t>(s.numel()));
  cpu_for_each(s.numel(), GaussianPass<T>{x, tmp.data(), s, w, true, false, false});
  cpu_for_each(s.numel(), GaussianPass<T>{tmp.data(), y, s, w, false, false, false});
}
template <class T>
void gaussian_blur_backward(const T* gy, Shape4 s, int k, double sigma, T* gx) {
  const GaussianWindow<T> w = gaussian_window<T>(k, sigma);
  std::vector<T> tmp(static_cast<size_t>(s.numel()));
  cpu_for_each(s.numel(), GaussianPass<T>{gy, tmp.data(), s, w, false, true, false});
  cpu_for_each(s.numel(), GaussianPass<T>{tmp.data(), gx, s, w, true, true, true});
}

#define CAF_INSTANTIATE(T)                                                             \
  template void softmax_channels_forward<T>(const T*, Shape4, T*);                     \
  template void softmax_channels_backward<T>(const T*, const T*, Shape4, T*);          \
  template void channel_copy<T>(const T*, T*, ChannelCopyArgs, bool);                  \
  template void maxpool2d_forward<T>(const T*, Shape4, T*);                            \
  template void maxpool2d_backward<T>(const T*, const T*, Shape4, T*);                 \
  template void avg_pool2d_forward<T>(const T*, Shape4, int64_t, T*);                  \
  template void avg_pool2d_backward<T>(const T*, Shape4, int64_t, T*);                 \
  template void upsample_bilinear2x_forward<T>(const T*, Shape4, T*);                  \
  template void upsample_bilinear2x_backward<T>(const T*, Shape4, T*, bool, bool);        \
  template void gaussian_blur_forward<T>(const T*, Shape4, int, double, T*);           \
  template void gaussian_blur_backward<T>(const T*, Shape4, int, double, T*);
CAF_INSTANTIATE(float)
CAF_INSTANTIATE(double)

}  // namespace cpu
}  // namespace caf
