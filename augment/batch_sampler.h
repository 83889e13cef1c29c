// augment/batch_sampler.h: fills a training batch from the class's images on the device.
//
// The training images live on the device as one uint8 tensor [count, 3, H, W], uploaded once.
// Slot b of the batch at `step` takes image first + stride * k with k uniform in [0, choices),
// k drawn by Philox from (seed, step, slot): sampling with replacement, as DRAEM's loader does,
// but stateless, so a resumed run draws exactly the batches the uninterrupted run would have.
// The split halves of METHOD 3.2 are first 0 / stride 2 (X: indices 0, 2, 4, ...) and first 1 /
// stride 2 (Y: 1, 3, 5, ...); DRAEM's protocol is first 0 / stride 1. Slots of the Y half use
// slot numbers offset by `slot_offset` so the halves draw independently.
#pragma once

#include "augment/philox.h"
#include "kernels/dispatch.h"

namespace caf {

struct BatchSlots {
  uint64_t seed;
  uint32_t step, slot_offset;
  int64_t first, stride, choices;
  const uint32_t* step_ptr = nullptr;  // when set, the step is read there (see PlanSettings)
  CAF_HD int64_t image(int64_t slot) const {
    const uint32_t w = random_words(seed, step_ptr ? *step_ptr : step, slot_offset + uint32_t(slot), Purpose::sample_index, 0).v[0];
    return first + stride * int64_t(uniform_int(w, uint32_t(choices)));
  }
};

struct SampleBatchPass {  // one thread per output element of [batch, 3, H, W]
  BatchSlots slots;
  const uint8_t* images;
  float* out;
  int64_t per_image;  // 3 * H * W
  CAF_HD void operator()(int64_t idx) const {
    const int64_t b = idx / per_image, e = idx % per_image;
    out[idx] = float(images[slots.image(b) * per_image + e]) / 255.f;
  }
};

namespace cpu {
void sample_batch(const BatchSlots& s, const uint8_t* images, float* out, int64_t batch, int64_t per_image);
}
namespace cuda {
void sample_batch(const BatchSlots& s, const uint8_t* images, float* out, int64_t batch, int64_t per_image);
}

inline void sample_batch(Device d, const BatchSlots& s, const uint8_t* images, float* out, int64_t batch,
                         int64_t per_image) {
  if (d == Device::cuda) {
    if constexpr (kCudaBuild) {
      cuda::sample_batch(s, images, out, batch, per_image);
      return;
    }
    detail::throw_no_cuda("sample_batch", false);
  }
  cpu::sample_batch(s, images, out, batch, per_image);
}

}  // namespace caf
