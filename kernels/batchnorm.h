// kernels/batchnorm.h: 2-D batch normalisation over (N, H, W) per channel, PyTorch semantics.
//
//   batchnorm_train_forward   y = gamma * (x - mean_B) * invstd_B + beta                (=)
//       writes save_mean, save_invstd = 1/sqrt(var_B + eps) (biased var) for the backward, and
//       updates running_mean/var (if non-null) with momentum, running_var from the *unbiased*
//       batch variance: r = (1 - momentum) * r + momentum * v.
//   batchnorm_train_backward  gx, ggamma, gbeta += (batch statistics are functions of x)  (+=)
//   batchnorm_eval_forward    y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta  (=)
//   batchnorm_eval_backward   gx, ggamma, gbeta += (running statistics are constants)       (+=)
// gx, ggamma, gbeta may each be null. CUDA: cuDNN's spatial batch norm for the first three, a
// functor plus per-channel reductions for the last.
//
// Fused training-mode batch norm + ReLU (every batch norm in DRAEM's networks feeds a ReLU):
//   batchnorm_relu_train_forward   y = max(z, 0), z = (x - mean_B) * (invstd_B * gamma) + beta   (=)
//       same statistics, saved values and running-statistics update as batchnorm_train_forward.
//   batchnorm_relu_train_backward  gx, ggamma, gbeta += the gradients of y through z's mask   (+=)
//       The mask z > 0 is recomputed from x and the saved statistics by the same float expression
//       (bn_relu_pre below), so the intermediate z is never stored: one activation less in
//       memory and two elementwise passes less than batch norm followed by ReLU.
//   batchnorm_relu_eval_forward    y = max(batchnorm_eval_forward(x), 0) in one pass (=), for
//       inference-mode passes that record no gradient (the split step's R on Y, evaluation).
//   batchnorm_relu_apply           y = max(z, 0) from saved statistics (=): the forward's second
//       half alone, bit for bit the y the forward wrote; the backward of a convolution that reads
//       y recomputes it this way instead of keeping it (nn/ops.cpp, recompute_activations()).
// CUDA: caf's own kernels (no cuDNN): per-(channel, chunk) partial sums in double in a fixed
// order, one finalising thread per channel, then one elementwise pass; deterministic.
//
// The same four on bf16 activations (bf16_activations(), kernels/runtime.h), the _bf16 variants:
// x is a convolution's raw bf16 output and xbias its bias (per channel, may be null), so the op's
// input is float(x) + xbias[c] (exactly cast_from_bf16's value, never stored); y is bf16 (the
// fp32 y rounded, which is what the next convolution's cast would have made of it); statistics,
// parameters and gradients stay fp32 (the backward's gy and gx may be bf16: BatchNormArgs::gy_bf16,
// gx_bf16). Each is, bit for bit, its fp32 twin on the widened input with the output rounded (the
// CPU reference computes it that way). With BatchNormArgs::nhwc the
// tensors are channels-last: the CPU reference permutes to planar and back; CUDA has its own
// channels-last kernels (statistics summed in another order: the same up to double rounding).
#pragma once

#include <type_traits>

#include "kernels/dispatch.h"
#include "kernels/elementwise_math.h"

