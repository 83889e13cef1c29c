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
//
// The kernels are templates over how x is read (F32In: floats; Bf16In: a convolution's raw bf16
// output plus its per-channel bias, widened as cast_from_bf16 does) and how y is stored (float, or
// bf16 rounded as cast_to_bf16 does), so the _bf16 variants are the fp32 kernels' arithmetic on
// the widened values, element for element. The backward's gy and gx are templates too (float, or
// uint16_t for bf16 gradients: read widened, written rounded), the same arithmetic again.
#include <cstdint>
#include <initializer_list>

#include "kernels/batchnorm.h"
#include "kernels/cast.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/error.h"
#include "kernels/memory.h"

namespace caf::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 4096;  // values per block: 16 per thread (a multiple of 4 * kThreads)

struct Plan {
  int64_t chunks;    // chunks per plane
  int64_t partials;  // per channel: N * chunks
  unsigned grid_y;   // blocks in y (partials, capped; blocks loop over the rest)
  bool vec;          // each thread takes 4 consecutive values at a time: H*W % 4 == 0, so every
                     // chunk and plane starts on a multiple of 4 elements
  bool wide;         // and reads/writes them in one access (float4, or uint2 for 4 bf16)
};

// vec depends on the shape alone, so the order in which the statistics are summed does too (a
// tensor at an unaligned offset sums as a fresh one does). wide also needs every pointer the
// kernels access 4 at a time to be 16-byte aligned (stricter than the 8 bytes a uint2 needs; fresh
// allocations are; a view at an offset may not be); without it the 4 values are 4 accesses.
Plan plan_for(const Shape4& s, std::initializer_list<const void*> ptrs) {
  Plan p;
  p.chunks = (s.hw() + kChunk - 1) / kChunk;
  p.partials = s.n * p.chunks;
  p.grid_y = unsigned(std::min<int64_t>(p.partials, 65535));
  p.vec = s.hw() % 4 == 0;
  p.wide = p.vec;
  for (const void* q : ptrs) p.wide = p.wide && reinterpret_cast<uintptr_t>(q) % 16 == 0;
  return p;
}

// Double-precision block sum of two values; valid in thread 0. blockDim.x == kThreads. Ends with
// a barrier, so calls may follow each other.
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
  __syncthreads();  // sa, sb may be rewritten by the next call
  return make_double2(a, b);
}

// The chunk [k0, k1) of plane (n, c); base is the plane's offset.
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

// A thread's group of consecutive elements: n = 4 (vec) or 1; wide: one access for the 4.
struct Group {
  int n;
  bool wide;
};

// Calls f(i, g) for this thread's elements of the chunk: groups of 4 consecutive elements starting
// at i (vec) or single ones.
template <class F>
__device__ __forceinline__ void for_chunk(const ChunkRange& r, const Plan& p, F f) {
  if (p.vec) {
    const Group g{4, p.wide};
    for (int64_t k = r.k0 + 4 * int64_t(threadIdx.x); k < r.k1; k += 4 * kThreads) f(r.base + k, g);
  } else {
    const Group g{1, false};
    for (int64_t k = r.k0 + threadIdx.x; k < r.k1; k += kThreads) f(r.base + k, g);
  }
}

// Up to 4 floats at p[i]: one float4 access when the group is wide (16-byte aligned by the plan);
// bf16 activations go through Bf16In and the uint16_t store below (one uint2 access).
struct Quad {
  float v[4];
};
__device__ __forceinline__ Quad load(const float* p, int64_t i, Group g) {
  Quad q;
  if (g.wide) {
    const float4 t = *reinterpret_cast<const float4*>(p + i);
    q.v[0] = t.x, q.v[1] = t.y, q.v[2] = t.z, q.v[3] = t.w;
  } else {
    for (int j = 0; j < g.n; ++j) q.v[j] = p[i + j];
  }
  return q;
}
__device__ __forceinline__ void store(float* p, int64_t i, Group g, const Quad& q) {
  if (g.wide) {
    *reinterpret_cast<float4*>(p + i) = make_float4(q.v[0], q.v[1], q.v[2], q.v[3]);
  } else {
    for (int j = 0; j < g.n; ++j) p[i + j] = q.v[j];
  }
}
// bf16: 4 values are 8 bytes (one uint2), element i in the low half of the first word; widened
// exactly on the way in, rounded as cast_to_bf16 does on the way out.
__device__ __forceinline__ Quad load(const uint16_t* p, int64_t i, Group g) {
  Quad q;
  if (g.wide) {
    const uint2 t = *reinterpret_cast<const uint2*>(p + i);
    q.v[0] = bf16_to_f32(uint16_t(t.x & 0xffffu)), q.v[1] = bf16_to_f32(uint16_t(t.x >> 16));
    q.v[2] = bf16_to_f32(uint16_t(t.y & 0xffffu)), q.v[3] = bf16_to_f32(uint16_t(t.y >> 16));
  } else {
    for (int j = 0; j < g.n; ++j) q.v[j] = bf16_to_f32(p[i + j]);
  }
  return q;
}
__device__ __forceinline__ void store(uint16_t* p, int64_t i, Group g, const Quad& q) {
  if (g.wide) {
    const uint32_t lo = uint32_t(f32_to_bf16(q.v[0])) | (uint32_t(f32_to_bf16(q.v[1])) << 16);
    const uint32_t hi = uint32_t(f32_to_bf16(q.v[2])) | (uint32_t(f32_to_bf16(q.v[3])) << 16);
    *reinterpret_cast<uint2*>(p + i) = make_uint2(lo, hi);
  } else {
    for (int j = 0; j < g.n; ++j) p[i + j] = f32_to_bf16(q.v[j]);
  }
}

