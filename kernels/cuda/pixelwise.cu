// kernels/cuda/pixelwise.cu: CUDA launchers of the per-pixel functor ops; the arithmetic is the
// CPU reference's own (see the ops' headers).
#include "kernels/channels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/gaussian.h"
#include "kernels/pool.h"
#include "kernels/softmax.h"
#include "kernels/upsample.h"

namespace caf::cuda {

void softmax_channels_forward(const float* x, Shape4 s, float* y) {
  for_each(s.n * s.hw(), SoftmaxChannelsForward<float>{x, y, s}, "softmax_channels_forward");
}
void softmax_channels_backward(const float* y, const float* gy, Shape4 s, float* gx) {
  for_each(s.n * s.hw(), SoftmaxChannelsBackward<float>{y, gy, gx, s}, "softmax_channels_backward");
}
void channel_copy(const float* src, float* dst, ChannelCopyArgs a, bool accumulate) {
  for_each(a.n * a.count * a.hw, ChannelCopy<float>{src, dst, a, accumulate}, "channel_copy");
}
void maxpool2d_forward(const float* x, Shape4 s, float* y) {
  for_each(s.n * s.c * (s.h / 2) * (s.w / 2), MaxPoolForward<float>{x, y, s}, "maxpool2d_forward");
}
void maxpool2d_backward(const float* x, const float* gy, Shape4 s, float* gx) {
  for_each(s.numel(), MaxPoolBackward<float>{x, gy, gx, s}, "maxpool2d_backward");
}
void avg_pool2d_forward(const float* x, Shape4 s, int64_t k, float* y) {
  for_each(s.numel(), BoxMean<float>{x, y, s, k, false}, "avg_pool2d_forward");
}
void avg_pool2d_backward(const float* gy, Shape4 s, int64_t k, float* gx) {
  for_each(s.numel(), BoxMean<float>{gy, gx, s, k, true}, "avg_pool2d_backward");
}
void upsample_bilinear2x_forward(const float* x, Shape4 s, float* y) {
  for_each(s.numel() * 4, UpsampleForward<float>{x, y, s}, "upsample_bilinear2x_forward");
}
void upsample_bilinear2x_backward(const float* gy, Shape4 s, float* gx) {
  for_each(s.numel(), UpsampleBackward<float>{gy, gx, s}, "upsample_bilinear2x_backward");
}
void gaussian_blur_forward(const float* x, Shape4 s, int k, double sigma, float* y) {
  for_each(s.numel(), GaussianFilter<float>{x, y, s, gaussian_window<float>(k, sigma), false, false},
           "gaussian_blur_forward");
}
void gaussian_blur_backward(const float* gy, Shape4 s, int k, double sigma, float* gx) {
  for_each(s.numel(), GaussianFilter<float>{gy, gx, s, gaussian_window<float>(k, sigma), true, true},
           "gaussian_blur_backward");
}

}  // namespace caf::cuda
