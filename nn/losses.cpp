#include "nn/losses.h"

#include <cmath>

#include "kernels/error.h"
#include "kernels/profile.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "nn/ops.h"

namespace caf {

Tensor l2_loss(const Tensor& a, const Tensor& b) { return mean(square(sub(a, b))); }

Tensor ssim_constants(const Tensor& img1) {
  profile::OpScope op_range("ssim_constants");
  Tensor mm = Tensor::empty({2}, DType::f32, img1.device()), c = Tensor::empty({2}, DType::f32, img1.device());
  reduce_minmax<float>(img1.device(), img1.data<float>(), img1.numel(), mm.data<float>());
  ssim_constants<float>(img1.device(), mm.data<float>(), c.data<float>());
  return c;
}

float ssim_dynamic_range(const Tensor& img1) {
  const float c2 = ssim_constants(img1).to_vector()[1];  // (0.03 L)^2
  return float(std::lround(std::sqrt(double(c2)) / 0.03));
}

Tensor ssim_loss(const Tensor& img1, const Tensor& img2, int window, double sigma) {
  CAF_REQUIRE_SHAPE(img1.shape() == img2.shape() && img1.ndim() == 4,
                    "ssim_loss: " + img1.describe() + " vs " + img2.describe());
  const Tensor c = ssim_constants(img1);  // [C1, C2], computed on the device: no host round trip
  auto blur = [&](const Tensor& t) { return gaussian_blur(t, window, sigma); };
  Tensor mu1 = blur(img1), mu2 = blur(img2);
  Tensor mu1_sq = square(mu1), mu2_sq = square(mu2), mu12 = mul(mu1, mu2);
  Tensor s1 = sub(blur(square(img1)), mu1_sq);
  Tensor s2 = sub(blur(square(img2)), mu2_sq);
  Tensor s12 = sub(blur(mul(img1, img2)), mu12);
  Tensor num = mul(add_scalar_at(scale(mu12, 2.f), c, 0), add_scalar_at(scale(s12, 2.f), c, 1));
  Tensor den = mul(add_scalar_at(add(mu1_sq, mu2_sq), c, 0), add_scalar_at(add(s1, s2), c, 1));
  return add_scalar(scale(mean(div(num, den)), -1.f), 1.f);
}

Tensor focal_loss(const Tensor& logits, const Tensor& mask, float gamma) {
  CAF_REQUIRE_SHAPE(logits.ndim() == 4 && logits.dim(1) == 2,
                    "focal_loss: logits must be N x 2 x H x W, got " + logits.describe());
  const Shape4 s = logits.shape4();
  CAF_REQUIRE_SHAPE(mask.shape() == Dims({s.n, 1, s.h, s.w}),
                    "focal_loss: mask " + mask.describe() + " for logits " + logits.describe());
  CAF_REQUIRE(gamma == 2.f, "focal_loss: only gamma = 2 (DRAEM's) is implemented");
  constexpr float kSmooth = 1e-5f;
  Tensor p = softmax_channels(logits);
  Tensor t1 = clamp(mask, kSmooth, 1 - kSmooth);                 // one-hot, anomalous channel
  Tensor t0 = clamp(add_scalar(scale(mask, -1.f), 1.f), kSmooth, 1 - kSmooth);  // normal channel
  Tensor pt = add_scalar(add(mul(t0, slice_channels(p, 0, 1)), mul(t1, slice_channels(p, 1, 2))),
                         kSmooth);
  Tensor weight = square(add_scalar(scale(pt, -1.f), 1.f));  // (1 - p_t)^gamma
  return mean(mul(weight, scale(log(pt), -1.f)));
}

}  // namespace caf