namespace caf {

struct BatchNormArgs {
  Shape4 s;
  double eps = 1e-5;
  double momentum = 0.1;
  // batchnorm_relu_train_backward(_bf16) only: gx = instead of += (write-first gradients,
  // nn/autograd.h); ggamma and gbeta still accumulate.
  bool overwrite_gx = false;
  // The _bf16 functions only: x, y, gy and gx channels-last (N, H, W, C; channels-last
  // activations, kernels/runtime.h), the logical shape s unchanged. The same values, permuted.
  bool nhwc = false;
  // batchnorm_relu_train_backward_bf16 only (bf16 gradients, kernels/runtime.h): gy holds bf16
  // (uint16_t) values, read widened; gx receives bf16 values, the fp32 gx rounded (write only:
  // overwrite_gx). Otherwise both are float.
  bool gy_bf16 = false;
  bool gx_bf16 = false;
};

// gx += gamma * invstd * gy for the inference-mode backward (statistics are constants).
template <class T>
struct BatchNormEvalGradInput {
  const T* gamma;
  const T* running_var;
  const T* gy;
  T* gx;
  Shape4 s;
  T eps;
  CAF_HD void operator()(int64_t i) const {
    int64_t c = (i / s.hw()) % s.c;
    gx[i] += gy[i] * gamma[c] / math_sqrt(running_var[c] + eps);
  }
};

// The pre-activation of the fused op, identical in its forward and backward passes (the mask),
// and rounded identically on the CPU and the GPU: every operation rounds on its own (nvcc would
// otherwise contract the multiply-add into an FMA; the CPU file compiles with -ffp-contract=off),
// so a value near 0 cannot fall on different sides of the mask on the two devices.
template <class T>
CAF_HD T bn_relu_pre(T x, T mean, T invstd, T gamma, T beta) {
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, float>)
    return __fadd_rn(__fmul_rn(__fsub_rn(x, mean), __fmul_rn(invstd, gamma)), beta);
#endif
  return (x - mean) * (invstd * gamma) + beta;
}

// ReLU's gate on the gradient: gy where z > 0, else 0 (a select, as PyTorch's threshold_backward).
template <class T>
CAF_HD T bn_relu_gate(T z, T gy) {
  return z > T(0) ? gy : T(0);
}

// The fused op's input gradient for one element: with gz = gy * (z > 0) and per-channel
// a = sum(gz) / m, b = sum(gz * xhat) / m, gx = gamma * invstd * (gz - a - xhat * b).
template <class T>
CAF_HD T bn_relu_grad_input(T gz, T xhat, T gamma_invstd, T a, T b) {
  return gamma_invstd * (gz - a - xhat * b);
}

namespace cpu {
template <class T>
void batchnorm_relu_train_forward(const T* x, const T* gamma, const T* beta, T* y, T* save_mean,
                                  T* save_invstd, T* running_mean, T* running_var,
                                  const BatchNormArgs& a);
template <class T>
void batchnorm_relu_train_backward(const T* x, const T* gamma, const T* beta, const T* gy,
                                   const T* save_mean, const T* save_invstd, T* gx, T* ggamma,
                                   T* gbeta, const BatchNormArgs& a);
template <class T>
void batchnorm_relu_apply(const T* x, const T* gamma, const T* beta, const T* save_mean,
                          const T* save_invstd, T* y, const BatchNormArgs& a);
template <class T>
void batchnorm_relu_eval_forward(const T* x, const T* gamma, const T* beta, const T* running_mean,
                                 const T* running_var, T* y, const BatchNormArgs& a);
template <class T>
void batchnorm_train_forward(const T* x, const T* gamma, const T* beta, T* y, T* save_mean,
                             T* save_invstd, T* running_mean, T* running_var,
                             const BatchNormArgs& a);
template <class T>
void batchnorm_train_backward(const T* x, const T* gamma, const T* gy, const T* save_mean,
                              const T* save_invstd, T* gx, T* ggamma, T* gbeta,
                              const BatchNormArgs& a);
template <class T>
void batchnorm_eval_forward(const T* x, const T* gamma, const T* beta, const T* running_mean,
                            const T* running_var, T* y, const BatchNormArgs& a);
template <class T>
void batchnorm_eval_backward(const T* x, const T* gamma, const T* running_mean,
                             const T* running_var, const T* gy, T* gx, T* ggamma, T* gbeta,
                             const BatchNormArgs& a);
void batchnorm_relu_train_forward_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                                       const float* beta, uint16_t* y, float* save_mean,
                                       float* save_invstd, float* running_mean, float* running_var,
                                       const BatchNormArgs& a);