// How x is read, for channel c: floats as they are, or bf16 widened plus the channel's bias.
struct F32In {
  const float* p;
  __device__ __forceinline__ F32In at(int64_t) const { return *this; }
  __device__ __forceinline__ Quad operator()(int64_t i, Group g) const { return load(p, i, g); }
  // Channels-last: the 4 neighbouring channels c..c+3 at i (one aligned access).
  __device__ __forceinline__ Quad four(int64_t i, int64_t) const { return load(p, i, Group{4, true}); }
  // Channels-last: channels c and c + 1 at i (one aligned 8-byte access).
  __device__ __forceinline__ F32In at2(int64_t) const { return *this; }
  __device__ __forceinline__ float2 two(int64_t i) const { return *reinterpret_cast<const float2*>(p + i); }
};
struct Bf16In {
  const uint16_t* p;
  const float* bias;  // per channel, or null
  float b = 0.f;      // bias[c] once at() has chosen the channel
  float b1 = 0.f;     // bias[c + 1] once at2() has chosen the pair
  __device__ __forceinline__ Bf16In at(int64_t c) const {
    Bf16In r = *this;
    if (bias) r.b = bias[c];
    return r;
  }
  __device__ __forceinline__ Quad operator()(int64_t i, Group g) const {
    Quad q = load(p, i, g);
    if (bias)
      for (int j = 0; j < g.n; ++j) q.v[j] = __fadd_rn(q.v[j], b);  // cast_from_bf16's v + bias[c]
    return q;
  }
  // Channels-last: the 4 neighbouring channels c..c+3 at i (one aligned access), each with its bias.
  __device__ __forceinline__ Quad four(int64_t i, int64_t c) const {
    Quad q = Bf16In{p, nullptr}(i, Group{4, true});
    if (bias)
      for (int j = 0; j < 4; ++j) q.v[j] = __fadd_rn(q.v[j], bias[c + j]);
    return q;
  }
  // Channels-last: channels c and c + 1 at i (one aligned 4-byte access), each with its bias.
  __device__ __forceinline__ Bf16In at2(int64_t c) const {
    Bf16In r = *this;
    if (bias) r.b = bias[c], r.b1 = bias[c + 1];
    return r;
  }
  __device__ __forceinline__ float2 two(int64_t i) const {
    const uint32_t t = *reinterpret_cast<const uint32_t*>(p + i);
    float v0 = bf16_to_f32(uint16_t(t & 0xffffu)), v1 = bf16_to_f32(uint16_t(t >> 16));
    if (bias) v0 = __fadd_rn(v0, b), v1 = __fadd_rn(v1, b1);  // cast_from_bf16's v + bias[c]
    return make_float2(v0, v1);
  }
};

template <class In>
__global__ void stats_partials(In in, Shape4 s, Plan p, double2* out) {
  const int64_t c = blockIdx.x;
  const In x = in.at(c);
  for (int64_t part = blockIdx.y; part < p.partials; part += gridDim.y) {
    double sum = 0, sq = 0;
    for_chunk(chunk_of(s, c, part, p.chunks), p, [&](int64_t i, Group grp) {
      const Quad q = x(i, grp);
      for (int j = 0; j < grp.n; ++j) {
        const double v = q.v[j];
        sum += v;
        sq += v * v;
      }
    });
    const double2 t = block_sum2(sum, sq);
    if (threadIdx.x == 0) out[part * s.c + c] = t;
  }
}

__global__ void stats_finalise(const double2* parts, int64_t partials, Shape4 s, double eps,
                               double momentum, float* save_mean, float* save_invstd,
                               float* running_mean, float* running_var) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= s.c) return;
  double sum = 0, sq = 0;
  for (int64_t p = 0; p < partials; ++p) {
    sum += parts[p * s.c + c].x;
    sq += parts[p * s.c + c].y;
  }
  const double m = double(s.n * s.hw());
  const double mean = sum / m;
  double var = sq / m - mean * mean;
  if (var < 0) var = 0;  // rounding only; a NaN stays NaN, as on the CPU
  save_mean[c] = float(mean);
  save_invstd[c] = float(1.0 / sqrt(var + eps));
  if (running_mean) running_mean[c] = float((1 - momentum) * running_mean[c] + momentum * mean);
  if (running_var) {
    const double unbiased = m > 1 ? var * m / (m - 1) : var;
    running_var[c] = float((1 - momentum) * running_var[c] + momentum * unbiased);
  }
}

