// kernels/cpu/batchnorm.cpp: batch normalisation reference, one channel per OpenMP task,
// statistics accumulated in double for float data.
#include <cmath>
#include <utility>

#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/cast.h"
#include "kernels/error.h"
#include "kernels/launch.h"

namespace caf::cpu {

namespace {
// Visit x[n, c, :, :] for every n.
template <class T, class F>
void for_channel(const T* x, const Shape4& s, int64_t c, F f) {
  for (int64_t n = 0; n < s.n; ++n) {
    const T* p = x + (n * s.c + c) * s.hw();
    for (int64_t i = 0; i < s.hw(); ++i) f((n * s.c + c) * s.hw() + i, p[i]);
  }
}
}  // namespace

// Channel c's batch statistics (two passes in acc_t): saves mean and 1/sqrt(biased var + eps),
// updates the running statistics, and returns {mean, invstd} unrounded.
template <class T>
std::pair<acc_t<T>, acc_t<T>> channel_statistics(const T* x, int64_t c, T* save_mean, T* save_invstd,
                                                  T* running_mean, T* running_var,
                                                  const BatchNormArgs& a) {
  const Shape4& s = a.s;
  const int64_t m = s.n * s.hw();
  acc_t<T> sum = 0, sq = 0;
  for_channel(x, s, c, [&](int64_t, T v) { sum += v; });
  const acc_t<T> mean = sum / m;
  for_channel(x, s, c, [&](int64_t, T v) { sq += (v - mean) * (v - mean); });
  const acc_t<T> var = sq / m;
  const acc_t<T> invstd = 1 / std::sqrt(var + a.eps);
  save_mean[c] = T(mean);
  save_invstd[c] = T(invstd);
  if (running_mean) running_mean[c] = T((1 - a.momentum) * running_mean[c] + a.momentum * mean);
  if (running_var) {
    const acc_t<T> unbiased = m > 1 ? sq / (m - 1) : var;
    running_var[c] = T((1 - a.momentum) * running_var[c] + a.momentum * unbiased);
  }
  return {mean, invstd};
}

template <class T>
void batchnorm_train_forward(const T* x, const T* gamma, const T* beta, T* y, T* save_mean,
                             T* save_invstd, T* running_mean, T* running_var,
                             const BatchNormArgs& a) {
  const Shape4& s = a.s;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelGrain)
  for (int64_t c = 0; c < s.c; ++c) {
    const auto [mean, invstd] =
        channel_statistics(x, c, save_mean, save_invstd, running_mean, running_var, a);
    for_channel(x, s, c, [&, mean = mean, invstd = invstd](int64_t i, T v) {
      y[i] = T((v - mean) * invstd * gamma[c] + beta[c]);
    });
  }
}

// The fused op works from the saved (rounded) statistics, as the CUDA kernels do, so that its
// backward recomputes exactly the forward's z.
template <class T>
void batchnorm_relu_apply(const T* x, const T* gamma, const T* beta, const T* save_mean,
                          const T* save_invstd, T* y, const BatchNormArgs& a) {
  const Shape4& s = a.s;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelGrain)
  for (int64_t nc = 0; nc < s.n * s.c; ++nc) {
    const int64_t c = nc % s.c;
    const T mean = save_mean[c], invstd = save_invstd[c], g = gamma[c], b = beta[c];
    const T* xp = x + nc * s.hw();
    T* yp = y + nc * s.hw();
    for (int64_t i = 0; i < s.hw(); ++i) {
      const T z = bn_relu_pre(xp[i], mean, invstd, g, b);
      yp[i] = z > T(0) ? z : T(0);
    }
  }
}

template <class T>
void batchnorm_relu_train_forward(const T* x, const T* gamma, const T* beta, T* y, T* save_mean,
                                  T* save_invstd, T* running_mean, T* running_var,
                                  const BatchNormArgs& a) {
  const Shape4& s = a.s;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelGrain)
  for (int64_t c = 0; c < s.c; ++c)
    channel_statistics(x, c, save_mean, save_invstd, running_mean, running_var, a);
  batchnorm_relu_apply(x, gamma, beta, save_mean, save_invstd, y, a);
}

