// kernels/cuda/batchnorm.cu: batch normalisation through cuDNN's spatial mode; the inference-mode
// backward (not in cuDNN) as a functor plus one block per channel for the parameter gradients.
#include "kernels/batchnorm.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/memory.h"

namespace caf::cuda {

namespace {

const float kOne = 1.f, kZero = 0.f;

struct BnDescs {
  cudnnTensorDescriptor_t x = nullptr, bn = nullptr;
  explicit BnDescs(const Shape4& s) {
    CAF_CHECK_CUDNN(cudnnCreateTensorDescriptor(&x));
    CAF_CHECK_CUDNN(cudnnCreateTensorDescriptor(&bn));
    CAF_CHECK_CUDNN(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(s.n),
                                               int(s.c), int(s.h), int(s.w)));
    CAF_CHECK_CUDNN(cudnnSetTensor4dDescriptor(bn, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, int(s.c), 1, 1));
  }
  ~BnDescs() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(bn);
  }
  BnDescs(const BnDescs&) = delete;
  BnDescs& operator=(const BnDescs&) = delete;
};

// Per channel: sum gy and sum gy * (x - mean) * invstd, with running statistics.
__global__ void bn_eval_param_grads(const float* x, const float* gy, const float* running_mean,
                                    const float* running_var, Shape4 s, float eps, float* ggamma,
                                    float* gbeta) {
  int64_t c = blockIdx.x;
  float mean = running_mean[c], invstd = rsqrtf(running_var[c] + eps);
  float sg = 0.f, sgx = 0.f;
  for (int64_t j = threadIdx.x; j < s.n * s.hw(); j += blockDim.x) {
    int64_t i = (j / s.hw() * s.c + c) * s.hw() + j % s.hw();
    sg += gy[i];
    sgx += gy[i] * (x[i] - mean) * invstd;
  }
  sg = block_sum(sg);
  sgx = block_sum(sgx);
  if (threadIdx.x == 0) {
    if (ggamma) ggamma[c] += sgx;
    if (gbeta) gbeta[c] += sg;
  }
}

}  // namespace

void batchnorm_train_forward(const float* x, const float* gamma, const float* beta, float* y,
                             float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var, const BatchNormArgs& a) {
  BnDescs d(a.s);
  CAF_CHECK_CUDNN(cudnnBatchNormalizationForwardTraining(
      cudnn(), CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, d.x, x, d.x, y, d.bn, gamma, beta,
      a.momentum, running_mean, running_var, a.eps, save_mean, save_invstd));
}

void batchnorm_train_backward(const float* x, const float* gamma, const float* gy,
                              const float* save_mean, const float* save_invstd, float* gx,
                              float* ggamma, float* gbeta, const BatchNormArgs& a) {
  BnDescs d(a.s);
  // cuDNN writes all three results; absent ones go to scratch (beta 0 there, 1 where we accumulate).
  Buffer scratch_x, scratch_p;
  if (!gx) scratch_x = Buffer(Device::cuda, a.s.numel() * sizeof(float));
  if (!ggamma || !gbeta) scratch_p = Buffer(Device::cuda, 2 * a.s.c * sizeof(float));
  float* sp = static_cast<float*>(scratch_p.data());
  const float* beta_data = gx ? &kOne : &kZero;
  const float* beta_param = (ggamma && gbeta) ? &kOne : &kZero;
  if ((ggamma == nullptr) != (gbeta == nullptr)) {
    // Mixed: let cuDNN overwrite scratch, then add the one that is wanted.
    CAF_CHECK_CUDNN(cudnnBatchNormalizationBackward(
        cudnn(), CUDNN_BATCHNORM_SPATIAL, &kOne, beta_data, &kOne, &kZero, d.x, x, d.x, gy, d.x,
        gx ? gx : static_cast<float*>(scratch_x.data()), d.bn, gamma, sp, sp + a.s.c, a.eps,
        save_mean, save_invstd));
    float* dst = ggamma ? ggamma : gbeta;
    const float* src = ggamma ? sp : sp + a.s.c;
    for_each(a.s.c, [=] __device__(int64_t i) { dst[i] += src[i]; }, "batchnorm_train_backward");
    return;
  }
  CAF_CHECK_CUDNN(cudnnBatchNormalizationBackward(
      cudnn(), CUDNN_BATCHNORM_SPATIAL, &kOne, beta_data, &kOne, beta_param, d.x, x, d.x, gy, d.x,
      gx ? gx : static_cast<float*>(scratch_x.data()), d.bn, gamma, ggamma ? ggamma : sp,
      gbeta ? gbeta : sp + a.s.c, a.eps, save_mean, save_invstd));
}

void batchnorm_eval_forward(const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y,
                            const BatchNormArgs& a) {
  BnDescs d(a.s);
  CAF_CHECK_CUDNN(cudnnBatchNormalizationForwardInference(
      cudnn(), CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, d.x, x, d.x, y, d.bn, gamma, beta,
      running_mean, running_var, a.eps));
}

void batchnorm_eval_backward(const float* x, const float* gamma, const float* running_mean,
                             const float* running_var, const float* gy, float* gx, float* ggamma,
                             float* gbeta, const BatchNormArgs& a) {
  if (gx)
    for_each(a.s.numel(),
             BatchNormEvalGradInput<float>{gamma, running_var, gy, gx, a.s, float(a.eps)},
             "batchnorm_eval_backward/input");
  if (ggamma || gbeta) {
    bn_eval_param_grads<<<unsigned(a.s.c), 512, 0, stream()>>>(x, gy, running_mean, running_var,
                                                               a.s, float(a.eps), ggamma, gbeta);
    CAF_CHECK_LAUNCH("batchnorm_eval_backward/params");
  }
}

}  // namespace caf::cuda