template <class In, class Out>
__global__ void apply_forward(In in, const float* gamma, const float* beta,
                              const float* mean, const float* invstd, Shape4 s, Plan p, Out* y) {
  const int64_t c = blockIdx.x;
  const In x = in.at(c);
  const float mu = mean[c], is = invstd[c], g = gamma[c], b = beta[c];
  for (int64_t part = blockIdx.y; part < p.partials; part += gridDim.y)
    for_chunk(chunk_of(s, c, part, p.chunks), p, [&](int64_t i, Group grp) {
      Quad q = x(i, grp);
      for (int j = 0; j < grp.n; ++j) {
        const float z = bn_relu_pre(q.v[j], mu, is, g, b);
        q.v[j] = z > 0.f ? z : 0.f;
      }
      store(y, i, grp, q);
    });
}

template <class In, class Gy>
__global__ void grad_partials(In in, const Gy* gy, const float* gamma,
                              const float* beta, const float* mean, const float* invstd, Shape4 s,
                              Plan p, double2* out) {
  const int64_t c = blockIdx.x;
  const In x = in.at(c);
  const float mu = mean[c], is = invstd[c], g = gamma[c], b = beta[c];
  for (int64_t part = blockIdx.y; part < p.partials; part += gridDim.y) {
    double sum = 0, sum_xc = 0;
    for_chunk(chunk_of(s, c, part, p.chunks), p, [&](int64_t i, Group grp) {
      const Quad xv = x(i, grp), gv = load(gy, i, grp);
      for (int j = 0; j < grp.n; ++j) {
        const double gz = bn_relu_gate(bn_relu_pre(xv.v[j], mu, is, g, b), gv.v[j]);
        sum += gz;
        sum_xc += gz * (double(xv.v[j]) - double(mu));
      }
    });
    const double2 t = block_sum2(sum, sum_xc);
    if (threadIdx.x == 0) out[part * s.c + c] = t;
  }
}

// Per channel: ggamma, gbeta accumulate; coef[c] = {a, b} = {sum gz / m, sum gz xhat / m}.
__global__ void grad_finalise(const double2* parts, int64_t partials, Shape4 s,
                              const float* invstd, float* ggamma, float* gbeta, float2* coef) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= s.c) return;
  double sum = 0, sum_xc = 0;
  for (int64_t p = 0; p < partials; ++p) {
    sum += parts[p * s.c + c].x;
    sum_xc += parts[p * s.c + c].y;
  }
  const double m = double(s.n * s.hw());
  const double sum_xhat = sum_xc * double(invstd[c]);
  if (ggamma) ggamma[c] += float(sum_xhat);
  if (gbeta) gbeta[c] += float(sum);
  if (coef) coef[c] = make_float2(float(sum / m), float(sum_xhat / m));
}

template <class In, class Gy, class Gx>
__global__ void apply_backward(In in, const Gy* gy, const float* gamma,
                               const float* beta, const float* mean, const float* invstd,
                               const float2* coef, Shape4 s, Plan p, bool overwrite, Gx* gx) {
  const int64_t c = blockIdx.x;
  const In x = in.at(c);
  const float mu = mean[c], is = invstd[c], g = gamma[c], b = beta[c], gi = g * is;
  const float2 ab = coef[c];
  for (int64_t part = blockIdx.y; part < p.partials; part += gridDim.y)
    for_chunk(chunk_of(s, c, part, p.chunks), p, [&](int64_t i, Group grp) {
      const Quad xv = x(i, grp), gv = load(gy, i, grp);
      Quad out;
      if (!overwrite) out = load(gx, i, grp);  // write-first: gx is never read
      for (int j = 0; j < grp.n; ++j) {
        const float gz = bn_relu_gate(bn_relu_pre(xv.v[j], mu, is, g, b), gv.v[j]);
        const float d = bn_relu_grad_input(gz, (xv.v[j] - mu) * is, gi, ab.x, ab.y);
        out.v[j] = overwrite ? d : out.v[j] + d;
      }
      store(gx, i, grp, out);
    });
}

// Inference mode: y = max(x * scale + shift, 0) with scale, shift from the running statistics,
// folded per block as the CPU folds them per (n, c) plane.
template <class In, class Out>
__global__ void eval_apply(In in, const float* gamma, const float* beta, const float* running_mean,
                           const float* running_var, float eps, Shape4 s, Plan p, Out* y) {
  const int64_t c = blockIdx.x;
  const In x = in.at(c);
  const float scale = gamma[c] / sqrtf(__fadd_rn(running_var[c], eps));
  const float shift = __fsub_rn(beta[c], __fmul_rn(running_mean[c], scale));  // no FMA: the CPU's bits
  for (int64_t part = blockIdx.y; part < p.partials; part += gridDim.y)
    for_chunk(chunk_of(s, c, part, p.chunks), p, [&](int64_t i, Group grp) {
      Quad q = x(i, grp);
      for (int j = 0; j < grp.n; ++j) {
        const float v = __fadd_rn(__fmul_rn(q.v[j], scale), shift);
        q.v[j] = v > 0.f ? v : 0.f;
      }
      store(y, i, grp, q);
    });
}

