// kernels/cuda/batchnorm_relu.cu: fused training-mode batch norm + ReLU (kernels/batchnorm.h).
//
// NCHW, float. Channel c's values are N planes of H*W contiguous floats. Both passes work in
// chunks: block (c, n * chunks + k) reads chunk k of plane (n, c), so every read is coalesced and
// every block handles one channel. Per-chunk sums go to a [C][P] table in double (each thread
// accumulates in double too: a single pass of sum and sum of squares is then exact enough, with
// no cancellation for any activation scale we meet); one thread per channel adds its P partials in
// order. No atomics anywhere: the result depends only on the shape, never on timing.
//
//   forward:  stats (read x) -> finalise (mean, invstd, running stats) -> apply (read x, write y)
//   backward: sums of gz and gz * (x - mean) (read x, gy) -> finalise (ggamma, gbeta, per-channel
//             coefficients) -> gx += ... (read x, gy, gx; write gx)
// against cuDNN's batch norm then ReLU: forward reads x twice and y once less, backward drops the
// ReLU pass and the intermediate gradient.
#include "kernels/batchnorm.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/memory.h"

namespace caf::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 4096;  // values per block: 16 per thread

struct Plan {
  int64_t chunks;      // chunks per plane
  int64_t partials;    // per channel: N * chunks
  unsigned grid_y;     // blocks in y (partials, capped; blocks loop over the rest)
};

Plan plan_for(const Shape4& s) {
  Plan p;
  p.chunks = (s.hw() + kChunk - 1) / kChunk;
  p.partials = s.n * p.chunks;
  p.grid_y = unsigned(std::min<int64_t>(p.partials, 65535));
  return p;
}

// Double-precision block sum of two values; valid in thread 0. blockDim.x == kThreads.
__device__ __forceinline__ double2 block_sum2(double a, double b) {
  __shared__ double sa[kThreads / 32], sb[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) {
    a += __shfl_down_sync(0xffffffffu, a, o);
    b += __shfl_down_sync(0xffffffffu, b, o);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sa[warp] = a;
    sb[warp] = b;
  }
  __syncthreads();
  if (warp == 0) {
    a = lane < kThreads / 32 ? sa[lane] : 0.0;
    b = lane < kThreads / 32 ? sb[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) {
      a += __shfl_down_sync(0xffffffffu, a, o);
      b += __shfl_down_sync(0xffffffffu, b, o);
    }
  }
  return make_double2(a, b);
}

// The chunk [k0, k1) of plane (n, c), as an offset into x.
struct ChunkRange {
  int64_t base, k0, k1;
};
__device__ __forceinline__ ChunkRange chunk_of(const Shape4& s, int64_t c, int64_t part,
                                               int64_t chunks) {
  const int64_t n = part / chunks, k = part % chunks;
  ChunkRange r;
  r.base = (n * s.c + c) * s.hw();
  r.k0 = k * kChunk;
  r.k1 = min(r.k0 + kChunk, s.hw());
  return r;
}

__global__ void stats_partials(const float* x, Shape4 s, int64_t chunks, int64_t partials,
                               double2* out) {
  const int64_t c = blockIdx.x;
  for (int64_t part = blockIdx.y; part < partials; part += gridDim.y) {
    const ChunkRange r = chunk_of(s, c, part, chunks);
    double sum = 0, sq = 0;
    for (int64_t k = r.k0 + threadIdx.x; k < r.k1; k += kThreads) {
      const double v = x[r.base + k];
      sum += v;
      sq += v * v;
    }
    const double2 t = block_sum2(sum, sq);
    if (threadIdx.x == 0) out[c * partials + part] = t;
    __syncthreads();
  }
}

__global__ void stats_finalise(const double2* parts, int64_t partials, Shape4 s, double eps,
                               double momentum, float* save_mean, float* save_invstd,
                               float* running_mean, float* running_var) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= s.c) return;
  double sum = 0, sq = 0;
  for (int64_t p = 0; p < partials; ++p) {
    sum += parts[c * partials + p].x;
    sq += parts[c * partials + p].y;
  }
  const double m = double(s.n * s.hw());
  const double mean = sum / m;
  const double var = fmax(sq / m - mean * mean, 0.0);
  save_mean[c] = float(mean);
  save_invstd[c] = float(1.0 / sqrt(var + eps));
  if (running_mean) running_mean[c] = float((1 - momentum) * running_mean[c] + momentum * mean);
  if (running_var) {
    const double unbiased = m > 1 ? var * m / (m - 1) : var;
    running_var[c] = float((1 - momentum) * running_var[c] + momentum * unbiased);
  }
}

__global__ void apply_forward(const float* x, const float* gamma, const float* beta,
                              const float* mean, const float* invstd, Shape4 s, int64_t chunks,
                              int64_t partials, float* y) {
  const int64_t c = blockIdx.x;
  const float mu = mean[c], is = invstd[c], g = gamma[c], b = beta[c];
  for (int64_t part = blockIdx.y; part < partials; part += gridDim.y) {
    const ChunkRange r = chunk_of(s, c, part, chunks);
    for (int64_t k = r.k0 + threadIdx.x; k < r.k1; k += kThreads) {
      const float z = bn_relu_pre(x[r.base + k], mu, is, g, b);
      y[r.base + k] = z > 0.f ? z : 0.f;
    }
  }
}