void batchnorm_relu_train_backward_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                                        const float* beta, const void* gy, const float* save_mean,
                                        const float* save_invstd, void* gx, float* ggamma,
                                        float* gbeta, const BatchNormArgs& a);
void batchnorm_relu_apply_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                               const float* beta, const float* save_mean, const float* save_invstd,
                               uint16_t* y, const BatchNormArgs& a);
void batchnorm_relu_eval_forward_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                                      const float* beta, const float* running_mean,
                                      const float* running_var, uint16_t* y, const BatchNormArgs& a);
}  // namespace cpu

namespace cuda {
void batchnorm_relu_train_forward_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                                       const float* beta, uint16_t* y, float* save_mean,
                                       float* save_invstd, float* running_mean, float* running_var,
                                       const BatchNormArgs& a);
void batchnorm_relu_train_backward_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                                        const float* beta, const void* gy, const float* save_mean,
                                        const float* save_invstd, void* gx, float* ggamma,
                                        float* gbeta, const BatchNormArgs& a);
void batchnorm_relu_apply_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                               const float* beta, const float* save_mean, const float* save_invstd,
                               uint16_t* y, const BatchNormArgs& a);
void batchnorm_relu_eval_forward_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                                      const float* beta, const float* running_mean,
                                      const float* running_var, uint16_t* y, const BatchNormArgs& a);
void batchnorm_relu_train_forward(const float* x, const float* gamma, const float* beta, float* y,
                                  float* save_mean, float* save_invstd, float* running_mean,
                                  float* running_var, const BatchNormArgs& a);
void batchnorm_relu_train_backward(const float* x, const float* gamma, const float* beta,
                                   const float* gy, const float* save_mean, const float* save_invstd,
                                   float* gx, float* ggamma, float* gbeta, const BatchNormArgs& a);
void batchnorm_relu_apply(const float* x, const float* gamma, const float* beta,
                          const float* save_mean, const float* save_invstd, float* y,
                          const BatchNormArgs& a);
void batchnorm_relu_eval_forward(const float* x, const float* gamma, const float* beta,
                                 const float* running_mean, const float* running_var, float* y,
                                 const BatchNormArgs& a);
void batchnorm_train_forward(const float* x, const float* gamma, const float* beta, float* y,
                             float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var, const BatchNormArgs& a);
void batchnorm_train_backward(const float* x, const float* gamma, const float* gy,
                              const float* save_mean, const float* save_invstd, float* gx,
                              float* ggamma, float* gbeta, const BatchNormArgs& a);
void batchnorm_eval_forward(const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y,
                            const BatchNormArgs& a);
void batchnorm_eval_backward(const float* x, const float* gamma, const float* running_mean,
                             const float* running_var, const float* gy, float* gx, float* ggamma,
                             float* gbeta, const BatchNormArgs& a);
}  // namespace cuda

