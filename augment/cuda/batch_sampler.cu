#include "augment/batch_sampler.h"
#include "kernels/cuda/launch.cuh"

namespace caf::cuda {

void sample_batch(const BatchSlots& s, const uint8_t* images, float* out, int64_t batch, int64_t per_image) {
  for_each(batch * per_image, SampleBatchPass{s, images, out, per_image}, "sample_batch");
}

}  // namespace caf::cuda
