#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "augment/perlin_noise.h"
#include "kernels/memory.h"
#include "tests/test_util.h"
#include "kernels/launch.h"

using namespace caf;

namespace {
std::vector<float> noise(uint64_t seed, uint32_t step, uint32_t n, int64_t h, int64_t w, bool mask) {
  std::vector<float> v(size_t(n * h * w));
  cpu_for_each(int64_t(v.size()), PerlinNoise{v.data(), seed, step, 0, h, w, mask});
  return v;
}
}  // namespace

TEST_SUITE("augment") {
TEST_CASE("perlin: parameters follow METHOD 4.1") {
  int seen_scales[6] = {};
  for (uint32_t s = 0; s < 2000; ++s) {
    PerlinParams p = perlin_params(11, 0, s);
    CHECK((p.angle_deg >= -90.f && p.angle_deg < 90.f));
    for (int sc : {p.sy, p.sx}) {
      CHECK((sc >= 1 && sc <= 32 && (sc & (sc - 1)) == 0));
      seen_scales[int(std::log2(sc))]++;
    }
  }
  for (int c : seen_scales) CHECK(c > 500);  // each of the 6 scales ~667 of 4000
}

TEST_CASE("perlin: value range, mean, unrotated identity and determinism") {
  // Single-octave 2-D Perlin scaled by sqrt(2) stays within [-1, 1]; its mean over many samples is 0.
  std::vector<float> v = noise(5, 3, 64, 64, 64, false);
  double mean = 0, lo = 1, hi = -1;
  for (float x : v) {
    mean += x;
    lo = std::min(lo, double(x));
    hi = std::max(hi, double(x));
  }
  mean /= double(v.size());
  CHECK(lo >= -1.0001);
  CHECK(hi <= 1.0001);
  CHECK(std::fabs(mean) < 0.02);
  CHECK(hi > 0.5);  // some samples do produce anomaly regions
  CHECK(noise(5, 3, 2, 32, 32, false) == noise(5, 3, 2, 32, 32, false));
  CHECK(noise(5, 3, 2, 32, 32, false) != noise(6, 3, 2, 32, 32, false));
  // The noise is zero on lattice corners (pixel 0, 0 of the unrotated field).
  PerlinParams p = perlin_params(5, 3, 0);
  CHECK(perlin_at(5, 3, 0, p, 64, 64, 0, 0) == 0.f);
}

TEST_CASE("perlin: masks are P > 0.5, binary, and cover a fraction of the image") {
  std::vector<float> p = noise(8, 0, 200, 64, 64, false), m = noise(8, 0, 200, 64, 64, true);
  int64_t on = 0, nonempty = 0, wrong = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    wrong += m[i] != (p[i] > 0.5f ? 1.f : 0.f);
    on += m[i] > 0;
  }
  CHECK(wrong == 0);
  for (int s = 0; s < 200; ++s) {
    int64_t c = 0;
    for (int64_t k = 0; k < 64 * 64; ++k) c += m[size_t(s * 64 * 64 + k)] > 0;
    nonempty += c > 0;
  }
  const double coverage = double(on) / double(p.size());
  MESSAGE("mean mask coverage " << coverage << ", non-empty masks " << nonempty << " of 200");
  // A sanity band, not a target: thresholding noise in [-1, 1] at 0.5 marks a few percent.
  CHECK((coverage > 0.01 && coverage < 0.3));
  CHECK(nonempty > 100);
}
}

TEST_SUITE("gpu") {
TEST_CASE("gpu: Perlin noise and masks equal the CPU's for the same seed") {
  CAF_NEED_GPU();
  const int64_t n = 8, h = 64, w = 96, total = n * h * w;
  std::vector<float> cpu_p(static_cast<size_t>(total)), cpu_m(static_cast<size_t>(total));
  perlin_noise(Device::cpu, cpu_p.data(), 4, 2, 0, n, h, w, false);
  perlin_noise(Device::cpu, cpu_m.data(), 4, 2, 0, n, h, w, true);
  Buffer dp(Device::cuda, size_t(total) * 4), dm(Device::cuda, size_t(total) * 4);
  perlin_noise(Device::cuda, static_cast<float*>(dp.data()), 4, 2, 0, n, h, w, false);
  perlin_noise(Device::cuda, static_cast<float*>(dm.data()), 4, 2, 0, n, h, w, true);
  std::vector<float> gpu_p(static_cast<size_t>(total)), gpu_m(static_cast<size_t>(total));
  copy_bytes(Device::cpu, gpu_p.data(), Device::cuda, dp.data(), dp.bytes());
  copy_bytes(Device::cpu, gpu_m.data(), Device::cuda, dm.data(), dm.bytes());
  // Same CAF_HD code; cosf/sinf may differ by an ulp between libm and CUDA, so the noise is
  // compared by NMSE and the thresholded masks with a budget of flipped pixels (values within
  // ~1e-6 of 0.5 may land on either side).
  CHECK(caf::test::nmse(gpu_p, cpu_p) < 1e-10);
  int64_t flipped = 0;
  for (int64_t i = 0; i < total; ++i) flipped += gpu_m[size_t(i)] != cpu_m[size_t(i)];
  CHECK(flipped <= total / 100000 + 1);
}
}
