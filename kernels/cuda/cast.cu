#include "kernels/cast.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/error.h"

namespace caf::cuda {

void cast_to_bf16(const float* x, uint16_t* y, int64_t n) { for_each(n, CastToBf16{x, y}, "cast_to_bf16"); }
void cast_from_bf16(const uint16_t* x, const float* bias, int64_t hw, int64_t c, float* y, int64_t n) {
  for_each(n, CastFromBf16{x, bias, hw, c, y}, "cast_from_bf16");
}
void accumulate_bf16(const uint16_t* x, float* g, int64_t n) {
  for_each(n, AccumulateBf16{x, g}, "accumulate_bf16");
}

namespace {
// Tiled batched transpose: block (32 positions, 32 channels, b), threads 32 x 8, each covering 4
// rows of the tile in each of two phases. The planar side is read or written along positions,
// the channels-last side along channels, so both coalesce; values cross between the phases through
// shared memory. Each element's arithmetic is the plain casts' (the CPU's functors), so results
// are the same bits.
constexpr int kTile = 32, kRows = 8;

// A planar element as bf16: fp32 rounded (cast_to_bf16's arithmetic), bf16 as it is.
__device__ __forceinline__ uint16_t as_bf16(float v) { return f32_to_bf16(v); }
__device__ __forceinline__ uint16_t as_bf16(uint16_t v) { return v; }

// planar -> channels-last: read x[b][c][p] along p, write y[b][p][c] along c.
template <class In>
__global__ void to_nhwc_kernel(const In* x, uint16_t* y, int64_t c, int64_t p) {
  __shared__ uint16_t tile[kTile][kTile + 1];
  const int64_t b = blockIdx.z, p0 = int64_t(blockIdx.x) * kTile, c0 = int64_t(blockIdx.y) * kTile;
  const BcpLayout l{c, p};
  for (int r = threadIdx.y; r < kTile; r += kRows) {
    const int64_t ch = c0 + r, pos = p0 + threadIdx.x;
    if (ch < c && pos < p) tile[r][threadIdx.x] = as_bf16(x[l.planar(b, ch, pos)]);
  }
  __syncthreads();
  for (int r = threadIdx.y; r < kTile; r += kRows) {
    const int64_t pos = p0 + r, ch = c0 + threadIdx.x;
    if (ch < c && pos < p) y[l.last(b, ch, pos)] = tile[threadIdx.x][r];
  }
}

// channels-last -> planar: read x16[b][p][c] along c, then write (or add to) y[b][c][p] along p.
template <bool kAccumulate>
__global__ void from_nhwc_kernel(const uint16_t* x, const float* bias, float* y, int64_t c, int64_t p) {
  __shared__ float tile[kTile][kTile + 1];
  const int64_t b = blockIdx.z, p0 = int64_t(blockIdx.x) * kTile, c0 = int64_t(blockIdx.y) * kTile;
  const BcpLayout l{c, p};
  for (int r = threadIdx.y; r < kTile; r += kRows) {
    const int64_t pos = p0 + r, ch = c0 + threadIdx.x;
    if (ch < c && pos < p) tile[threadIdx.x][r] = bf16_to_f32(x[l.last(b, ch, pos)]);
  }
  __syncthreads();
  for (int r = threadIdx.y; r < kTile; r += kRows) {
    const int64_t ch = c0 + r, pos = p0 + threadIdx.x;
    if (ch < c && pos < p) {
      const float v = tile[r][threadIdx.x];
      float& out = y[l.planar(b, ch, pos)];
      if (kAccumulate) out += v;
      else out = bias ? v + bias[ch] : v;
    }
  }
}

// channels-last bf16 -> planar bf16 (the layout change alone).
__global__ void from_nhwc16_kernel(const uint16_t* x, uint16_t* y, int64_t c, int64_t p) {
  __shared__ uint16_t tile[kTile][kTile + 1];
  const int64_t b = blockIdx.z, p0 = int64_t(blockIdx.x) * kTile, c0 = int64_t(blockIdx.y) * kTile;
  const BcpLayout l{c, p};
  for (int r = threadIdx.y; r < kTile; r += kRows) {
    const int64_t pos = p0 + r, ch = c0 + threadIdx.x;
    if (ch < c && pos < p) tile[threadIdx.x][r] = x[l.last(b, ch, pos)];
  }
  __syncthreads();
  for (int r = threadIdx.y; r < kTile; r += kRows) {
    const int64_t ch = c0 + r, pos = p0 + threadIdx.x;
    if (ch < c && pos < p) y[l.planar(b, ch, pos)] = tile[r][threadIdx.x];
  }
}

// fp32 either way, written or added: the tile is read along the source's contiguous axis and
// written along the destination's.
template <bool kToNhwc, bool kAccumulate>
__global__ void transpose_f32_kernel(const float* x, float* y, int64_t c, int64_t p) {
  __shared__ float tile[kTile][kTile + 1];  // [channel][position] within the block's tile
  const int64_t b = blockIdx.z, p0 = int64_t(blockIdx.x) * kTile, c0 = int64_t(blockIdx.y) * kTile;
  const BcpLayout l{c, p};
  for (int r = threadIdx.y; r < kTile; r += kRows) {
    // planar source: row r is a channel, threadIdx.x a position; channels-last: the reverse.
    const int64_t ch = c0 + (kToNhwc ? r : threadIdx.x), pos = p0 + (kToNhwc ? threadIdx.x : r);
    if (ch < c && pos < p)
      tile[ch - c0][pos - p0] = kToNhwc ? x[l.planar(b, ch, pos)] : x[l.last(b, ch, pos)];
  }
  __syncthreads();
  for (int r = threadIdx.y; r < kTile; r += kRows) {
    const int64_t ch = c0 + (kToNhwc ? threadIdx.x : r), pos = p0 + (kToNhwc ? r : threadIdx.x);
    if (ch < c && pos < p) {
      float& out = y[kToNhwc ? l.last(b, ch, pos) : l.planar(b, ch, pos)];
      const float v = tile[ch - c0][pos - p0];
      out = kAccumulate ? out + v : v;
    }
  }
}

dim3 transpose_grid(int64_t b, int64_t c, int64_t p) {
  CAF_REQUIRE(b <= 65535 && (c + kTile - 1) / kTile <= 65535,
              "layout change: batch or channel count beyond the launch limits");
  return dim3(unsigned((p + kTile - 1) / kTile), unsigned((c + kTile - 1) / kTile), unsigned(b));
}
}  // namespace

void cast_to_bf16_nhwc(const float* x, uint16_t* y, int64_t b, int64_t c, int64_t p) {
  if (b * c * p == 0) return;
  to_nhwc_kernel<<<transpose_grid(b, c, p), dim3(kTile, kRows), 0, stream()>>>(x, y, c, p);
  CAF_CHECK_LAUNCH("cast_to_bf16_nhwc");
}
void transpose_bf16_to_nhwc(const uint16_t* x, uint16_t* y, int64_t b, int64_t c, int64_t p) {
  if (b * c * p == 0) return;
  to_nhwc_kernel<<<transpose_grid(b, c, p), dim3(kTile, kRows), 0, stream()>>>(x, y, c, p);
  CAF_CHECK_LAUNCH("transpose_bf16_to_nhwc");
}
void transpose_bf16_from_nhwc(const uint16_t* x, uint16_t* y, int64_t b, int64_t c, int64_t p) {
  if (b * c * p == 0) return;
  from_nhwc16_kernel<<<transpose_grid(b, c, p), dim3(kTile, kRows), 0, stream()>>>(x, y, c, p);
  CAF_CHECK_LAUNCH("transpose_bf16_from_nhwc");
}
void cast_from_bf16_nhwc(const uint16_t* x, const float* bias, float* y, int64_t b, int64_t c, int64_t p) {
  if (b * c * p == 0) return;
  from_nhwc_kernel<false><<<transpose_grid(b, c, p), dim3(kTile, kRows), 0, stream()>>>(x, bias, y, c, p);
  CAF_CHECK_LAUNCH("cast_from_bf16_nhwc");
}
void accumulate_bf16_nhwc(const uint16_t* x, float* g, int64_t b, int64_t c, int64_t p) {
  if (b * c * p == 0) return;
  from_nhwc_kernel<true><<<transpose_grid(b, c, p), dim3(kTile, kRows), 0, stream()>>>(x, nullptr, g, c, p);
  CAF_CHECK_LAUNCH("accumulate_bf16_nhwc");
}
namespace {
template <bool kToNhwc>
void transpose_f32(const float* x, float* y, int64_t b, int64_t c, int64_t p, bool accumulate, const char* what) {
  if (b * c * p == 0) return;
  if (accumulate)
    transpose_f32_kernel<kToNhwc, true><<<transpose_grid(b, c, p), dim3(kTile, kRows), 0, stream()>>>(x, y, c, p);
  else
    transpose_f32_kernel<kToNhwc, false><<<transpose_grid(b, c, p), dim3(kTile, kRows), 0, stream()>>>(x, y, c, p);
  CAF_CHECK_LAUNCH(what);
}
}  // namespace
void transpose_f32_to_nhwc(const float* x, float* y, int64_t b, int64_t c, int64_t p, bool accumulate) {
  transpose_f32<true>(x, y, b, c, p, accumulate, "transpose_f32_to_nhwc");
}
void transpose_f32_from_nhwc(const float* x, float* y, int64_t b, int64_t c, int64_t p, bool accumulate) {
  transpose_f32<false>(x, y, b, c, p, accumulate, "transpose_f32_from_nhwc");
}

}  // namespace caf::cuda
