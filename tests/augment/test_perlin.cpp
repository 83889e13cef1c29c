#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "augment/perlin.h"

using namespace caf;

namespace {
// Rotated Perlin noise (or its mask) for n samples, computed as the simulation's compose pass does.
std::vector<float> noise(uint64_t seed, uint32_t step, uint32_t n, int64_t h, int64_t w, bool mask) {
  std::vector<float> v(size_t(n * h * w)), g(2 * kPerlinCorners);
  for (uint32_t s = 0; s < n; ++s) {
    const PerlinParams p = perlin_params(seed, step, s);
    for (int c = 0; c < (p.sy + 1) * (p.sx + 1); ++c) perlin_gradient(seed, step, s, uint32_t(c), &g[2 * c]);
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        const float x = perlin_rotated(g.data(), p, h, w, i, j);
        v[size_t((s * h + i) * w + j)] = mask ? (x > 0.5f ? 1.f : 0.f) : x;
      }
  }
  return v;
}
}  // namespace

TEST_SUITE("augment") {
TEST_CASE("perlin: parameters follow METHOD 4.1") {
  int seen_scales[6] = {};
  for (uint32_t s = 0; s < 2000; ++s) {
    PerlinParams p = perlin_params(11, 0, s);
    CHECK((p.angle_deg >= -90.f && p.angle_deg < 90.f));
    CHECK(std::fabs(p.cos_a - std::cos(p.angle_deg * 0.017453292519943295)) < 1e-6);
    CHECK(std::fabs(p.sin_a - std::sin(p.angle_deg * 0.017453292519943295)) < 1e-6);
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
  std::vector<float> g(2 * kPerlinCorners);
  for (int c = 0; c < (p.sy + 1) * (p.sx + 1); ++c) perlin_gradient(5, 3, 0, uint32_t(c), &g[2 * c]);
  CHECK(perlin_at(g.data(), p, 64, 64, 0, 0) == 0.f);
  // Gradients are unit vectors.
  for (int c = 0; c < (p.sy + 1) * (p.sx + 1); ++c)
    CHECK(std::fabs(g[2 * c] * g[2 * c] + g[2 * c + 1] * g[2 * c + 1] - 1.f) < 1e-6);
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