template <class T>
void batchnorm_relu_train_backward(const T* x, const T* gamma, const T* beta, const T* gy,
                                   const T* save_mean, const T* save_invstd, T* gx, T* ggamma,
                                   T* gbeta, const BatchNormArgs& a) {
  const Shape4& s = a.s;
  const int64_t m = s.n * s.hw(), hw = s.hw();
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelGrain)
  for (int64_t c = 0; c < s.c; ++c) {
    const T mean = save_mean[c], invstd = save_invstd[c], g = gamma[c], b = beta[c];
    acc_t<T> sum_gz = 0, sum_gz_xc = 0;
    for (int64_t n = 0; n < s.n; ++n) {
      const T* xp = x + (n * s.c + c) * hw;
      const T* gp = gy + (n * s.c + c) * hw;
      for (int64_t i = 0; i < hw; ++i) {
        const T gz = bn_relu_gate(bn_relu_pre(xp[i], mean, invstd, g, b), gp[i]);
        sum_gz += gz;
        sum_gz_xc += acc_t<T>(gz) * (acc_t<T>(xp[i]) - mean);
      }
    }
    const acc_t<T> sum_gz_xhat = sum_gz_xc * invstd;
    if (gx) {
      const T ca = T(sum_gz / m), cb = T(sum_gz_xhat / m), gi = g * invstd;
      for (int64_t n = 0; n < s.n; ++n) {
        const int64_t base = (n * s.c + c) * hw;
        const T* xp = x + base;
        const T* gp = gy + base;
        T* gxp = gx + base;
        for (int64_t i = 0; i < hw; ++i) {
          const T gz = bn_relu_gate(bn_relu_pre(xp[i], mean, invstd, g, b), gp[i]);
          const T d = bn_relu_grad_input(gz, (xp[i] - mean) * invstd, gi, ca, cb);
          gxp[i] = a.overwrite_gx ? d : gxp[i] + d;
        }
      }
    }
    if (ggamma) ggamma[c] += T(sum_gz_xhat);
    if (gbeta) gbeta[c] += T(sum_gz);
  }
}

template <class T>
void batchnorm_train_backward(const T* x, const T* gamma, const T* gy, const T* save_mean,
                              const T* save_invstd, T* gx, T* ggamma, T* gbeta,
                              const BatchNormArgs& a) {
  const Shape4& s = a.s;
  const int64_t m = s.n * s.hw();
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelGrain)
  for (int64_t c = 0; c < s.c; ++c) {
    const acc_t<T> mean = save_mean[c], invstd = save_invstd[c];
    acc_t<T> sum_gy = 0, sum_gy_xhat = 0;
    for_channel(x, s, c, [&](int64_t i, T v) {
      sum_gy += gy[i];
      sum_gy_xhat += gy[i] * (v - mean) * invstd;
    });
    if (gx) {
      const acc_t<T> k = acc_t<T>(gamma[c]) * invstd / m;
      for_channel(x, s, c, [&](int64_t i, T v) {
        acc_t<T> xhat = (v - mean) * invstd;
        gx[i] += T(k * (m * acc_t<T>(gy[i]) - sum_gy - xhat * sum_gy_xhat));
      });
    }
    if (ggamma) ggamma[c] += T(sum_gy_xhat);
    if (gbeta) gbeta[c] += T(sum_gy);
  }
}

// y = x * scale + shift with per-channel scale = gamma / sqrt(var + eps) and
// shift = beta - mean * scale, as PyTorch's CPU kernel folds it.
namespace {
template <class T>
void eval_forward(const T* x, const T* gamma, const T* beta, const T* running_mean, const T* running_var,
                  T* y, const BatchNormArgs& a, bool relu) {
  const Shape4& s = a.s;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelGrain)
  for (int64_t nc = 0; nc < s.n * s.c; ++nc) {
    const int64_t c = nc % s.c;
    const T scale = gamma[c] / math_sqrt(running_var[c] + T(a.eps));
    const T shift = beta[c] - running_mean[c] * scale;
    const T* xp = x + nc * s.hw();
    T* yp = y + nc * s.hw();
    if (relu) {
      for (int64_t i = 0; i < s.hw(); ++i) {
        const T v = xp[i] * scale + shift;
        yp[i] = v > T(0) ? v : T(0);
      }
    } else {
      for (int64_t i = 0; i < s.hw(); ++i) yp[i] = xp[i] * scale + shift;
    }
  }
}
}  // namespace

