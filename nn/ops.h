// nn/ops.h: the differentiable ops that networks and losses are built from.
//
// Each function checks its arguments, runs the forward kernel on the inputs' device, and records
// a node whose backward calls the op's backward kernels (kernels/*.h); nothing here does
// arithmetic itself. All tensors of one call must be float32 and on the same device.
#pragma once

#include "nn/tensor.h"

namespace caf {

// elementwise (same shapes, no broadcasting)
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);  // a / b
Tensor scale(const Tensor& x, float a);       // a * x
Tensor add_scalar(const Tensor& x, float a);  // x + a
// x + s[k] with s a tensor on x's device (a constant computed there: no gradient flows to s).
Tensor add_scalar_at(const Tensor& x, const Tensor& s, int64_t k);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor square(const Tensor& x);
Tensor clamp(const Tensor& x, float lo, float hi);

// reductions: to shape [1], or per channel of an NCHW tensor to shape [C]
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
Tensor sum_channels(const Tensor& x);
Tensor mean_channels(const Tensor& x);

// channels of NCHW tensors
Tensor softmax_channels(const Tensor& x);
Tensor concat_channels(const Tensor& a, const Tensor& b);
// A bf16 tensor's values as float32 (exact); the gradient passes through unchanged. For looking
// at bf16 activations and for losses on them; an f32 x is returned as it is.
// A channels-last tensor's values are planar float32 (a transpose with the widening).
Tensor to_float32(const Tensor& x);
// A channels-last tensor (channels_last_activations(), kernels/runtime.h) transposed to planar,
// the same dtype; a planar x is returned as it is. The gradient is transposed back.
Tensor to_planar(const Tensor& x);
Tensor slice_channels(const Tensor& x, int64_t c0, int64_t c1);  // channels [c0, c1)

// layers' math
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b);  // b may be undefined
// bf16 activations (kernels/runtime.h bf16_activations_active()): the convolution's raw bf16
// output, without the bias, for a batchnorm_relu2d that adds b as it reads (its x_bias). Its node
// still owns b (the bias gradient). conv2d and the ops below also take bf16 activations as x
// (their outputs are then bf16 too, conv2d's fp32; gradients are always fp32). bf16 precision only.
// With channels_last_activations() and 8k input and output channels, the output is channels-last
// (Tensor::channels_last); conv2d (8k channels), batchnorm_relu2d(_eval), maxpool2d,
// upsample_bilinear2x and concat_channels take channels-last x as it is, and their outputs keep
// the layout; a convolution that stays planar transposes it (to_planar), the other ops refuse it.
Tensor conv2d_prebias(const Tensor& x, const Tensor& w, const Tensor& b);
struct BatchNormState {
  Tensor running_mean, running_var;  // updated in place in training mode
  float momentum = 0.1f, eps = 1e-5f;
};
Tensor batchnorm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, BatchNormState& st,
                   bool training);
// relu(batchnorm2d(x, ..., training = true)) as one op (kernels/batchnorm.h): the same statistics
// and running-statistics update, the intermediate never stored. nn's ConvBnRelu uses it in
// training mode while fused_bn_relu() is on (kernels/runtime.h). x may be bf16 (conv2d_prebias's
// output, with its bias as x_bias): y is then bf16, the rounding of the fp32 op's y on
// float(x) + x_bias.
Tensor batchnorm_relu2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, BatchNormState& st,
                        const Tensor& x_bias = Tensor());
// relu(batchnorm2d(x, ..., training = false)) in one pass when no gradient is recorded (the split
// step's R on Y, evaluation); with a gradient to record, the two ops (fp32 x only). x, x_bias as
// batchnorm_relu2d's.
Tensor batchnorm_relu2d_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, BatchNormState& st,
                             const Tensor& x_bias = Tensor());
Tensor maxpool2d(const Tensor& x);             // 2x2, stride 2
Tensor upsample_bilinear2x(const Tensor& x);   // align_corners=True
Tensor avg_pool2d(const Tensor& x, int64_t k); // k x k, stride 1, zero padding k/2 counted
Tensor gaussian_blur(const Tensor& x, int k, double sigma);  // depthwise, zero padding k/2
Tensor matmul(const Tensor& a, const Tensor& b);             // [M,K] x [K,N]

}  // namespace caf