// ---- channels-last (BatchNormArgs::nhwc, bf16 activations) ----
// x is an [M][C] matrix, M = N*H*W rows. The sums: block (tile of 32 channels, chunk of kLastRows
// rows), threads 32 (channels, so a warp reads one row's 32 neighbouring channels) x 8 (rows,
// every 8th); each thread sums its column in double, then the 8 sums of a channel are added in
// order through shared memory: one partial per (chunk, channel) in the same [P][C] table the
// planar kernels fill, finalised by the same kernels. The forward's statistics take two
// neighbouring channels per thread when C is even (64 per tile; the same sums in the same order).
// The elementwise passes are grid-stride loops over the elements with c = i % C, four
// neighbouring channels per thread (one wide access) when C % 4 == 0 and the pointers are 16-byte
// aligned. Deterministic; the order of the sums
// differs from the planar kernels', so statistics agree with them up to double rounding.
constexpr int kLastTile = 32, kLastLanes = 8;
constexpr int64_t kLastRows = 1024;

struct LastPlan {
  int64_t rows;      // M
  int64_t partials;  // per channel: chunks of kLastRows rows
  dim3 grid;         // (channel tiles, chunks capped; blocks loop over the rest)
};
LastPlan last_plan(const Shape4& s) {
  LastPlan p;
  p.rows = s.n * s.hw();
  p.partials = (p.rows + kLastRows - 1) / kLastRows;
  p.grid = dim3(unsigned((s.c + kLastTile - 1) / kLastTile), unsigned(std::min<int64_t>(p.partials, 65535)));
  return p;
}

