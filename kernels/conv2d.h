// kernels/conv2d.h: 2-D convolution, stride 1, zero padding k/2 ("same"), with bias; k odd.
// DRAEM uses k = 3 everywhere.
//
//   conv2d_forward          y = w * x + b        x (N,C,H,W), w (K,C,k,k), b (K) or null, y (N,K,H,W)  (=)
//   conv2d_backward_data    gx += w^T * gy       (+=; with accumulate = false: gx = w^T * gy, for
//                                                  write-first gradients, nn/autograd.h)
//   conv2d_backward_filter  gw += gy * x^T       (+=)
//   conv2d_backward_bias    gb += sum_{n,h,w} gy (+=)
// CPU: im2col + the blocked GEMM. CUDA: cuDNN, algorithm found once per shape and cached,
// deterministic algorithms only, one shared workspace.
#pragma once

#include "kernels/dispatch.h"

namespace caf {

struct Conv2dShape {
  Shape4 x;      // input
  int64_t k_out; // output channels
  int64_t k;     // kernel size (odd)
  // The *_bf16 functions only: x, y (gx, gy) stored channels-last (N, H, W, C) and w (gw) as
  // (K, k, k, C), the layout of cuDNN's fastest tensor-core kernels (kernels/cast.h's *_nhwc
  // casts make and undo it). Shapes above stay the logical NCHW ones. conv2d_backward_bias (fp32)
  // reads it too: gy channels-last (the gradient of a channels-last activation).
  bool nhwc = false;
  Shape4 y() const { return {x.n, k_out, x.h, x.w}; }
  int64_t weight_numel() const { return k_out * x.c * k * k; }
  double flops() const { return 2.0 * x.n * k_out * x.h * x.w * x.c * k * k; }
};

namespace cpu {
template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s);
template <class T>
void conv2d_backward_data(const T* w, const T* gy, T* gx, const Conv2dShape& s, bool accumulate = true);
template <class T> void conv2d_backward_filter(const T* x, const T* gy, T* gw, const Conv2dShape& s);
template <class T> void conv2d_backward_bias(const T* gy, T* gb, const Conv2dShape& s);
}  // namespace cpu
namespace cuda {
void conv2d_forward(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s);
void conv2d_backward_data(const float* w, const float* gy, float* gx, const Conv2dShape& s, bool accumulate = true);
void conv2d_backward_filter(const float* x, const float* gy, float* gw, const Conv2dShape& s);
void conv2d_backward_bias(const float* gy, float* gb, const Conv2dShape& s);
}  // namespace cuda

// Mixed precision (Precision::bf16): x, w, y (gy, gx, gw) in bf16 held as uint16_t, products
// summed in fp32; outputs are written (=), not accumulated: the caller widens them into its fp32
// tensors (kernels/cast.h: cast_from_bf16 adds the bias, accumulate_bf16 the gradients). CUDA:
// cuDNN tensor-core algorithms, plans cached like fp32's. CPU: the same from the bf16 values with
// the fp32 convolution above, rounded to bf16 (the reference, up to summation order); with
// s.nhwc, the same values permuted to and from channels-last.
namespace cpu {
void conv2d_forward_bf16(const uint16_t* x, const uint16_t* w, uint16_t* y, const Conv2dShape& s);
void conv2d_backward_data_bf16(const uint16_t* w, const uint16_t* gy, uint16_t* gx, const Conv2dShape& s);
void conv2d_backward_filter_bf16(const uint16_t* x, const uint16_t* gy, uint16_t* gw, const Conv2dShape& s);
void conv2d_backward_bias_bf16(const uint16_t* gy, float* gb, const Conv2dShape& s);
}  // namespace cpu
namespace cuda {
void conv2d_forward_bf16(const uint16_t* x, const uint16_t* w, uint16_t* y, const Conv2dShape& s);
void conv2d_backward_data_bf16(const uint16_t* w, const uint16_t* gy, uint16_t* gx, const Conv2dShape& s);
void conv2d_backward_filter_bf16(const uint16_t* x, const uint16_t* gy, uint16_t* gw, const Conv2dShape& s);
void conv2d_backward_bias_bf16(const uint16_t* gy, float* gb, const Conv2dShape& s);
}  // namespace cuda
inline void conv2d_forward_bf16(Device d, const uint16_t* x, const uint16_t* w, uint16_t* y, const Conv2dShape& s) {
  CAF_DISPATCH_PLAIN(d, conv2d_forward_bf16, x, w, y, s);
}
inline void conv2d_backward_data_bf16(Device d, const uint16_t* w, const uint16_t* gy, uint16_t* gx,
                                      const Conv2dShape& s) {
  CAF_DISPATCH_PLAIN(d, conv2d_backward_data_bf16, w, gy, gx, s);
}
inline void conv2d_backward_filter_bf16(Device d, const uint16_t* x, const uint16_t* gy, uint16_t* gw,
                                        const Conv2dShape& s) {
  CAF_DISPATCH_PLAIN(d, conv2d_backward_filter_bf16, x, gy, gw, s);
}
// gb (fp32) += sum_{n,h,w} of a bf16 gy (bf16 gradients, kernels/runtime.h), in gy's layout
// (s.nhwc): conv2d_backward_bias on the widened gy, the same sums in the same order.
inline void conv2d_backward_bias_bf16(Device d, const uint16_t* gy, float* gb, const Conv2dShape& s) {
  CAF_DISPATCH_PLAIN(d, conv2d_backward_bias_bf16, gy, gb, s);
}

template <class T>
void conv2d_forward(Device d, const T* x, const T* w, const T* b, T* y, const Conv2dShape& s) {
  CAF_DISPATCH(T, d, conv2d_forward, x, w, b, y, s);
}
template <class T>
void conv2d_backward_data(Device d, const T* w, const T* gy, T* gx, const Conv2dShape& s, bool accumulate = true) {
  CAF_DISPATCH(T, d, conv2d_backward_data, w, gy, gx, s, accumulate);
}
template <class T>
void conv2d_backward_filter(Device d, const T* x, const T* gy, T* gw, const Conv2dShape& s) {
  CAF_DISPATCH(T, d, conv2d_backward_filter, x, gy, gw, s);
}
template <class T>
void conv2d_backward_bias(Device d, const T* gy, T* gb, const Conv2dShape& s) {
  CAF_DISPATCH(T, d, conv2d_backward_bias, gy, gb, s);
}

}  // namespace caf