template <class T>
void batchnorm_relu_train_forward(Device d, const T* x, const T* gamma, const T* beta, T* y,
                                  T* save_mean, T* save_invstd, T* running_mean, T* running_var,
                                  const BatchNormArgs& a) {
  CAF_DISPATCH(T, d, batchnorm_relu_train_forward, x, gamma, beta, y, save_mean, save_invstd,
               running_mean, running_var, a);
}
template <class T>
void batchnorm_relu_train_backward(Device d, const T* x, const T* gamma, const T* beta, const T* gy,
                                   const T* save_mean, const T* save_invstd, T* gx, T* ggamma,
                                   T* gbeta, const BatchNormArgs& a) {
  CAF_DISPATCH(T, d, batchnorm_relu_train_backward, x, gamma, beta, gy, save_mean, save_invstd, gx,
               ggamma, gbeta, a);
}
template <class T>
void batchnorm_relu_apply(Device d, const T* x, const T* gamma, const T* beta, const T* save_mean,
                          const T* save_invstd, T* y, const BatchNormArgs& a) {
  CAF_DISPATCH(T, d, batchnorm_relu_apply, x, gamma, beta, save_mean, save_invstd, y, a);
}
template <class T>
void batchnorm_relu_eval_forward(Device d, const T* x, const T* gamma, const T* beta, const T* running_mean,
                                 const T* running_var, T* y, const BatchNormArgs& a) {
  CAF_DISPATCH(T, d, batchnorm_relu_eval_forward, x, gamma, beta, running_mean, running_var, y, a);
}
template <class T>
void batchnorm_train_forward(Device d, const T* x, const T* gamma, const T* beta, T* y,
                             T* save_mean, T* save_invstd, T* running_mean, T* running_var,
                             const BatchNormArgs& a) {
  CAF_DISPATCH(T, d, batchnorm_train_forward, x, gamma, beta, y, save_mean, save_invstd,
               running_mean, running_var, a);
}
template <class T>
void batchnorm_train_backward(Device d, const T* x, const T* gamma, const T* gy, const T* save_mean,
                              const T* save_invstd, T* gx, T* ggamma, T* gbeta,
                              const BatchNormArgs& a) {
  CAF_DISPATCH(T, d, batchnorm_train_backward, x, gamma, gy, save_mean, save_invstd, gx, ggamma,
               gbeta, a);
}
template <class T>
void batchnorm_eval_forward(Device d, const T* x, const T* gamma, const T* beta,
                            const T* running_mean, const T* running_var, T* y,
                            const BatchNormArgs& a) {
  CAF_DISPATCH(T, d, batchnorm_eval_forward, x, gamma, beta, running_mean, running_var, y, a);
}
template <class T>
void batchnorm_eval_backward(Device d, const T* x, const T* gamma, const T* running_mean,
                             const T* running_var, const T* gy, T* gx, T* ggamma, T* gbeta,
                             const BatchNormArgs& a) {
  CAF_DISPATCH(T, d, batchnorm_eval_backward, x, gamma, running_mean, running_var, gy, gx, ggamma,
               gbeta, a);
}

inline void batchnorm_relu_train_forward_bf16(Device d, const uint16_t* x, const float* xbias, const float* gamma,
                                              const float* beta, uint16_t* y, float* save_mean,
                                              float* save_invstd, float* running_mean, float* running_var,
                                              const BatchNormArgs& a) {
  CAF_DISPATCH_PLAIN(d, batchnorm_relu_train_forward_bf16, x, xbias, gamma, beta, y, save_mean, save_invstd,
                     running_mean, running_var, a);
}
inline void batchnorm_relu_train_backward_bf16(Device d, const uint16_t* x, const float* xbias,
                                               const float* gamma, const float* beta, const void* gy,
                                               const float* save_mean, const float* save_invstd, void* gx,
                                               float* ggamma, float* gbeta, const BatchNormArgs& a) {
  CAF_DISPATCH_PLAIN(d, batchnorm_relu_train_backward_bf16, x, xbias, gamma, beta, gy, save_mean, save_invstd,
                     gx, ggamma, gbeta, a);
}
inline void batchnorm_relu_apply_bf16(Device d, const uint16_t* x, const float* xbias, const float* gamma,
                                      const float* beta, const float* save_mean, const float* save_invstd,
                                      uint16_t* y, const BatchNormArgs& a) {
  CAF_DISPATCH_PLAIN(d, batchnorm_relu_apply_bf16, x, xbias, gamma, beta, save_mean, save_invstd, y, a);
}
inline void batchnorm_relu_eval_forward_bf16(Device d, const uint16_t* x, const float* xbias, const float* gamma,
                                             const float* beta, const float* running_mean,
                                             const float* running_var, uint16_t* y, const BatchNormArgs& a) {
  CAF_DISPATCH_PLAIN(d, batchnorm_relu_eval_forward_bf16, x, xbias, gamma, beta, running_mean, running_var, y, a);
}

}  // namespace caf