// The sum over threadIdx.y of each column, in order; valid in threadIdx.y == 0. Ends with a
// barrier, so calls may follow each other.
__device__ __forceinline__ double2 column_sum2(double a, double b) {
  __shared__ double sa[kLastLanes][kLastTile], sb[kLastLanes][kLastTile];
  sa[threadIdx.y][threadIdx.x] = a;
  sb[threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  if (threadIdx.y == 0) {
    a = 0, b = 0;
    for (int r = 0; r < kLastLanes; ++r) {
      a += sa[r][threadIdx.x];
      b += sb[r][threadIdx.x];
    }
  }
  __syncthreads();
  return make_double2(a, b);
}

__device__ __forceinline__ Group one() { return Group{1, false}; }  // a single element

// The same sums with two neighbouring channels per thread (C even, x 8-byte aligned: last_pairs):
// a warp reads 64 channels of a row, one 4-byte (bf16) or 8-byte (fp32) access per thread, where
// stats_partials_last reads 32 in 2- or 4-byte accesses. The same rows, lanes and order of sums,
// so the partials are stats_partials_last's bit for bit. Run 9 on an H200 timed it as the
// kernel harness's candidate `stats2` (bench/kernels): 1.9-3.2x faster at the networks' four
// widest shapes (8x64x256x256: 0.026 against 0.085 ms), level at 8x1024x16x16.
template <class In>
__global__ void stats_partials_last2(In in, Shape4 s, LastPlan p, double2* out) {
  const int64_t c = 2 * (int64_t(blockIdx.x) * kLastTile + threadIdx.x);
  const bool live = c < s.c;  // then c + 1 < C too, C being even
  const In x = in.at2(live ? c : 0);
  for (int64_t part = blockIdx.y; part < p.partials; part += gridDim.y) {
    double sum0 = 0, sq0 = 0, sum1 = 0, sq1 = 0;
    const int64_t r1 = min(p.rows, (part + 1) * kLastRows);
    if (live)
      for (int64_t r = part * kLastRows + threadIdx.y; r < r1; r += kLastLanes) {
        const float2 v = x.two(r * s.c + c);
        const double v0 = v.x, v1 = v.y;
        sum0 += v0;
        sq0 += v0 * v0;
        sum1 += v1;
        sq1 += v1 * v1;
      }
    const double2 t0 = column_sum2(sum0, sq0);
    const double2 t1 = column_sum2(sum1, sq1);
    if (live && threadIdx.y == 0) {
      out[part * s.c + c] = t0;
      out[part * s.c + c + 1] = t1;
    }
  }
}
// Whether stats_partials_last2 applies: an even C and x aligned for a pair of fp32 values.
bool last_pairs(const Shape4& s, const void* xp) {
  return s.c % 2 == 0 && reinterpret_cast<uintptr_t>(xp) % 8 == 0;
}

template <class In>
__global__ void stats_partials_last(In in, Shape4 s, LastPlan p, double2* out) {
  const int64_t c = int64_t(blockIdx.x) * kLastTile + threadIdx.x;
  const bool live = c < s.c;
  const In x = in.at(live ? c : 0);
  for (int64_t part = blockIdx.y; part < p.partials; part += gridDim.y) {
    double sum = 0, sq = 0;
    const int64_t r1 = min(p.rows, (part + 1) * kLastRows);
    if (live)
      for (int64_t r = part * kLastRows + threadIdx.y; r < r1; r += kLastLanes) {
        const double v = x(r * s.c + c, one()).v[0];
        sum += v;
        sq += v * v;
      }
    const double2 t = column_sum2(sum, sq);
    if (live && threadIdx.y == 0) out[part * s.c + c] = t;
  }
}

template <class In, class Gy>
__global__ void grad_partials_last(In in, const Gy* gy, const float* gamma, const float* beta,
                                   const float* mean, const float* invstd, Shape4 s, LastPlan p,
                                   double2* out) {
  const int64_t c = int64_t(blockIdx.x) * kLastTile + threadIdx.x;
  const bool live = c < s.c;
  const int64_t cc = live ? c : 0;
  const In x = in.at(cc);
  const float mu = mean[cc], is = invstd[cc], g = gamma[cc], b = beta[cc];
  for (int64_t part = blockIdx.y; part < p.partials; part += gridDim.y) {
    double sum = 0, sum_xc = 0;
    const int64_t r1 = min(p.rows, (part + 1) * kLastRows);
    if (live)
      for (int64_t r = part * kLastRows + threadIdx.y; r < r1; r += kLastLanes) {
        const int64_t i = r * s.c + c;
        const float xv = x(i, one()).v[0];
        const double gz = bn_relu_gate(bn_relu_pre(xv, mu, is, g, b), load(gy, i, one()).v[0]);
        sum += gz;
        sum_xc += gz * (double(xv) - double(mu));
      }
    const double2 t = column_sum2(sum, sum_xc);
    if (live && threadIdx.y == 0) out[part * s.c + c] = t;
  }
}

// Column sums of an fp32 or bf16 [M][C] matrix (a convolution's channels-last output gradient,
// for its bias gradient), the same blocks and order as the statistics.
template <class G>
__global__ void sum_partials_last(const G* g, Shape4 s, LastPlan p, double* out) {
  const int64_t c = int64_t(blockIdx.x) * kLastTile + threadIdx.x;
  const bool live = c < s.c;
  for (int64_t part = blockIdx.y; part < p.partials; part += gridDim.y) {
    double sum = 0;
    const int64_t r1 = min(p.rows, (part + 1) * kLastRows);
    if (live)
      for (int64_t r = part * kLastRows + threadIdx.y; r < r1; r += kLastLanes) sum += load(g, r * s.c + c, one()).v[0];
    const double2 t = column_sum2(sum, 0.0);
    if (live && threadIdx.y == 0) out[part * s.c + c] = t.x;
  }
}
__global__ void sum_finalise(const double* parts, int64_t partials, int64_t c, float* out) {
  const int64_t ch = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (ch >= c) return;
  double sum = 0;
  for (int64_t p = 0; p < partials; ++p) sum += parts[p * c + ch];
  out[ch] += float(sum);
}
// The same over the planar statistics kernel's partials (their .x: the sums).
__global__ void sum_finalise_x(const double2* parts, int64_t partials, int64_t c, float* out) {
  const int64_t ch = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (ch >= c) return;
  double sum = 0;
  for (int64_t p = 0; p < partials; ++p) sum += parts[p * c + ch].x;
  out[ch] += float(sum);
}

// Per element, the planar kernels' arithmetic (apply_forward, apply_backward, eval_apply): kN = 1
// element per thread, or kN = 4 neighbouring channels (C % 4 == 0 and every pointer 16-byte
// aligned: last_vec4) with one wide access per tensor and one channel division. k indexes groups
// of kN elements.
template <int kN>
__device__ __forceinline__ Group last_group() { return Group{kN, kN == 4}; }
// x's kN values at element i (channel ch), each with its channel's bias.
template <int kN, class In>
__device__ __forceinline__ Quad last_read(const In& in, int64_t i, int64_t ch) {
  if constexpr (kN == 4) return in.four(i, ch);
  else return in.at(ch)(i, last_group<1>());
}
template <int kN, class In, class Out>
struct ApplyLast {
  In in;
  const float *gamma, *beta, *mean, *invstd;
  int64_t c;
  Out* y;
  __device__ void operator()(int64_t k) const {
    const int64_t i = kN * k, ch = i % c;
    Quad q = last_read<kN>(in, i, ch);
    for (int j = 0; j < kN; ++j) {
      const float z = bn_relu_pre(q.v[j], mean[ch + j], invstd[ch + j], gamma[ch + j], beta[ch + j]);
      q.v[j] = z > 0.f ? z : 0.f;
    }
    store(y, i, last_group<kN>(), q);
  }
};
template <int kN, class In, class Gy, class Gx>
struct BackwardLast {
  In in;
  const Gy* gy;
  const float *gamma, *beta, *mean, *invstd;
  const float2* coef;
  int64_t c;
  bool overwrite;
  Gx* gx;
  __device__ void operator()(int64_t k) const {
    const int64_t i = kN * k, ch = i % c;
    const Quad xv = last_read<kN>(in, i, ch), gv = load(gy, i, last_group<kN>());
    Quad out;
    if (!overwrite) out = load(gx, i, last_group<kN>());
    for (int j = 0; j < kN; ++j) {
      const float mu = mean[ch + j], is = invstd[ch + j], g = gamma[ch + j], gi = g * is;
      const float2 ab = coef[ch + j];
      const float gz = bn_relu_gate(bn_relu_pre(xv.v[j], mu, is, g, beta[ch + j]), gv.v[j]);
      const float d = bn_relu_grad_input(gz, (xv.v[j] - mu) * is, gi, ab.x, ab.y);
      out.v[j] = overwrite ? d : out.v[j] + d;
    }
    store(gx, i, last_group<kN>(), out);
  }
};
template <int kN, class In, class Out>
struct EvalLast {
  In in;
  const float *gamma, *beta, *running_mean, *running_var;
  float eps;
  int64_t c;
  Out* y;
  __device__ void operator()(int64_t k) const {
    const int64_t i = kN * k, ch = i % c;
    Quad q = last_read<kN>(in, i, ch);
    for (int j = 0; j < kN; ++j) {
      const float scale = gamma[ch + j] / sqrtf(__fadd_rn(running_var[ch + j], eps));
      const float shift = __fsub_rn(beta[ch + j], __fmul_rn(running_mean[ch + j], scale));
      const float v = __fadd_rn(__fmul_rn(q.v[j], scale), shift);
      q.v[j] = v > 0.f ? v : 0.f;
    }
    store(y, i, last_group<kN>(), q);
  }
};
bool last_vec4(const Shape4& s, std::initializer_list<const void*> ptrs) {
  bool ok = s.c % 4 == 0;
  for (const void* q : ptrs) ok = ok && reinterpret_cast<uintptr_t>(q) % 16 == 0;
  return ok;
}

unsigned channel_blocks(int64_t c) { return unsigned((c + kThreads - 1) / kThreads); }

// The launchers, generic over the input reader and the output storage; xp: x's raw pointer, for
// the vector-access alignment check (float4 for floats, uint2 for four bf16).
template <class In, class Out>
void apply(In x, const void* xp, const float* gamma, const float* beta, const float* save_mean,
           const float* save_invstd, Out* y, const BatchNormArgs& a) {
  if (a.s.numel() == 0) return;
  if (a.nhwc) {
    if (last_vec4(a.s, {xp, y}))
      for_each(a.s.numel() / 4, ApplyLast<4, In, Out>{x, gamma, beta, save_mean, save_invstd, a.s.c, y},
               "batchnorm_relu_apply (channels-last)");
    else
      for_each(a.s.numel(), ApplyLast<1, In, Out>{x, gamma, beta, save_mean, save_invstd, a.s.c, y},
               "batchnorm_relu_apply (channels-last)");
    return;
  }
  const Plan p = plan_for(a.s, {xp, y});
  apply_forward<<<dim3(unsigned(a.s.c), p.grid_y), kThreads, 0, stream()>>>(
      x, gamma, beta, save_mean, save_invstd, a.s, p, y);
  CAF_CHECK_LAUNCH("batchnorm_relu_apply");
}

template <class In, class Out>
void train_forward(In x, const void* xp, const float* gamma, const float* beta, Out* y, float* save_mean,
                   float* save_invstd, float* running_mean, float* running_var, const BatchNormArgs& a) {
  const Shape4& s = a.s;
  if (s.numel() == 0) return;
  int64_t partials;
  Buffer parts;
  if (a.nhwc) {
    LastPlan p = last_plan(s);
    partials = p.partials;
    parts = Buffer(Device::cuda, size_t(s.c * partials) * sizeof(double2));
    if (last_pairs(s, xp)) {
      p.grid.x = unsigned((s.c / 2 + kLastTile - 1) / kLastTile);
      stats_partials_last2<<<p.grid, dim3(kLastTile, kLastLanes), 0, stream()>>>(x, s, p,
                                                                                static_cast<double2*>(parts.data()));
    } else {
      stats_partials_last<<<p.grid, dim3(kLastTile, kLastLanes), 0, stream()>>>(x, s, p,
                                                                               static_cast<double2*>(parts.data()));
    }
  } else {
    const Plan p = plan_for(s, {xp, y});
    partials = p.partials;
    parts = Buffer(Device::cuda, size_t(s.c * partials) * sizeof(double2));
    stats_partials<<<dim3(unsigned(s.c), p.grid_y), kThreads, 0, stream()>>>(x, s, p,
                                                                           static_cast<double2*>(parts.data()));
  }
  CAF_CHECK_LAUNCH("batchnorm_relu_train_forward/stats");
  stats_finalise<<<channel_blocks(s.c), kThreads, 0, stream()>>>(static_cast<const double2*>(parts.data()), partials, s,
                                                                 a.eps, a.momentum, save_mean, save_invstd,
                                                                 running_mean, running_var);
  CAF_CHECK_LAUNCH("batchnorm_relu_train_forward/finalise");
  apply(x, xp, gamma, beta, save_mean, save_invstd, y, a);  // the same pass a recompute runs
}

template <class In, class Out>
void eval_forward(In x, const void* xp, const float* gamma, const float* beta, const float* running_mean,
                  const float* running_var, Out* y, const BatchNormArgs& a) {
  if (a.s.numel() == 0) return;
  if (a.nhwc) {
    if (last_vec4(a.s, {xp, y}))
      for_each(a.s.numel() / 4, EvalLast<4, In, Out>{x, gamma, beta, running_mean, running_var, float(a.eps), a.s.c, y},
               "batchnorm_relu_eval_forward (channels-last)");
    else
      for_each(a.s.numel(), EvalLast<1, In, Out>{x, gamma, beta, running_mean, running_var, float(a.eps), a.s.c, y},
               "batchnorm_relu_eval_forward (channels-last)");
    return;
  }
  const Plan p = plan_for(a.s, {xp, y});
  eval_apply<<<dim3(unsigned(a.s.c), p.grid_y), kThreads, 0, stream()>>>(
      x, gamma, beta, running_mean, running_var, float(a.eps), a.s, p, y);
  CAF_CHECK_LAUNCH("batchnorm_relu_eval_forward");
}

// Gy, Gx: float, or uint16_t for bf16 gradients (BatchNormArgs::gy_bf16, gx_bf16).
template <class In, class Gy, class Gx>
void train_backward(In x, const void* xp, const float* gamma, const float* beta, const Gy* gy,
                    const float* save_mean, const float* save_invstd, Gx* gx, float* ggamma, float* gbeta,
                    const BatchNormArgs& a) {
  const Shape4& s = a.s;
  if (s.numel() == 0 || (!gx && !ggamma && !gbeta)) return;
  Buffer coef = gx ? Buffer(Device::cuda, size_t(s.c) * sizeof(float2)) : Buffer();
  float2* cp = static_cast<float2*>(coef.data());
  int64_t partials;
  Buffer parts;
  Plan p{};
  if (a.nhwc) {
    const LastPlan lp = last_plan(s);
    partials = lp.partials;
    parts = Buffer(Device::cuda, size_t(s.c * partials) * sizeof(double2));
    grad_partials_last<<<lp.grid, dim3(kLastTile, kLastLanes), 0, stream()>>>(
        x, gy, gamma, beta, save_mean, save_invstd, s, lp, static_cast<double2*>(parts.data()));
  } else {
    p = plan_for(s, {xp, gy, gx});
    partials = p.partials;
    parts = Buffer(Device::cuda, size_t(s.c * partials) * sizeof(double2));
    grad_partials<<<dim3(unsigned(s.c), p.grid_y), kThreads, 0, stream()>>>(
        x, gy, gamma, beta, save_mean, save_invstd, s, p, static_cast<double2*>(parts.data()));
  }
  CAF_CHECK_LAUNCH("batchnorm_relu_train_backward/sums");
  grad_finalise<<<channel_blocks(s.c), kThreads, 0, stream()>>>(static_cast<const double2*>(parts.data()), partials,
                                                                s, save_invstd, ggamma, gbeta, cp);
  CAF_CHECK_LAUNCH("batchnorm_relu_train_backward/finalise");
  if (!gx) return;
  if (a.nhwc) {
    if (last_vec4(s, {xp, gy, gx}))
      for_each(s.numel() / 4,
               BackwardLast<4, In, Gy, Gx>{x, gy, gamma, beta, save_mean, save_invstd, cp, s.c, a.overwrite_gx, gx},
               "batchnorm_relu_train_backward/apply (channels-last)");
    else
      for_each(s.numel(), BackwardLast<1, In, Gy, Gx>{x, gy, gamma, beta, save_mean, save_invstd, cp, s.c, a.overwrite_gx, gx},
               "batchnorm_relu_train_backward/apply (channels-last)");
    return;
  }
  apply_backward<<<dim3(unsigned(s.c), p.grid_y), kThreads, 0, stream()>>>(x, gy, gamma, beta, save_mean,
                                                                          save_invstd, cp, s, p, a.overwrite_gx, gx);
  CAF_CHECK_LAUNCH("batchnorm_relu_train_backward/apply");
}

}  // namespace

