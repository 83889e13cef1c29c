// kernels/cuda/reduce.cu: sums over everything (two deterministic passes) and per channel
// (one block per channel).
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/memory.h"
#include "kernels/reduce.h"

namespace caf::cuda {

namespace {
constexpr int kThreads = 512;
constexpr int kPartials = 264;  // two blocks per H100/H200 SM; fixed so the order is fixed

__global__ void sum_partials(const float* x, int64_t n, float* partial) {
  float v = 0.f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    v += x[i];
  v = block_sum(v);
  if (threadIdx.x == 0) partial[blockIdx.x] = v;
}

__global__ void sum_final(const float* partial, int count, float scale, float* y) {
  float v = 0.f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) v += partial[i];
  v = block_sum(v);
  if (threadIdx.x == 0) y[0] = scale * v;
}

__global__ void sum_channels(const float* x, Shape4 s, float scale, float* y) {
  int64_t c = blockIdx.x;
  float v = 0.f;
  int64_t per_channel = s.n * s.hw();
  for (int64_t j = threadIdx.x; j < per_channel; j += blockDim.x) {
    int64_t n = j / s.hw(), i = j % s.hw();
    v += x[(n * s.c + c) * s.hw() + i];
  }
  v = block_sum(v);
  if (threadIdx.x == 0) y[c] = scale * v;
}
// One block: min and max are order-independent, so this is exact and deterministic.
__global__ void minmax_kernel(const float* x, int64_t n, float* y) {
  __shared__ float lo_s[32], hi_s[32];
  float lo = x[0], hi = x[0];
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    lo = fminf(lo, x[i]);
    hi = fmaxf(hi, x[i]);
  }
  for (int o = 16; o > 0; o >>= 1) {
    lo = fminf(lo, __shfl_down_sync(0xffffffffu, lo, o));
    hi = fmaxf(hi, __shfl_down_sync(0xffffffffu, hi, o));
  }
  if ((threadIdx.x & 31) == 0) {
    lo_s[threadIdx.x >> 5] = lo;
    hi_s[threadIdx.x >> 5] = hi;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x >> 5); ++w) {
      lo = fminf(lo, lo_s[w]);
      hi = fmaxf(hi, hi_s[w]);
    }
    y[0] = lo;
    y[1] = hi;
  }
}
}  // namespace

void reduce_minmax(const float* x, int64_t n, float* y) {
  if (n <= 0) return;
  minmax_kernel<<<1, 1024, 0, stream()>>>(x, n, y);
  CAF_CHECK_LAUNCH("reduce_minmax");
}

void reduce_all_forward(const float* x, int64_t n, float scale, float* y) {
  Buffer partial(Device::cuda, kPartials * sizeof(float));
  sum_partials<<<kPartials, kThreads, 0, stream()>>>(x, n, static_cast<float*>(partial.data()));
  CAF_CHECK_LAUNCH("reduce_all_forward/partials");
  sum_final<<<1, kThreads, 0, stream()>>>(static_cast<float*>(partial.data()), kPartials, scale, y);
  CAF_CHECK_LAUNCH("reduce_all_forward/final");
}

void reduce_all_backward(const float* gy, int64_t n, float scale, float* gx) {
  for_each(n, ReduceAllBackward<float>{gy, gx, scale}, "reduce_all_backward");
}

void reduce_channels_forward(const float* x, Shape4 s, float scale, float* y) {
  if (s.c == 0) return;
  sum_channels<<<static_cast<unsigned>(s.c), kThreads, 0, stream()>>>(x, s, scale, y);
  CAF_CHECK_LAUNCH("reduce_channels_forward");
}

void reduce_channels_backward(const float* gy, Shape4 s, float scale, float* gx) {
  for_each(s.numel(), ReduceChannelsBackward<float>{gy, gx, s, scale}, "reduce_channels_backward");
}

}  // namespace caf::cuda
