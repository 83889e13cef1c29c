// kernels/cuda/reduce.cuh: deterministic block reductions shared by the CUDA kernels.
// The summation order depends only on the launch shape, never on timing: no atomics.
#pragma once

namespace caf::cuda {

// Sum of v over the block; the result is valid in thread 0. blockDim.x must be a multiple of 32
// and at most 1024.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float warp_sums[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  int nwarps = blockDim.x >> 5;
  v = threadIdx.x < nwarps ? warp_sums[threadIdx.x] : 0.f;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  __syncthreads();  // warp_sums may be reused by the next call
  return v;
}

}  // namespace caf::cuda
