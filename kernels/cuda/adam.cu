#include "kernels/adam.h"
#include "kernels/cuda/launch.cuh"

namespace caf::cuda {

void adam_update(float* p, float* m, float* v, const float* g, int64_t n, const AdamStep& s) {
  for_each(n, AdamUpdate<float>{p, m, v, g, s}, "adam_update");
}

}  // namespace caf::cuda
