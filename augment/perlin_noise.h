// augment/perlin_noise.h: Perlin noise (or its mask) for a batch of samples, on either device.
//
//   perlin_noise  out[n, i, j] = rotated noise of sample first_sample + n at step `step`  (=)
//                 or, with mask, 1 where it exceeds 0.5 and 0 elsewhere.
// The arithmetic is augment/perlin.h's CAF_HD code on both devices.
#pragma once

#include "augment/perlin.h"
#include "kernels/dispatch.h"

namespace caf {

namespace cpu {
void perlin_noise(float* out, uint64_t seed, uint32_t step, uint32_t first_sample, int64_t n,
                  int64_t h, int64_t w, bool mask);
}
namespace cuda {
void perlin_noise(float* out, uint64_t seed, uint32_t step, uint32_t first_sample, int64_t n,
                  int64_t h, int64_t w, bool mask);
}

inline void perlin_noise(Device d, float* out, uint64_t seed, uint32_t step, uint32_t first_sample,
                         int64_t n, int64_t h, int64_t w, bool mask) {
  if (d == Device::cuda) {
    if constexpr (kCudaBuild) {
      cuda::perlin_noise(out, seed, step, first_sample, n, h, w, mask);
      return;
    }
    detail::throw_no_cuda("perlin_noise", false);
  }
  cpu::perlin_noise(out, seed, step, first_sample, n, h, w, mask);
}

}  // namespace caf
