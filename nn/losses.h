// nn/losses.h: DRAEM's three losses (METHOD 3.1), composed from differentiable ops.
//
//   l2_loss      mean((a - b)^2) over every element
//   ssim_loss    1 - mean(SSIM map): 11x11 Gaussian window (sigma 1.5), zero padding, per channel;
//                dynamic range L from the first argument (max > 128 -> 255 else 1;
//                min < -0.5 -> -1 else 0), C1 = (0.01 L)^2, C2 = (0.03 L)^2
//   focal_loss   on softmax(logits) over 2 channels; one-hot target from a {0,1} mask clamped to
//                [1e-5, 1 - 1e-5]; p_t = sum_c t_c p_c + 1e-5; mean of -(1 - p_t)^2 log(p_t)
// The SSIM range needs the reconstruction's min and max: one small device reduction, and C1, C2
// are computed from it on the device and added from there (add_scalar_at), so the loss never
// waits for the host: a training step makes no host round trip.
#pragma once

#include "nn/tensor.h"

namespace caf {

Tensor l2_loss(const Tensor& a, const Tensor& b);
Tensor ssim_loss(const Tensor& img1, const Tensor& img2, int window = 11, double sigma = 1.5);
Tensor focal_loss(const Tensor& logits, const Tensor& mask, float gamma = 2.f);

// [C1, C2] for img1, a 2-element tensor on its device; and the range L they come from (exposed for
// tests; ssim_dynamic_range reads the device).
Tensor ssim_constants(const Tensor& img1);
float ssim_dynamic_range(const Tensor& img1);

}  // namespace caf
