// kernels/cuda/pixelwise.cu: CUDA launchers of the per-pixel functor ops; the arithmetic is the
// CPU reference's own (see the ops' headers).
#include "kernels/channels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/gaussian.h"
#include "kernels/memory.h"
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
void maxpool2d_forward_index(const float* x, Shape4 s, float* y, uint8_t* idx) {
  for_each(s.n * s.c * (s.h / 2) * (s.w / 2), MaxPoolForwardIndex<>{x, y, idx, s}, "maxpool2d_forward_index");
}
void maxpool2d_forward_index_bf16(const uint16_t* x, Shape4 s, uint16_t* y, uint8_t* idx, bool last) {
  for_each(s.n * s.c * (s.h / 2) * (s.w / 2), MaxPoolForwardIndex<uint16_t>{x, y, idx, s, last},
           "maxpool2d_forward_index_bf16");
}
void maxpool2d_backward_index(const uint8_t* idx, const float* gy, Shape4 s, float* gx, bool overwrite, bool last) {
  for_each(s.n * s.c * (s.h / 2) * (s.w / 2), MaxPoolBackwardIndex<>{idx, gy, gx, s, overwrite, last},
           "maxpool2d_backward_index");
}
void maxpool2d_backward_index(const uint8_t* idx, const uint16_t* gy, Shape4 s, float* gx, bool overwrite, bool last) {
  for_each(s.n * s.c * (s.h / 2) * (s.w / 2), MaxPoolBackwardIndex<uint16_t, float>{idx, gy, gx, s, overwrite, last},
           "maxpool2d_backward_index (bf16 gy)");
}
void maxpool2d_backward_index(const uint8_t* idx, const uint16_t* gy, Shape4 s, uint16_t* gx, bool overwrite,
                              bool last) {
  for_each(s.n * s.c * (s.h / 2) * (s.w / 2),
           MaxPoolBackwardIndex<uint16_t, uint16_t>{idx, gy, gx, s, overwrite, last},
           "maxpool2d_backward_index (bf16 gy, gx)");
}
void maxpool2d_forward(const float* x, Shape4 s, float* y) {
  for_each(s.n * s.c * (s.h / 2) * (s.w / 2), MaxPoolForward<float>{x, y, s}, "maxpool2d_forward");
}
void maxpool2d_backward(const float* x, const float* gy, Shape4 s, float* gx) {
  for_each(s.n * s.c * (s.h / 2) * (s.w / 2), MaxPoolBackward<float>{x, gy, gx, s},
           "maxpool2d_backward");
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
void upsample_bilinear2x_forward_bf16(const uint16_t* x, Shape4 s, uint16_t* y, bool last) {
  for_each(s.numel() * 4, UpsampleForward<float, uint16_t>{x, y, s, last}, "upsample_bilinear2x_forward_bf16");
}
void channel_copy_bf16(const uint16_t* src, uint16_t* dst, ChannelCopyArgs a) {
  for_each(a.n * a.count * a.hw, ChannelCopy<uint16_t>{src, dst, a, false}, "channel_copy_bf16");
}
void channel_copy_widen(const uint16_t* src, float* dst, ChannelCopyArgs a, bool accumulate) {
  for_each(a.n * a.count * a.hw, ChannelCopy<float, uint16_t>{src, dst, a, accumulate}, "channel_copy_widen");
}
void upsample_bilinear2x_backward(const float* gy, Shape4 s, float* gx, bool accumulate, bool last) {
  for_each(s.numel(), UpsampleBackward<float>{gy, gx, s, accumulate, last}, "upsample_bilinear2x_backward");
}
void upsample_bilinear2x_backward_bf16(const uint16_t* gy, Shape4 s, float* gx, bool accumulate, bool last) {
  for_each(s.numel(), UpsampleBackward<float, uint16_t>{gy, gx, s, accumulate, last},
           "upsample_bilinear2x_backward_bf16");
}
void gaussian_blur_forward(const float* x, Shape4 s, int k, double sigma, float* y) {
  const GaussianWindow<float> w = gaussian_window<float>(k, sigma);
  Buffer tmp(Device::cuda, size_t(s.numel()) * sizeof(float));
  float* t = static_cast<float*>(tmp.data());
  for_each(s.numel(), GaussianPass<float>{x, t, s, w, true, false, false}, "gaussian_blur_forward/rows");
  for_each(s.numel(), GaussianPass<float>{t, y, s, w, false, false, false}, "gaussian_blur_forward/cols");
}
void gaussian_blur_backward(const float* gy, Shape4 s, int k, double sigma, float* gx) {
  const GaussianWindow<float> w = gaussian_window<float>(k, sigma);
  Buffer tmp(Device::cuda, size_t(s.numel()) * sizeof(float));
  float* t = static_cast<float*>(tmp.data());
  for_each(s.numel(), GaussianPass<float>{gy, t, s, w, false, true, false}, "gaussian_blur_backward/cols");
  for_each(s.numel(), GaussianPass<float>{t, gx, s, w, true, true, true}, "gaussian_blur_backward/rows");
}

}  // namespace caf::cuda
