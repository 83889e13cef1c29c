// tests/fuzz/fuzz_image.cpp: libFuzzer target for image decoding (augment/image_io.h).
//
// Any byte string must decode or throw caf::Error; a decoded image must convert to RGB and resize.
// Any other exception, a crash or a sanitizer report is a finding.
#include <cstddef>
#include <cstdint>

#include "augment/image_io.h"
#include "kernels/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // 1024 x 1024 at most: larger claims are refused the same way, and each run stays short.
    const caf::Image im = caf::image_decode(data, size, "fuzz", int64_t(1) << 20);
    const caf::Image rgb = caf::image_to_rgb(im);
    if (rgb.channels != 3 || rgb.pixels.size() != size_t(rgb.height) * size_t(rgb.width) * 3)
      __builtin_trap();
    const caf::Image small = caf::image_resize_bilinear(rgb, 16, 16);
    const caf::Image mask = caf::image_resize_nearest(im, 16, 16);
    if (small.pixels.size() != 16 * 16 * 3 || mask.pixels.size() != size_t(16 * 16 * im.channels))
      __builtin_trap();
  } catch (const caf::Error&) {
  }
  return 0;
}
