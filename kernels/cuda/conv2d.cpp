// kernels/cuda/conv2d.cpp: convolution through cuDNN.
//
// Key decisions: one plan per shape (descriptors and the three algorithms), found once with
// cudnnFind* and cached; only deterministic algorithms are kept unless caf::deterministic() is
// off (kernels/runtime.h), so two runs give identical gradients; fp32 FMA math, or TF32 tensor
// cores when caf::precision() is tf32; plans are cached per (shape, precision, determinism); one
// shared workspace (context.cpp).
// Backward passes accumulate through cuDNN's beta = 1.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/conv2d.h"
#include "kernels/cuda/check.h"
#include "kernels/runtime.h"

namespace caf::cuda {

namespace {


struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_ws = 0, bwd_data_ws = 0, bwd_filter_ws = 0;
};

template <class Perf>
const Perf& pick(const Perf* perf, int count, const char* what, bool deterministic_only) {
  for (int i = 0; i < count; ++i)  // sorted fastest first
    if (perf[i].status == CUDNN_STATUS_SUCCESS &&
        (!deterministic_only || perf[i].determinism == CUDNN_DETERMINISTIC))
      return perf[i];
  for (int i = 0; i < count && deterministic_only; ++i)  // none deterministic: say so, take the fastest
    if (perf[i].status == CUDNN_STATUS_SUCCESS) {
      std::fprintf(stderr, "caf: note: no deterministic cuDNN algorithm for %s at this shape; using a "
                           "non-deterministic one (two runs may differ in the last bits)\n", what);
      return perf[i];
    }
  throw CudnnError(std::string("no deterministic cuDNN algorithm for ") + what,
                   "this convolution shape is not supported by the installed cuDNN");
}

ConvPlan make_plan(const Conv2dShape& s, bool tf32, bool det, bool bf16) {
  ConvPlan p;
  const int n = int(s.x.n), c = int(s.x.c), h = int(s.x.h), w = int(s.x.w), k = int(s.k_out);
  const int ks = int(s.k), pad = int(s.k / 2);
  CAF_CHECK_CUDNN(cudnnCreateTensorDescriptor(&p.x));
  CAF_CHECK_CUDNN(cudnnCreateTensorDescriptor(&p.y));
  CAF_CHECK_CUDNN(cudnnCreateTensorDescriptor(&p.bias));
  CAF_CHECK_CUDNN(cudnnCreateFilterDescriptor(&p.w));
  CAF_CHECK_CUDNN(cudnnCreateConvolutionDescriptor(&p.conv));
  // bf16: bf16 tensors and filters, fp32 accumulation (cuDNN's "pseudo" bf16 configuration).
  const cudnnDataType_t data = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  CAF_CHECK_CUDNN(cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, data, n, c, h, w));
  CAF_CHECK_CUDNN(cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, data, n, k, h, w));
  CAF_CHECK_CUDNN(cudnnSetTensor4dDescriptor(p.bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, k, 1, 1));
  CAF_CHECK_CUDNN(cudnnSetFilter4dDescriptor(p.w, data, CUDNN_TENSOR_NCHW, k, c, ks, ks));
  CAF_CHECK_CUDNN(cudnnSetConvolution2dDescriptor(p.conv, pad, pad, 1, 1, 1, 1,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CAF_CHECK_CUDNN(cudnnSetConvolutionMathType(
      p.conv, bf16 ? CUDNN_TENSOR_OP_MATH : tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));

  cudnnHandle_t h_ = cudnn();
  constexpr int kMax = 16;
  int got = 0;
  cudnnConvolutionFwdAlgoPerf_t fwd[kMax];
  CAF_CHECK_CUDNN(cudnnFindConvolutionForwardAlgorithm(h_, p.x, p.w, p.conv, p.y, kMax, &got, fwd));
  const auto& f = pick(fwd, got, "conv2d forward", det);
  p.fwd = f.algo;
  p.fwd_ws = f.memory;
  cudnnConvolutionBwdDataAlgoPerf_t bd[kMax];
  CAF_CHECK_CUDNN(cudnnFindConvolutionBackwardDataAlgorithm(h_, p.w, p.y, p.conv, p.x, kMax, &got, bd));
  const auto& d = pick(bd, got, "conv2d backward data", det);
  p.bwd_data = d.algo;
  p.bwd_data_ws = d.memory;
  cudnnConvolutionBwdFilterAlgoPerf_t bf[kMax];
  CAF_CHECK_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithm(h_, p.x, p.y, p.conv, p.w, kMax, &got, bf));
  const auto& g = pick(bf, got, "conv2d backward filter", det);
  p.bwd_filter = g.algo;
  p.bwd_filter_ws = g.memory;
  return p;
}

