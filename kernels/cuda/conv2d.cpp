// kernels/cuda/conv2d.cpp: convolution through cuDNN.
//
// Key decisions: one plan per shape (descriptors and, per direction, the algorithms Find timed
// or, with timed_algorithms() off, cuDNN's heuristics ranked), found once and cached;
// deterministic algorithms first, the others only when caf::deterministic() is off
// (kernels/runtime.h) or cuDNN refuses every deterministic one, so a process repeats its gradients
// bit for bit. Find times the algorithms afresh in each process, so two processes (a run and its
// resumption) may order close ones differently and differ in the last bits (tools/gpu_check.sh's
// kill-resume-gpu measures it); the heuristics rank them the same in every process. fp32 FMA
// math, TF32 tensor cores (Precision::tf32) or bf16 tensors with fp32 accumulation (the *_bf16
// functions); plans are cached per (shape, precision, determinism, dtype, layout, timed); one
// shared workspace (context.cpp). fp32 backward passes accumulate through cuDNN's beta = 1; bf16
// ones write (beta = 0) and the caller widens and adds.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cuda/check.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"

namespace caf::cuda {

namespace {

// The algorithms Find timed that ran (or the heuristics' ranking), deterministic ones first
// (fastest or best-ranked first within each group).
// `next` moves on when cuDNN refuses one at call time (a BAD_PARAM or NOT_SUPPORTED status or
// sub-code, reported before launching anything: refuses()): seen once for a bf16 backward-data
// convolution at 64x64, batch 2, under compute-sanitizer, while Find had reported the algorithm
// as working.
template <class Algo>
struct Candidate {
  Algo algo;
  size_t bytes;              // workspace
  cudnnMathType_t math;      // the math type Find ran it with: set on the descriptor before each call
  bool deterministic;
};
template <class Algo>
struct Candidates {
  std::vector<Candidate<Algo>> list;
  mutable size_t next = 0;
  bool timed = true;  // Find's timings (false: the heuristics' ranking, the same in every process)
};

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Candidates<cudnnConvolutionFwdAlgo_t> fwd;
  Candidates<cudnnConvolutionBwdDataAlgo_t> bwd_data;
  Candidates<cudnnConvolutionBwdFilterAlgo_t> bwd_filter;
  std::string shape;  // for messages
};

// The heuristics (untimed) run nothing, so unlike Find they offer algorithms whatever workspace
// they need; a fixed cap (not the free memory, which differs between processes) keeps the choice
// the same in every process and the shared workspace bounded.
constexpr size_t kHeuristicWorkspaceCap = size_t(1) << 30;

template <class Algo, class Perf>
Candidates<Algo> candidates(const Perf* perf, int count, const char* what, bool deterministic_only,
                            const std::string& shape, bool exact, bool timed) {
  Candidates<Algo> c;
  c.timed = timed;
  auto take = [&](int want) {  // want: 1 deterministic, 0 non-deterministic, -1 either; Find's order
    for (int i = 0; i < count; ++i) {
      const bool det = perf[i].determinism == CUDNN_DETERMINISTIC;
      if (perf[i].status == CUDNN_STATUS_SUCCESS && (want < 0 || det == (want == 1)) &&
          (timed || perf[i].memory <= kHeuristicWorkspaceCap))
        // exact fp32 stays FMA whatever Find reports, so it can never become TF32
        c.list.push_back({perf[i].algo, perf[i].memory, exact ? CUDNN_FMA_MATH : perf[i].mathType, det});
    }
  };
  if (deterministic_only) {
    take(1);
    take(0);  // only reached when every deterministic one is refused or none exists
  } else {
    take(-1);
  }
  if (c.list.empty())
    throw CudnnError(std::string("no cuDNN algorithm for ") + what + " at " + shape,
                     "this convolution shape is not supported by the installed cuDNN");
  if (deterministic_only && !c.list.front().deterministic)
    std::fprintf(stderr, "caf: note: no deterministic cuDNN algorithm for %s at %s; using a non-deterministic "
                         "one (two runs may differ in the last bits)\n", what, shape.c_str());
  return c;
}

// A status that refuses the algorithm (or its configuration) without running anything: cuDNN 9
// reports a refusal as BAD_PARAM or NOT_SUPPORTED or as one of their sub-codes
// (NOT_SUPPORTED_SHAPE = 3002, ...: the thousands say the category, CUDNN_STATUS_CATEGORY).
bool refuses(cudnnStatus_t st) {
  const int category = int(st) / 1000 * 1000;
  return category == CUDNN_STATUS_BAD_PARAM || category == CUDNN_STATUS_NOT_SUPPORTED;
}

// Runs call(algo, workspace, bytes) with the plan's current algorithm, under the math type Find
// timed it with, moving to the next one when cuDNN refuses it (see Candidates).
template <class Algo, class Call>
void run_with(const Candidates<Algo>& c, cudnnConvolutionDescriptor_t conv, const char* what,
              const std::string& shape, Call call) {
  std::string last;  // the last refusal, for the error when every candidate was refused
  for (; c.next < c.list.size(); ++c.next) {
    const Candidate<Algo>& k = c.list[c.next];
    const Algo algo = k.algo;
    CAF_CHECK_CUDNN(cudnnSetConvolutionMathType(conv, k.math));
    const cudnnStatus_t st = call(algo, workspace(k.bytes), k.bytes);
    if (st == CUDNN_STATUS_SUCCESS) {
      clear_library_error(what, __FILE__, __LINE__);
      return;
    }
    if (!refuses(st))
      throw CudnnError(format_error("cuDNN", what, __FILE__, __LINE__, cudnnGetErrorString(st)) + " at " + shape,
                       "check tensor shapes and that the cuDNN library matches the one caf was built against");
    const bool next_exists = c.next + 1 < c.list.size();
    std::fprintf(stderr, "caf: note: cuDNN refused algorithm %d for %s at %s (%s)%s%s%s\n", int(algo), what,
                 shape.c_str(), cudnnGetErrorString(st), next_exists ? "; trying the next one" : "",
                 next_exists && k.deterministic && !c.list[c.next + 1].deterministic
                     ? ", which is not deterministic (two runs may differ in the last bits)"
                     : "",
                 c.timed ? "" : " (algorithms reproducible: a process that was not refused "
                                           "uses another algorithm, so runs may no longer agree bit for bit)");
    last = cudnnGetErrorString(st);
    cudaGetLastError();
  }
  throw CudnnError(std::string("cuDNN ran no algorithm for ") + what + " at " + shape +
                       (last.empty() ? std::string() : " (the last refusal: " + last + ")"),
                   "try another --precision (tf32 or fp32)");
}

// Each direction's candidates: timed by cuDNN's Find (fastest first), or ranked by its heuristics
// without running anything (timed off: the same order in every process). Both calls take the same
// arguments.
ConvPlan make_plan(const Conv2dShape& s, bool tf32, bool det, bool bf16, bool nhwc, bool timed) {
  ConvPlan p;
  const int n = int(s.x.n), c = int(s.x.c), h = int(s.x.h), w = int(s.x.w), k = int(s.k_out);
  const int ks = int(s.k), pad = int(s.k / 2);
  p.shape = std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w) +
            " -> " + std::to_string(k) + " (" + (bf16 ? "bf16" : tf32 ? "tf32" : "fp32") + (nhwc ? ", NHWC" : "") +
            ")";
  CAF_CHECK_CUDNN(cudnnCreateTensorDescriptor(&p.x));
  CAF_CHECK_CUDNN(cudnnCreateTensorDescriptor(&p.y));
  CAF_CHECK_CUDNN(cudnnCreateTensorDescriptor(&p.bias));
  CAF_CHECK_CUDNN(cudnnCreateFilterDescriptor(&p.w));
  CAF_CHECK_CUDNN(cudnnCreateConvolutionDescriptor(&p.conv));
  // bf16: bf16 tensors and filters, fp32 accumulation (cuDNN's "pseudo" bf16 configuration).
  const cudnnDataType_t data = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  // Channels-last (bf16 only, Conv2dShape::nhwc): x, y as N,H,W,C and the filter as K,k,k,C.
  const cudnnTensorFormat_t format = nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  CAF_CHECK_CUDNN(cudnnSetTensor4dDescriptor(p.x, format, data, n, c, h, w));
  CAF_CHECK_CUDNN(cudnnSetTensor4dDescriptor(p.y, format, data, n, k, h, w));
  CAF_CHECK_CUDNN(cudnnSetTensor4dDescriptor(p.bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, k, 1, 1));
  CAF_CHECK_CUDNN(cudnnSetFilter4dDescriptor(p.w, data, format, k, c, ks, ks));
  CAF_CHECK_CUDNN(cudnnSetConvolution2dDescriptor(p.conv, pad, pad, 1, 1, 1, 1,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CAF_CHECK_CUDNN(cudnnSetConvolutionMathType(
      p.conv, bf16 ? CUDNN_TENSOR_OP_MATH : tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));

  const bool exact = !bf16 && !tf32;
  cudnnHandle_t h_ = cudnn();
  // Find allocates its own scratch (workspaces, and buffers for the tensors) with cudaMalloc, and
  // skips or fails an algorithm it cannot allocate for: give it the blocks caf's cache holds free.
  // A plan is made once per shape (in the first step that meets it), so this happens once per shape.
  if (timed) allocator(Device::cuda).empty_cache();
  constexpr int kMax = 16;
  int got = 0;
  cudnnConvolutionFwdAlgoPerf_t fwd[kMax];
  CAF_CHECK_CUDNN((timed ? cudnnFindConvolutionForwardAlgorithm : cudnnGetConvolutionForwardAlgorithm_v7)(
      h_, p.x, p.w, p.conv, p.y, kMax, &got, fwd));
  p.fwd = candidates<cudnnConvolutionFwdAlgo_t>(fwd, got, "conv2d forward", det, p.shape, exact, timed);
  cudnnConvolutionBwdDataAlgoPerf_t bd[kMax];
  CAF_CHECK_CUDNN((timed ? cudnnFindConvolutionBackwardDataAlgorithm : cudnnGetConvolutionBackwardDataAlgorithm_v7)(
      h_, p.w, p.y, p.conv, p.x, kMax, &got, bd));
  p.bwd_data = candidates<cudnnConvolutionBwdDataAlgo_t>(bd, got, "conv2d backward data", det, p.shape, exact, timed);
  cudnnConvolutionBwdFilterAlgoPerf_t bf[kMax];
  CAF_CHECK_CUDNN((timed ? cudnnFindConvolutionBackwardFilterAlgorithm : cudnnGetConvolutionBackwardFilterAlgorithm_v7)(
      h_, p.x, p.y, p.conv, p.w, kMax, &got, bf));
  p.bwd_filter = candidates<cudnnConvolutionBwdFilterAlgo_t>(bf, got, "conv2d backward filter", det, p.shape, exact, timed);
  return p;
}

const ConvPlan& plan(const Conv2dShape& s, bool bf16 = false) {
  static std::mutex m;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool, bool>;
  static std::map<Key, ConvPlan>* cache = new std::map<Key, ConvPlan>();
  const bool tf32 = !bf16 && precision() != Precision::fp32, det = deterministic(), nhwc = bf16 && s.nhwc,
             timed = timed_algorithms();
  Key key = std::make_tuple(s.x.n, s.x.c, s.x.h, s.x.w, s.k_out, s.k, tf32, det, bf16, nhwc, timed);
  std::lock_guard<std::mutex> lock(m);
  auto it = cache->find(key);
  if (it == cache->end()) it = cache->emplace(key, make_plan(s, tf32, det, bf16, nhwc, timed)).first;
  return it->second;
}

const float kOne = 1.f, kZero = 0.f;

}  // namespace

void conv2d_forward(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s) {
  const ConvPlan& p = plan(s);
  run_with(p.fwd, p.conv, "conv2d forward", p.shape, [&](cudnnConvolutionFwdAlgo_t algo, void* ws, size_t bytes) {
    return cudnnConvolutionForward(cudnn(), &kOne, p.x, x, p.w, w, p.conv, algo, ws, bytes, &kZero, p.y, y);
  });
  if (b) CAF_CHECK_CUDNN(cudnnAddTensor(cudnn(), &kOne, p.bias, b, &kOne, p.y, y));
}

void conv2d_backward_data(const float* w, const float* gy, float* gx, const Conv2dShape& s, bool accumulate) {
  const ConvPlan& p = plan(s);
  const float* beta = accumulate ? &kOne : &kZero;  // beta = 0: cuDNN writes and never reads gx
  run_with(p.bwd_data, p.conv, "conv2d backward data", p.shape, [&](cudnnConvolutionBwdDataAlgo_t algo, void* ws, size_t bytes) {
    return cudnnConvolutionBackwardData(cudnn(), &kOne, p.w, w, p.y, gy, p.conv, algo, ws, bytes, beta, p.x, gx);
  });
}

void conv2d_backward_filter(const float* x, const float* gy, float* gw, const Conv2dShape& s) {
  const ConvPlan& p = plan(s);
  run_with(p.bwd_filter, p.conv, "conv2d backward filter", p.shape,
           [&](cudnnConvolutionBwdFilterAlgo_t algo, void* ws, size_t bytes) {
             return cudnnConvolutionBackwardFilter(cudnn(), &kOne, p.x, x, p.y, gy, p.conv, algo, ws, bytes,
                                                   &kOne, p.w, gw);
           });
}

// The bias gradient needs only the fp32 output and bias descriptors (no algorithm search): its own
// small cache, so bf16 convolutions do not pay for an fp32 plan they never use.
// In batchnorm_relu.cu, beside the channels-last batch norm's sums it shares its blocks with.
void channel_sums_nhwc(const float* gy, const Shape4& s, float* gb);
void channel_sums_nhwc(const uint16_t* gy, const Shape4& s, float* gb);
void channel_sums_planar(const uint16_t* gy, const Shape4& s, float* gb);

void conv2d_backward_bias(const float* gy, float* gb, const Conv2dShape& s) {
  if (s.nhwc) {  // gy channels-last (a channels-last activation's gradient, nn/ops.cpp)
    channel_sums_nhwc(gy, s.y(), gb);
    return;
  }
  struct BiasPlan {
    cudnnTensorDescriptor_t y = nullptr, bias = nullptr;
  };
  static std::mutex m;
  static auto* cache = new std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, BiasPlan>();
  const auto key = std::make_tuple(s.x.n, s.k_out, s.x.h, s.x.w);
  BiasPlan bp;
  {
    std::lock_guard<std::mutex> lock(m);
    auto it = cache->find(key);
    if (it == cache->end()) {
      BiasPlan n;
      CAF_CHECK_CUDNN(cudnnCreateTensorDescriptor(&n.y));
      CAF_CHECK_CUDNN(cudnnCreateTensorDescriptor(&n.bias));
      CAF_CHECK_CUDNN(cudnnSetTensor4dDescriptor(n.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(s.x.n),
                                                 int(s.k_out), int(s.x.h), int(s.x.w)));
      CAF_CHECK_CUDNN(cudnnSetTensor4dDescriptor(n.bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, int(s.k_out), 1, 1));
      it = cache->emplace(key, n).first;
    }
    bp = it->second;
  }
  CAF_CHECK_CUDNN(cudnnConvolutionBackwardBias(cudnn(), &kOne, bp.y, gy, &kOne, bp.bias, gb));
}

void conv2d_forward_bf16(const uint16_t* x, const uint16_t* w, uint16_t* y, const Conv2dShape& s) {
  const ConvPlan& p = plan(s, true);
  run_with(p.fwd, p.conv, "conv2d forward", p.shape, [&](cudnnConvolutionFwdAlgo_t algo, void* ws, size_t bytes) {
    return cudnnConvolutionForward(cudnn(), &kOne, p.x, x, p.w, w, p.conv, algo, ws, bytes, &kZero, p.y, y);
  });
}

void conv2d_backward_data_bf16(const uint16_t* w, const uint16_t* gy, uint16_t* gx, const Conv2dShape& s) {
  const ConvPlan& p = plan(s, true);
  run_with(p.bwd_data, p.conv, "conv2d backward data", p.shape, [&](cudnnConvolutionBwdDataAlgo_t algo, void* ws, size_t bytes) {
    return cudnnConvolutionBackwardData(cudnn(), &kOne, p.w, w, p.y, gy, p.conv, algo, ws, bytes, &kZero, p.x, gx);
  });
}

void conv2d_backward_filter_bf16(const uint16_t* x, const uint16_t* gy, uint16_t* gw, const Conv2dShape& s) {
  const ConvPlan& p = plan(s, true);
  run_with(p.bwd_filter, p.conv, "conv2d backward filter", p.shape,
           [&](cudnnConvolutionBwdFilterAlgo_t algo, void* ws, size_t bytes) {
             return cudnnConvolutionBackwardFilter(cudnn(), &kOne, p.x, x, p.y, gy, p.conv, algo, ws, bytes,
                                                   &kZero, p.w, gw);
           });
}

// caf's own sums (batchnorm_relu.cu), which read bf16: cuDNN's backward bias wants y's data type.
void conv2d_backward_bias_bf16(const uint16_t* gy, float* gb, const Conv2dShape& s) {
  if (s.nhwc) channel_sums_nhwc(gy, s.y(), gb);
  else channel_sums_planar(gy, s.y(), gb);
}

}  // namespace caf::cuda
