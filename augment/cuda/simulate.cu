// augment/cuda/simulate.cu: the batch simulation on the GPU (augment/simulate.h). Kernels, then
// launchers. Every pass but the histogram is the CAF_HD functor the CPU runs; this file is compiled
// with -fmad=false so those functors round exactly as the CPU reference does.
#include "augment/simulate.h"
#include "kernels/cuda/launch.cuh"

namespace caf::cuda {

namespace {

constexpr int kHistThreads = 256;
constexpr int kHistChunk = 16384;  // pixels per block: 64 per thread

// grid (chunks, n * 3): each block counts one chunk of one (sample, channel) plane into shared
// memory, then adds its counts to the global histogram. Integer atomics: the counts are exact.
__global__ void histogram_kernel(const SamplePlan* plans, int k, const uint8_t* in, bool in_is_bank,
                                 int64_t plane, int32_t* hist) {
  const int64_t nc = blockIdx.y, n = nc / 3;
  const SamplePlan& p = plans[n];
  if (!uses_texture(p) || !source_op_uses_histogram(p.ops[k])) return;
  __shared__ int32_t local[256];
  local[threadIdx.x] = 0;
  __syncthreads();
  const uint8_t* ch = stage_input(p, in, in_is_bank, n, 3 * plane) + (nc % 3) * plane;
  const int64_t begin = int64_t(blockIdx.x) * kHistChunk;
  const int64_t end = begin + kHistChunk < plane ? begin + kHistChunk : plane;
  for (int64_t e = begin + threadIdx.x; e < end; e += kHistThreads) atomicAdd(&local[ch[e]], 1);
  __syncthreads();
  if (local[threadIdx.x]) atomicAdd(&hist[nc * 256 + threadIdx.x], local[threadIdx.x]);
}

}  // namespace

void source_stage(const SimulateArgs& a, int k, const uint8_t* in, bool in_is_bank, uint8_t* out) {
  const int64_t H = a.plan.height, W = a.plan.width, plane = H * W;
  CAF_CHECK_CUDA(cudaMemsetAsync(a.hist, 0, size_t(a.n) * 3 * 256 * sizeof(int32_t), stream()));
  const dim3 grid(unsigned((plane + kHistChunk - 1) / kHistChunk), unsigned(a.n * 3));
  histogram_kernel<<<grid, kHistThreads, 0, stream()>>>(a.plans, k, in, in_is_bank, plane, a.hist);
  CAF_CHECK_LAUNCH("simulate: source-op histogram");
  for_each(a.n * 3, LutPass{a.plans, k, a.hist, plane, a.lut}, "simulate: source-op tables");
  for_each(a.n * plane, StagePass{a.plans, k, in, in_is_bank, out, a.lut, H, W},
           "simulate: source-op stage");
}

void simulate(const SimulateArgs& a) {
  const int64_t H = a.plan.height, W = a.plan.width, pixels = a.n * H * W;
  for_each(a.n, PlanPass{a.plan, a.plans}, "simulate: plans");
  for_each(a.n * kPerlinCorners, GradientPass{a.plan, a.plans, a.grads}, "simulate: Perlin gradients");
  source_stage(a, 0, a.bank, true, a.tex[0]);
  source_stage(a, 1, a.tex[0], false, a.tex[1]);
  source_stage(a, 2, a.tex[1], false, a.tex[0]);
  const float* x = a.clean;
  if (a.target) {
    for_each(pixels, RotatePass{a.plans, a.clean, a.target, H, W, a.reflect != 0},
             "simulate: rotation");
    x = a.target;
  }
  for_each(pixels, ComposePass{a.plans, x, a.tex[0], a.grads, a.image, a.mask, H, W, a.threshold, a.tau},
           "simulate: compose");
  const int64_t BH = a.blocks_h(), BW = a.blocks_w();
  for_each(a.n * BH * BW, BlockPass{a.plans, a.mask, a.blocks, H, W, BH, BW, a.block},
           "simulate: NDAA blocks");
  for_each(pixels, NdaaFinishPass{a.plans, x, a.blocks, a.image, a.mask, H, W, BH, BW},
           "simulate: NDAA finish");
}

}  // namespace caf::cuda
