#include "augment/perlin_noise.h"

#include "kernels/launch.h"

namespace caf::cpu {

void perlin_noise(float* out, uint64_t seed, uint32_t step, uint32_t first_sample, int64_t n,
                  int64_t h, int64_t w, bool mask) {
  cpu_for_each(n * h * w, PerlinNoise{out, seed, step, first_sample, h, w, mask});
}

}  // namespace caf::cpu
