// tests/emu/fake_cudnn.cpp: cuDNN's interface (tests/emu/include/cudnn.h) over caf's CPU
// references, for the emulated build (CAF_EMU=ON). Each call checks what caf passes (descriptor
// shapes against each other, "same" padding, alpha = 1, beta 0 or 1, a bf16 layout only with bf16
// data), then runs now or, while a stream is being captured, is recorded as a graph node with its
// arguments (descriptors copied). beta = 0 writes the output without reading it, as cuDNN does (a
// NaN-filled fresh buffer stays harmless); beta = 1 adds.
#include <cstring>
#include <vector>

#include "cudnn.h"
#include "kernels/batchnorm.h"
#include "kernels/cast.h"
#include "kernels/conv2d.h"
#include "tests/emu/cuda_emu.h"

struct cudnnContext {};
struct cudnnTensorStruct {
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  int n = 0, c = 0, h = 0, w = 0;
};
struct cudnnFilterStruct {
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int k = 0, c = 0, h = 0, w = 0;
};
struct cudnnConvolutionStruct {
  int pad_h = 0, pad_w = 0, u = 1, v = 1, dil_h = 1, dil_w = 1;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

namespace {

using caf::Conv2dShape;
using caf::Shape4;

// The convolution caf describes, or BAD_PARAM when the descriptors disagree or leave caf's one
// case (stride 1, dilation 1, square odd kernel, padding k / 2, cross-correlation; float, or bf16
// with matching layouts).
cudnnStatus_t conv_shape(const cudnnTensorStruct& x, const cudnnFilterStruct& w, const cudnnConvolutionStruct& c,
                         const cudnnTensorStruct& y, Conv2dShape* s) {
  const bool bf16 = x.type == CUDNN_DATA_BFLOAT16;
  if (x.type != y.type || x.type != w.type || x.format != y.format || x.format != w.format) return CUDNN_STATUS_BAD_PARAM;
  if (!bf16 && x.format != CUDNN_TENSOR_NCHW) return CUDNN_STATUS_NOT_SUPPORTED;  // caf never asks
  if (w.c != x.c || w.k != y.c || w.h != w.w || w.h % 2 != 1 || x.n != y.n || x.h != y.h || x.w != y.w)
    return CUDNN_STATUS_BAD_PARAM;
  if (c.pad_h != w.h / 2 || c.pad_w != w.w / 2 || c.u != 1 || c.v != 1 || c.dil_h != 1 || c.dil_w != 1 ||
      c.mode != CUDNN_CROSS_CORRELATION)
    return CUDNN_STATUS_NOT_SUPPORTED;
  *s = Conv2dShape{Shape4{x.n, x.c, x.h, x.w}, w.k, w.h, x.format == CUDNN_TENSOR_NHWC};
  return CUDNN_STATUS_SUCCESS;
}

// 0 (write), 1 (add) or -1 (a blend caf never asks for).
int blend(const void* alpha, const void* beta) {
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  if (a != 1.f) return -1;
  return b == 0.f ? 0 : b == 1.f ? 1 : -1;
}

// The workspace each emulated algorithm asks for: none for algorithm 0, as many bytes as the input
// tensor has for algorithm 1, so that caf's shared workspace grows and every call must pass a
// large enough one (checked at the call, as cuDNN does).
size_t workspace_bytes(int algo, const cudnnTensorStruct& x) {
  return algo == 1 ? size_t(x.n) * x.c * x.h * x.w * (x.type == CUDNN_DATA_BFLOAT16 ? 2 : 4) : 0;
}

// Find's answer (fastest first): algorithm 1 (faster, with a workspace; for the filter gradient not
// deterministic), then algorithm 0.
template <class Algo>
cudnnStatus_t algorithms(int requested, int* returned, cudnnAlgoPerfEmu<Algo>* perf, bool second_deterministic,
                         const cudnnTensorStruct& x) {
  const cudnnAlgoPerfEmu<Algo> list[2] = {
      {Algo(1), CUDNN_STATUS_SUCCESS, 0.5f, workspace_bytes(1, x),
       second_deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC, CUDNN_DEFAULT_MATH},
      {Algo(0), CUDNN_STATUS_SUCCESS, 1.f, 0, CUDNN_DETERMINISTIC, CUDNN_DEFAULT_MATH},
  };
  *returned = requested < 2 ? requested : 2;
  for (int i = 0; i < *returned; ++i) perf[i] = list[i];
  return CUDNN_STATUS_SUCCESS;
}

bool workspace_ok(int algo, const cudnnTensorStruct& x, const void* ws, size_t ws_bytes) {
  const size_t need = workspace_bytes(algo, x);
  return need == 0 || (ws != nullptr && ws_bytes >= need);
}

int g_refusals = 0;
cudnnStatus_t g_refusal = CUDNN_STATUS_SUCCESS;
// The refusal a test asked for (caf_emu::cudnn_refuse_next), or SUCCESS.
cudnnStatus_t take_refusal() {
  if (g_refusals <= 0) return CUDNN_STATUS_SUCCESS;
  --g_refusals;
  return g_refusal;
}

}  // namespace

void caf_emu::cudnn_refuse_next(int calls, cudnnStatus_t status) {
  g_refusals = calls;
  g_refusal = status;
}

const char* cudnnGetErrorString(cudnnStatus_t s) {
  switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM (emulated)";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED (emulated)";
    case CUDNN_STATUS_NOT_SUPPORTED_SHAPE: return "CUDNN_STATUS_NOT_SUPPORTED_SHAPE (emulated)";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
  }
  return "cuDNN error";
}
cudnnStatus_t cudnnCreate(cudnnHandle_t* h) {
  if (caf_emu::refuse_while_capturing()) return CUDNN_STATUS_INTERNAL_ERROR;
  *h = new cudnnContext();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t, cudaStream_t) { return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) {
  *d = new cudnnTensorStruct();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type,
                                         int n, int c, int h, int w) {
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  *d = cudnnTensorStruct{format, type, n, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) {
  *d = new cudnnFilterStruct();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  if (k <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  *d = cudnnFilterStruct{type, format, k, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) {
  *d = new cudnnConvolutionStruct();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
  if (compute != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  d->pad_h = pad_h, d->pad_w = pad_w, d->u = u, d->v = v, d->dil_h = dilation_h, d->dil_w = dilation_w, d->mode = mode;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  d->math = math;
  return CUDNN_STATUS_SUCCESS;
}

// Find runs the algorithms (forbidden inside a capture, which it invalidates); the heuristics
// (_v7) only rank them.
#define CAF_EMU_ALGOS(Name, Perf, A, B, C, x_of, timed, second_det)                                  \
  cudnnStatus_t Name(cudnnHandle_t, A a, B b, cudnnConvolutionDescriptor_t, C c, int requested, int* returned, \
                     Perf* perf) {                                                                          \
    (void)a, (void)b, (void)c;                                                                              \
    if (timed && caf_emu::refuse_while_capturing()) return CUDNN_STATUS_INTERNAL_ERROR;                    \
    return algorithms(requested, returned, perf, second_det, *(x_of));                                     \
  }
CAF_EMU_ALGOS(cudnnFindConvolutionForwardAlgorithm, cudnnConvolutionFwdAlgoPerf_t, cudnnTensorDescriptor_t,
              cudnnFilterDescriptor_t, cudnnTensorDescriptor_t, a, true, true)
CAF_EMU_ALGOS(cudnnGetConvolutionForwardAlgorithm_v7, cudnnConvolutionFwdAlgoPerf_t, cudnnTensorDescriptor_t,
              cudnnFilterDescriptor_t, cudnnTensorDescriptor_t, a, false, true)
CAF_EMU_ALGOS(cudnnFindConvolutionBackwardDataAlgorithm, cudnnConvolutionBwdDataAlgoPerf_t, cudnnFilterDescriptor_t,
              cudnnTensorDescriptor_t, cudnnTensorDescriptor_t, c, true, true)
CAF_EMU_ALGOS(cudnnGetConvolutionBackwardDataAlgorithm_v7, cudnnConvolutionBwdDataAlgoPerf_t, cudnnFilterDescriptor_t,
              cudnnTensorDescriptor_t, cudnnTensorDescriptor_t, c, false, true)
CAF_EMU_ALGOS(cudnnFindConvolutionBackwardFilterAlgorithm, cudnnConvolutionBwdFilterAlgoPerf_t, cudnnTensorDescriptor_t,
              cudnnTensorDescriptor_t, cudnnFilterDescriptor_t, a, true, false)
CAF_EMU_ALGOS(cudnnGetConvolutionBackwardFilterAlgorithm_v7, cudnnConvolutionBwdFilterAlgoPerf_t,
              cudnnTensorDescriptor_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t, a, false, false)
#undef CAF_EMU_ALGOS

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t xd, const void* x,
                                      cudnnFilterDescriptor_t wd, const void* w, cudnnConvolutionDescriptor_t cd,
                                      cudnnConvolutionFwdAlgo_t algo, void* ws, size_t ws_bytes, const void* beta,
                                      cudnnTensorDescriptor_t yd, void* y) {
  Conv2dShape s;
  if (const cudnnStatus_t st = conv_shape(*xd, *wd, *cd, *yd, &s)) return st;
  if (const cudnnStatus_t st = take_refusal()) return st;
  if (!workspace_ok(algo, *xd, ws, ws_bytes)) return CUDNN_STATUS_BAD_PARAM;
  if (blend(alpha, beta) != 0) return CUDNN_STATUS_NOT_SUPPORTED;  // caf's forward always writes
  const bool bf16 = xd->type == CUDNN_DATA_BFLOAT16;
  caf_emu::enqueue([=] {
    if (bf16)
      caf::cpu::conv2d_forward_bf16(static_cast<const uint16_t*>(x), static_cast<const uint16_t*>(w),
                                    static_cast<uint16_t*>(y), s);
    else
      caf::cpu::conv2d_forward<float>(static_cast<const float*>(x), static_cast<const float*>(w), nullptr,
                                      static_cast<float*>(y), s);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t, const void* alpha, cudnnFilterDescriptor_t wd, const void* w,
                                           cudnnTensorDescriptor_t dyd, const void* dy, cudnnConvolutionDescriptor_t cd,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* ws, size_t ws_bytes,
                                           const void* beta, cudnnTensorDescriptor_t dxd, void* dx) {
  Conv2dShape s;
  if (const cudnnStatus_t st = conv_shape(*dxd, *wd, *cd, *dyd, &s)) return st;
  if (const cudnnStatus_t st = take_refusal()) return st;
  if (!workspace_ok(algo, *dxd, ws, ws_bytes)) return CUDNN_STATUS_BAD_PARAM;
  const int mode = blend(alpha, beta);
  const bool bf16 = dxd->type == CUDNN_DATA_BFLOAT16;
  if (mode < 0 || (bf16 && mode != 0)) return CUDNN_STATUS_NOT_SUPPORTED;  // bf16: caf writes, then widens
  caf_emu::enqueue([=] {
    if (bf16)
      caf::cpu::conv2d_backward_data_bf16(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(dy),
                                          static_cast<uint16_t*>(dx), s);
    else
      caf::cpu::conv2d_backward_data<float>(static_cast<const float*>(w), static_cast<const float*>(dy),
                                            static_cast<float*>(dx), s, mode == 1);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t xd,
                                             const void* x, cudnnTensorDescriptor_t dyd, const void* dy,
                                             cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdFilterAlgo_t algo,
                                             void* ws, size_t ws_bytes, const void* beta, cudnnFilterDescriptor_t dwd,
                                             void* dw) {
  Conv2dShape s;
  if (const cudnnStatus_t st = conv_shape(*xd, *dwd, *cd, *dyd, &s)) return st;
  if (const cudnnStatus_t st = take_refusal()) return st;
  if (!workspace_ok(algo, *xd, ws, ws_bytes)) return CUDNN_STATUS_BAD_PARAM;
  const int mode = blend(alpha, beta);
  const bool bf16 = xd->type == CUDNN_DATA_BFLOAT16;
  if (mode < 0 || (bf16 && mode != 0)) return CUDNN_STATUS_NOT_SUPPORTED;
  caf_emu::enqueue([=] {
    if (bf16) {
      caf::cpu::conv2d_backward_filter_bf16(static_cast<const uint16_t*>(x), static_cast<const uint16_t*>(dy),
                                            static_cast<uint16_t*>(dw), s);
      return;
    }
    float* g = static_cast<float*>(dw);
    if (mode == 0) std::memset(g, 0, size_t(s.weight_numel()) * sizeof(float));
    caf::cpu::conv2d_backward_filter<float>(static_cast<const float*>(x), static_cast<const float*>(dy), g, s);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t dyd,
                                           const void* dy, const void* beta, cudnnTensorDescriptor_t dbd, void* db) {
  const int mode = blend(alpha, beta);
  if (mode < 0 || dyd->type != CUDNN_DATA_FLOAT || dyd->format != CUDNN_TENSOR_NCHW || dbd->c != dyd->c)
    return CUDNN_STATUS_NOT_SUPPORTED;
  const Conv2dShape s{Shape4{dyd->n, dyd->c, dyd->h, dyd->w}, dyd->c, 1, false};
  caf_emu::enqueue([=] {
    float* g = static_cast<float*>(db);
    if (mode == 0) std::memset(g, 0, size_t(s.k_out) * sizeof(float));
    caf::cpu::conv2d_backward_bias<float>(static_cast<const float*>(dy), g, s);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnAddTensor(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t ad, const void* a,
                             const void* beta, cudnnTensorDescriptor_t cd, void* c) {
  // caf adds a per-channel bias (1, C, 1, 1) to an NCHW float tensor: c = a[channel] + c.
  if (blend(alpha, beta) != 1 || ad->n != 1 || ad->h != 1 || ad->w != 1 || ad->c != cd->c ||
      cd->type != CUDNN_DATA_FLOAT || cd->format != CUDNN_TENSOR_NCHW)
    return CUDNN_STATUS_NOT_SUPPORTED;
  const cudnnTensorStruct t = *cd;
  caf_emu::enqueue([=] {
    const float* b = static_cast<const float*>(a);
    float* y = static_cast<float*>(c);
    const size_t hw = size_t(t.h) * t.w;
    for (size_t i = 0; i < size_t(t.n) * t.c * hw; ++i) y[i] = b[(i / hw) % size_t(t.c)] + y[i];
  });
  return CUDNN_STATUS_SUCCESS;
}

namespace {
caf::BatchNormArgs bn_args(const cudnnTensorStruct& x, double eps, double momentum) {
  return caf::BatchNormArgs{Shape4{x.n, x.c, x.h, x.w}, eps, momentum};
}
bool bn_ok(cudnnBatchNormMode_t mode, const cudnnTensorStruct& x, const cudnnTensorStruct& y,
           const cudnnTensorStruct& bn) {
  return mode == CUDNN_BATCHNORM_SPATIAL && x.type == CUDNN_DATA_FLOAT && x.format == CUDNN_TENSOR_NCHW &&
         y.n == x.n && y.c == x.c && y.h == x.h && y.w == x.w && bn.n == 1 && bn.c == x.c && bn.h == 1 &&
         bn.w == 1 && bn.type == CUDNN_DATA_FLOAT;
}
}  // namespace

cudnnStatus_t cudnnBatchNormalizationForwardTraining(cudnnHandle_t, cudnnBatchNormMode_t mode, const void* alpha,
                                                     const void* beta, cudnnTensorDescriptor_t xd, const void* x,
                                                     cudnnTensorDescriptor_t yd, void* y, cudnnTensorDescriptor_t bnd,
                                                     const void* scale, const void* bias, double factor,
                                                     void* running_mean, void* running_var, double eps,
                                                     void* save_mean, void* save_invstd) {
  if (!bn_ok(mode, *xd, *yd, *bnd) || blend(alpha, beta) != 0) return CUDNN_STATUS_NOT_SUPPORTED;
  const caf::BatchNormArgs a = bn_args(*xd, eps, factor);
  caf_emu::enqueue([=] {
    caf::cpu::batchnorm_train_forward<float>(
        static_cast<const float*>(x), static_cast<const float*>(scale), static_cast<const float*>(bias),
        static_cast<float*>(y), static_cast<float*>(save_mean), static_cast<float*>(save_invstd),
        static_cast<float*>(running_mean), static_cast<float*>(running_var), a);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBatchNormalizationForwardInference(cudnnHandle_t, cudnnBatchNormMode_t mode, const void* alpha,
                                                      const void* beta, cudnnTensorDescriptor_t xd, const void* x,
                                                      cudnnTensorDescriptor_t yd, void* y,
                                                      cudnnTensorDescriptor_t bnd, const void* scale, const void* bias,
                                                      const void* mean, const void* var, double eps) {
  if (!bn_ok(mode, *xd, *yd, *bnd) || blend(alpha, beta) != 0) return CUDNN_STATUS_NOT_SUPPORTED;
  const caf::BatchNormArgs a = bn_args(*xd, eps, 0.1);
  caf_emu::enqueue([=] {
    caf::cpu::batchnorm_eval_forward<float>(static_cast<const float*>(x), static_cast<const float*>(scale),
                                            static_cast<const float*>(bias), static_cast<const float*>(mean),
                                            static_cast<const float*>(var), static_cast<float*>(y), a);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBatchNormalizationBackward(cudnnHandle_t, cudnnBatchNormMode_t mode, const void* alpha_data,
                                              const void* beta_data, const void* alpha_param, const void* beta_param,
                                              cudnnTensorDescriptor_t xd, const void* x, cudnnTensorDescriptor_t dyd,
                                              const void* dy, cudnnTensorDescriptor_t dxd, void* dx,
                                              cudnnTensorDescriptor_t bnd, const void* scale, void* dscale,
                                              void* dbias, double eps, const void* save_mean,
                                              const void* save_invstd) {
  const int data = blend(alpha_data, beta_data), param = blend(alpha_param, beta_param);
  if (!bn_ok(mode, *xd, *dyd, *bnd) || !bn_ok(mode, *xd, *dxd, *bnd) || data < 0 || param < 0)
    return CUDNN_STATUS_NOT_SUPPORTED;
  const caf::BatchNormArgs a = bn_args(*xd, eps, 0.1);
  caf_emu::enqueue([=] {
    float* gx = static_cast<float*>(dx);
    float* gg = static_cast<float*>(dscale);
    float* gb = static_cast<float*>(dbias);
    if (data == 0) std::memset(gx, 0, size_t(a.s.numel()) * sizeof(float));
    if (param == 0) {
      std::memset(gg, 0, size_t(a.s.c) * sizeof(float));
      std::memset(gb, 0, size_t(a.s.c) * sizeof(float));
    }
    caf::cpu::batchnorm_train_backward<float>(static_cast<const float*>(x), static_cast<const float*>(scale),
                                              static_cast<const float*>(dy), static_cast<const float*>(save_mean),
                                              static_cast<const float*>(save_invstd), gx, gg, gb, a);
  });
  return CUDNN_STATUS_SUCCESS;
}