template <class T>
void batchnorm_eval_forward(const T* x, const T* gamma, const T* beta, const T* running_mean,
                            const T* running_var, T* y, const BatchNormArgs& a) {
  eval_forward(x, gamma, beta, running_mean, running_var, y, a, false);
}

template <class T>
void batchnorm_relu_eval_forward(const T* x, const T* gamma, const T* beta, const T* running_mean,
                                 const T* running_var, T* y, const BatchNormArgs& a) {
  eval_forward(x, gamma, beta, running_mean, running_var, y, a, true);
}

template <class T>
void batchnorm_eval_backward(const T* x, const T* gamma, const T* running_mean,
                             const T* running_var, const T* gy, T* gx, T* ggamma, T* gbeta,
                             const BatchNormArgs& a) {
  const Shape4& s = a.s;
  if (gx)
    cpu_for_each(s.numel(), BatchNormEvalGradInput<T>{gamma, running_var, gy, gx, s, T(a.eps)});
  for (int64_t c = 0; c < s.c; ++c) {
    const acc_t<T> invstd = 1 / std::sqrt(acc_t<T>(running_var[c]) + T(a.eps));
    acc_t<T> sum_gy = 0, sum_gy_xhat = 0;
    for_channel(x, s, c, [&](int64_t i, T v) {
      sum_gy += gy[i];
      sum_gy_xhat += gy[i] * (v - running_mean[c]) * invstd;
    });
    if (ggamma) ggamma[c] += T(sum_gy_xhat);
    if (gbeta) gbeta[c] += T(sum_gy);
  }
}

#define CAF_INSTANTIATE(T)                                                                       \
  template void batchnorm_relu_apply<T>(const T*, const T*, const T*, const T*, const T*, T*,     \
                                        const BatchNormArgs&);                                  \
  template void batchnorm_relu_train_forward<T>(const T*, const T*, const T*, T*, T*, T*, T*, T*, \
                                                const BatchNormArgs&);                          \
  template void batchnorm_relu_train_backward<T>(const T*, const T*, const T*, const T*,        \
                                                 const T*, const T*, T*, T*, T*,                \
                                                 const BatchNormArgs&);                         \
  template void batchnorm_train_forward<T>(const T*, const T*, const T*, T*, T*, T*, T*, T*,    \
                                           const BatchNormArgs&);                               \
  template void batchnorm_train_backward<T>(const T*, const T*, const T*, const T*, const T*,   \
                                            T*, T*, T*, const BatchNormArgs&);                  \
  template void batchnorm_eval_forward<T>(const T*, const T*, const T*, const T*, const T*, T*, \
                                          const BatchNormArgs&);                                \
  template void batchnorm_relu_eval_forward<T>(const T*, const T*, const T*, const T*, const T*, \
                                               T*, const BatchNormArgs&);                       \
  template void batchnorm_eval_backward<T>(const T*, const T*, const T*, const T*, const T*,    \
                                           T*, T*, T*, const BatchNormArgs&);
CAF_INSTANTIATE(float)
CAF_INSTANTIATE(double)

// bf16 activations: the reference is the definition itself, the fp32 op on the widened input
// (cast_from_bf16's arithmetic) with its output rounded (cast_to_bf16's), planar; channels-last
// tensors (a.nhwc) are permuted to planar on the way in and back on the way out.
namespace {
std::vector<float> widened(const uint16_t* x, const float* xbias, const BatchNormArgs& a) {
  const Shape4& s = a.s;
  std::vector<float> v(size_t(s.numel()));
  if (a.nhwc) cast_from_bf16_nhwc(x, xbias, v.data(), s.n, s.c, s.hw());
  else cast_from_bf16(x, xbias, s.hw(), s.c, v.data(), s.numel());
  return v;
}
template <class F>
void rounded(const BatchNormArgs& a, uint16_t* y, F fp32_op) {
  const Shape4& s = a.s;
  std::vector<float> out(size_t(s.numel()));
  fp32_op(out.data());
  if (a.nhwc) cast_to_bf16_nhwc(out.data(), y, s.n, s.c, s.hw());
  else cast_to_bf16(out.data(), y, s.numel());
}
}  // namespace