// kernels/cuda/conv2d.cpp's bias gradient for channels-last output gradients (Conv2dShape::nhwc):
// gb[c] += sum over n, h, w of gy (fp32, or bf16 widened), deterministic.
namespace {
template <class G>
void channel_sums(const G* gy, const Shape4& s, float* gb) {
  if (s.numel() == 0) return;
  const LastPlan p = last_plan(s);
  Buffer parts(Device::cuda, size_t(s.c * p.partials) * sizeof(double));
  sum_partials_last<<<p.grid, dim3(kLastTile, kLastLanes), 0, stream()>>>(gy, s, p, static_cast<double*>(parts.data()));
  CAF_CHECK_LAUNCH("conv2d_backward_bias (channels-last)/sums");
  sum_finalise<<<channel_blocks(s.c), kThreads, 0, stream()>>>(static_cast<const double*>(parts.data()), p.partials,
                                                               s.c, gb);
  CAF_CHECK_LAUNCH("conv2d_backward_bias (channels-last)/finalise");
}
}  // namespace
void channel_sums_nhwc(const float* gy, const Shape4& s, float* gb) { channel_sums(gy, s, gb); }
void channel_sums_nhwc(const uint16_t* gy, const Shape4& s, float* gb) { channel_sums(gy, s, gb); }
// The bias gradient of a planar bf16 gy: the planar statistics' partial sums (their squares unused),
// then the partials' sums in order.
void channel_sums_planar(const uint16_t* gy, const Shape4& s, float* gb) {
  if (s.numel() == 0) return;
  const Plan p = plan_for(s, {gy});
  Buffer parts(Device::cuda, size_t(s.c * p.partials) * sizeof(double2));
  stats_partials<<<dim3(unsigned(s.c), p.grid_y), kThreads, 0, stream()>>>(Bf16In{gy, nullptr}, s, p,
                                                                         static_cast<double2*>(parts.data()));
  CAF_CHECK_LAUNCH("conv2d_backward_bias (bf16)/sums");
  sum_finalise_x<<<channel_blocks(s.c), kThreads, 0, stream()>>>(static_cast<const double2*>(parts.data()),
                                                                 p.partials, s.c, gb);
  CAF_CHECK_LAUNCH("conv2d_backward_bias (bf16)/finalise");
}

