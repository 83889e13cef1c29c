#include "augment/batch_sampler.h"

#include "kernels/launch.h"

namespace caf::cpu {

void sample_batch(const BatchSlots& s, const uint8_t* images, float* out, int64_t batch, int64_t per_image) {
  cpu_for_each(batch * per_image, SampleBatchPass{s, images, out, per_image});
}

}  // namespace caf::cpu