__global__ void grad_partials(const float* x, const float* gy, const float* gamma,
                              const float* beta, const float* mean, const float* invstd, Shape4 s,
                              int64_t chunks, int64_t partials, double2* out) {
  const int64_t c = blockIdx.x;
  const float mu = mean[c], is = invstd[c], g = gamma[c], b = beta[c];
  for (int64_t part = blockIdx.y; part < partials; part += gridDim.y) {
    const ChunkRange r = chunk_of(s, c, part, chunks);
    double sum = 0, sum_xc = 0;
    for (int64_t k = r.k0 + threadIdx.x; k < r.k1; k += kThreads) {
      const float v = x[r.base + k];
      const double gz = bn_relu_pre(v, mu, is, g, b) > 0.f ? gy[r.base + k] : 0.f;
      sum += gz;
      sum_xc += gz * (double(v) - double(mu));
    }
    const double2 t = block_sum2(sum, sum_xc);
    if (threadIdx.x == 0) out[c * partials + part] = t;
    __syncthreads();
  }
}

// Per channel: ggamma, gbeta accumulate; coef[c] = {a, b} = {sum gz / m, sum gz xhat / m}.
__global__ void grad_finalise(const double2* parts, int64_t partials, Shape4 s,
                              const float* invstd, float* ggamma, float* gbeta, float2* coef) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= s.c) return;
  double sum = 0, sum_xc = 0;
  for (int64_t p = 0; p < partials; ++p) {
    sum += parts[c * partials + p].x;
    sum_xc += parts[c * partials + p].y;
  }
  const double m = double(s.n * s.hw());
  const double sum_xhat = sum_xc * double(invstd[c]);
  if (ggamma) ggamma[c] += float(sum_xhat);
  if (gbeta) gbeta[c] += float(sum);
  if (coef) coef[c] = make_float2(float(sum / m), float(sum_xhat / m));
}

__global__ void apply_backward(const float* x, const float* gy, const float* gamma,
                               const float* beta, const float* mean, const float* invstd,
                               const float2* coef, Shape4 s, int64_t chunks, int64_t partials,
                               float* gx) {
  const int64_t c = blockIdx.x;
  const float mu = mean[c], is = invstd[c], g = gamma[c], b = beta[c], gi = g * is;
  const float2 ab = coef[c];
  for (int64_t part = blockIdx.y; part < partials; part += gridDim.y) {
    const ChunkRange r = chunk_of(s, c, part, chunks);
    for (int64_t k = r.k0 + threadIdx.x; k < r.k1; k += kThreads) {
      const float v = x[r.base + k];
      const float gz = bn_relu_pre(v, mu, is, g, b) > 0.f ? gy[r.base + k] : 0.f;
      gx[r.base + k] += bn_relu_grad_input(gz, (v - mu) * is, gi, ab.x, ab.y);
    }
  }
}

unsigned channel_blocks(int64_t c) { return unsigned((c + kThreads - 1) / kThreads); }

}  // namespace

void batchnorm_relu_train_forward(const float* x, const float* gamma, const float* beta, float* y,
                                  float* save_mean, float* save_invstd, float* running_mean,
                                  float* running_var, const BatchNormArgs& a) {
  const Shape4& s = a.s;
  const Plan p = plan_for(s);
  Buffer parts(Device::cuda, size_t(s.c * p.partials) * sizeof(double2));
  double2* pp = static_cast<double2*>(parts.data());
  const dim3 grid(unsigned(s.c), p.grid_y);
  stats_partials<<<grid, kThreads, 0, stream()>>>(x, s, p.chunks, p.partials, pp);
  CAF_CHECK_LAUNCH("batchnorm_relu_train_forward/stats");
  stats_finalise<<<channel_blocks(s.c), kThreads, 0, stream()>>>(
      pp, p.partials, s, a.eps, a.momentum, save_mean, save_invstd, running_mean, running_var);
  CAF_CHECK_LAUNCH("batchnorm_relu_train_forward/finalise");
  apply_forward<<<grid, kThreads, 0, stream()>>>(x, gamma, beta, save_mean, save_invstd, s,
                                                 p.chunks, p.partials, y);
  CAF_CHECK_LAUNCH("batchnorm_relu_train_forward/apply");
}

void batchnorm_relu_train_backward(const float* x, const float* gamma, const float* beta,
                                   const float* gy, const float* save_mean, const float* save_invstd,
                                   float* gx, float* ggamma, float* gbeta, const BatchNormArgs& a) {
  const Shape4& s = a.s;
  const Plan p = plan_for(s);
  Buffer parts(Device::cuda, size_t(s.c * p.partials) * sizeof(double2));
  Buffer coef = gx ? Buffer(Device::cuda, size_t(s.c) * sizeof(float2)) : Buffer();
  double2* pp = static_cast<double2*>(parts.data());
  float2* cp = static_cast<float2*>(coef.data());
  const dim3 grid(unsigned(s.c), p.grid_y);
  grad_partials<<<grid, kThreads, 0, stream()>>>(x, gy, gamma, beta, save_mean, save_invstd, s,
                                                 p.chunks, p.partials, pp);
  CAF_CHECK_LAUNCH("batchnorm_relu_train_backward/sums");
  grad_finalise<<<channel_blocks(s.c), kThreads, 0, stream()>>>(pp, p.partials, s, save_invstd,
                                                                ggamma, gbeta, cp);
  CAF_CHECK_LAUNCH("batchnorm_relu_train_backward/finalise");
  if (gx) {
    apply_backward<<<grid, kThreads, 0, stream()>>>(x, gy, gamma, beta, save_mean, save_invstd, cp,
                                                    s, p.chunks, p.partials, gx);
    CAF_CHECK_LAUNCH("batchnorm_relu_train_backward/apply");
  }
}

}  // namespace caf::cuda