void batchnorm_relu_apply(const float* x, const float* gamma, const float* beta,
                          const float* save_mean, const float* save_invstd, float* y,
                          const BatchNormArgs& a) {
  CAF_REQUIRE(!a.nhwc, "batch norm + ReLU: channels-last only for bf16 activations");
  apply(F32In{x}, x, gamma, beta, save_mean, save_invstd, y, a);
}
void batchnorm_relu_train_forward(const float* x, const float* gamma, const float* beta, float* y,
                                  float* save_mean, float* save_invstd, float* running_mean,
                                  float* running_var, const BatchNormArgs& a) {
  CAF_REQUIRE(!a.nhwc, "batch norm + ReLU: channels-last only for bf16 activations");
  train_forward(F32In{x}, x, gamma, beta, y, save_mean, save_invstd, running_mean, running_var, a);
}
void batchnorm_relu_eval_forward(const float* x, const float* gamma, const float* beta,
                                 const float* running_mean, const float* running_var, float* y,
                                 const BatchNormArgs& a) {
  CAF_REQUIRE(!a.nhwc, "batch norm + ReLU: channels-last only for bf16 activations");
  eval_forward(F32In{x}, x, gamma, beta, running_mean, running_var, y, a);
}
void batchnorm_relu_train_backward(const float* x, const float* gamma, const float* beta,
                                   const float* gy, const float* save_mean, const float* save_invstd,
                                   float* gx, float* ggamma, float* gbeta, const BatchNormArgs& a) {
  CAF_REQUIRE(!a.nhwc, "batch norm + ReLU: channels-last only for bf16 activations");
  train_backward(F32In{x}, x, gamma, beta, gy, save_mean, save_invstd, gx, ggamma, gbeta, a);
}

