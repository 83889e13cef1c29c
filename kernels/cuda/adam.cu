#include "kernels/adam.h"
#include "kernels/cuda/launch.cuh"

namespace caf::cuda {

void adam_advance(AdamState* st) { for_each(1, AdamAdvance{st}, "adam_advance"); }

void adam_update(float* p, float* m, float* v, const float* g, int64_t n, const AdamState* st) {
  for_each(n, AdamUpdate<float>{p, m, v, g, st}, "adam_update");
}

}  // namespace caf::cuda