const ConvPlan& plan(const Conv2dShape& s, bool bf16 = false) {
  static std::mutex m;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool>;
  static std::map<Key, ConvPlan>* cache = new std::map<Key, ConvPlan>();
  const bool tf32 = !bf16 && precision() != Precision::fp32, det = deterministic();
  Key key = std::make_tuple(s.x.n, s.x.c, s.x.h, s.x.w, s.k_out, s.k, tf32, det, bf16);
  std::lock_guard<std::mutex> lock(m);
  auto it = cache->find(key);
  if (it == cache->end()) it = cache->emplace(key, make_plan(s, tf32, det, bf16)).first;
  return it->second;
}

const float kOne = 1.f, kZero = 0.f;

}  // namespace

void conv2d_forward(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s) {
  const ConvPlan& p = plan(s);
  void* ws = workspace(p.fwd_ws);
  CAF_CHECK_CUDNN(cudnnConvolutionForward(cudnn(), &kOne, p.x, x, p.w, w, p.conv, p.fwd, ws,
                                          p.fwd_ws, &kZero, p.y, y));
  if (b) CAF_CHECK_CUDNN(cudnnAddTensor(cudnn(), &kOne, p.bias, b, &kOne, p.y, y));
}

void conv2d_backward_data(const float* w, const float* gy, float* gx, const Conv2dShape& s) {
  const ConvPlan& p = plan(s);
  void* ws = workspace(p.bwd_data_ws);
  CAF_CHECK_CUDNN(cudnnConvolutionBackwardData(cudnn(), &kOne, p.w, w, p.y, gy, p.conv, p.bwd_data,
                                               ws, p.bwd_data_ws, &kOne, p.x, gx));
}

void conv2d_backward_filter(const float* x, const float* gy, float* gw, const Conv2dShape& s) {
  const ConvPlan& p = plan(s);
  void* ws = workspace(p.bwd_filter_ws);
  CAF_CHECK_CUDNN(cudnnConvolutionBackwardFilter(cudnn(), &kOne, p.x, x, p.y, gy, p.conv,
                                                 p.bwd_filter, ws, p.bwd_filter_ws, &kOne, p.w, gw));
}

void conv2d_backward_bias(const float* gy, float* gb, const Conv2dShape& s) {
  const ConvPlan& p = plan(s);
  CAF_CHECK_CUDNN(cudnnConvolutionBackwardBias(cudnn(), &kOne, p.y, gy, &kOne, p.bias, gb));
}

void conv2d_forward_bf16(const uint16_t* x, const uint16_t* w, uint16_t* y, const Conv2dShape& s) {
  const ConvPlan& p = plan(s, true);
  void* ws = workspace(p.fwd_ws);
  CAF_CHECK_CUDNN(cudnnConvolutionForward(cudnn(), &kOne, p.x, x, p.w, w, p.conv, p.fwd, ws, p.fwd_ws,
                                          &kZero, p.y, y));
}

void conv2d_backward_data_bf16(const uint16_t* w, const uint16_t* gy, uint16_t* gx, const Conv2dShape& s) {
  const ConvPlan& p = plan(s, true);
  void* ws = workspace(p.bwd_data_ws);
  CAF_CHECK_CUDNN(cudnnConvolutionBackwardData(cudnn(), &kOne, p.w, w, p.y, gy, p.conv, p.bwd_data, ws,
                                               p.bwd_data_ws, &kZero, p.x, gx));
}

void conv2d_backward_filter_bf16(const uint16_t* x, const uint16_t* gy, uint16_t* gw, const Conv2dShape& s) {
  const ConvPlan& p = plan(s, true);
  void* ws = workspace(p.bwd_filter_ws);
  CAF_CHECK_CUDNN(cudnnConvolutionBackwardFilter(cudnn(), &kOne, p.x, x, p.y, gy, p.conv, p.bwd_filter, ws,
                                                 p.bwd_filter_ws, &kZero, p.w, gw));
}

}  // namespace caf::cuda