void batchnorm_relu_apply_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                               const float* beta, const float* save_mean, const float* save_invstd,
                               uint16_t* y, const BatchNormArgs& a) {
  apply(Bf16In{x, xbias}, x, gamma, beta, save_mean, save_invstd, y, a);
}
void batchnorm_relu_train_forward_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                                       const float* beta, uint16_t* y, float* save_mean,
                                       float* save_invstd, float* running_mean, float* running_var,
                                       const BatchNormArgs& a) {
  train_forward(Bf16In{x, xbias}, x, gamma, beta, y, save_mean, save_invstd, running_mean, running_var, a);
}
void batchnorm_relu_eval_forward_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                                      const float* beta, const float* running_mean,
                                      const float* running_var, uint16_t* y, const BatchNormArgs& a) {
  eval_forward(Bf16In{x, xbias}, x, gamma, beta, running_mean, running_var, y, a);
}
void batchnorm_relu_train_backward_bf16(const uint16_t* x, const float* xbias, const float* gamma,
                                        const float* beta, const void* gy, const float* save_mean,
                                        const float* save_invstd, void* gx, float* ggamma,
                                        float* gbeta, const BatchNormArgs& a) {
  CAF_REQUIRE(!a.gx_bf16 || a.overwrite_gx, "batchnorm_relu_train_backward_bf16: a bf16 gx is written, never added to");
  const Bf16In in{x, xbias};
  const auto run = [&](const auto* g_y) {
    if (a.gx_bf16)
      train_backward(in, x, gamma, beta, g_y, save_mean, save_invstd, static_cast<uint16_t*>(gx), ggamma, gbeta, a);
    else
      train_backward(in, x, gamma, beta, g_y, save_mean, save_invstd, static_cast<float*>(gx), ggamma, gbeta, a);
  };
  if (a.gy_bf16) run(static_cast<const uint16_t*>(gy));
  else run(static_cast<const float*>(gy));
}

}  // namespace caf::cuda