void batchnorm_relu_train_forward_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                                       const float* beta, uint16_t* y, float* save_mean,
                                       float* save_invstd, float* running_mean, float* running_var,
                                       const BatchNormArgs& a) {
  const std::vector<float> xf = widened(x, xbias, a);
  rounded(a, y, [&](float* out) {
    batchnorm_relu_train_forward(xf.data(), gamma, beta, out, save_mean, save_invstd, running_mean, running_var, a);
  });
}
void batchnorm_relu_apply_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                               const float* beta, const float* save_mean, const float* save_invstd,
                               uint16_t* y, const BatchNormArgs& a) {
  const std::vector<float> xf = widened(x, xbias, a);
  rounded(a, y, [&](float* out) { batchnorm_relu_apply(xf.data(), gamma, beta, save_mean, save_invstd, out, a); });
}
void batchnorm_relu_train_backward_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                                        const float* beta, const void* gy, const float* save_mean,
                                        const float* save_invstd, void* gx, float* ggamma,
                                        float* gbeta, const BatchNormArgs& a) {
  CAF_REQUIRE(!a.gx_bf16 || a.overwrite_gx, "batchnorm_relu_train_backward_bf16: a bf16 gx is written, never added to");
  const std::vector<float> xf = widened(x, xbias, a);
  const Shape4& s = a.s;
  // A bf16 gy widened (exact), in its layout.
  std::vector<float> gy32(a.gy_bf16 ? size_t(s.numel()) : 0);
  if (a.gy_bf16) cast_from_bf16(static_cast<const uint16_t*>(gy), nullptr, 1, 1, gy32.data(), s.numel());
  const float* gyf = a.gy_bf16 ? gy32.data() : static_cast<const float*>(gy);
  if (!a.nhwc && !a.gx_bf16) {
    batchnorm_relu_train_backward(xf.data(), gamma, beta, gyf, save_mean, save_invstd, static_cast<float*>(gx), ggamma,
                                  gbeta, a);
    return;
  }
  // Planar copies of gy and of this call's gx contribution (written: overwrite), which is then
  // written into or added to gx in its layout (or rounded into a bf16 gx): the planar op's gx + d,
  // element for element.
  std::vector<float> gyp, d(gx ? size_t(s.numel()) : 0);
  if (a.nhwc) {
    gyp.resize(size_t(s.numel()));
    transpose_f32_from_nhwc(gyf, gyp.data(), s.n, s.c, s.hw(), false);
    gyf = gyp.data();
  }
  BatchNormArgs ap = a;
  ap.overwrite_gx = true;
  batchnorm_relu_train_backward(xf.data(), gamma, beta, gyf, save_mean, save_invstd, gx ? d.data() : nullptr, ggamma,
                                gbeta, ap);
  if (!gx) return;
  if (a.gx_bf16) {
    uint16_t* g16 = static_cast<uint16_t*>(gx);
    if (a.nhwc) cast_to_bf16_nhwc(d.data(), g16, s.n, s.c, s.hw());
    else cast_to_bf16(d.data(), g16, s.numel());
  } else {
    transpose_f32_to_nhwc(d.data(), static_cast<float*>(gx), s.n, s.c, s.hw(), !a.overwrite_gx);
  }
}
void batchnorm_relu_eval_forward_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                                      const float* beta, const float* running_mean,
                                      const float* running_var, uint16_t* y, const BatchNormArgs& a) {
  const std::vector<float> xf = widened(x, xbias, a);
  rounded(a, y, [&](float* out) {
    batchnorm_relu_eval_forward(xf.data(), gamma, beta, running_mean, running_var, out, a);
  });
}

}  // namespace caf::cpu
