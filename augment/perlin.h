// augment/perlin.h: DRAEM's Perlin-noise anomaly shapes (METHOD.md 4.1), computed per pixel.
//
// For each sample: lattice scales sx = 2^a, sy = 2^b with a, b uniform in {0..5}; a gradient
// (cos t, sin t), t ~ U[0, 2 pi), at each of the (sx + 1) x (sy + 1) lattice corners; single-octave
// noise P = sqrt(2) * lerp(lerp(n00, n10, fade(fy)), lerp(n01, n11, fade(fy)), fade(fx)) with the
// row coordinate first; then P rotated by U(-90, 90) degrees about the image centre (bilinear,
// zeros outside); the mask M_u is P > 0.5. Every random value comes from Philox, so a pixel's
// value is a pure function of (seed, step, sample, pixel): the same on the CPU and the GPU, and
// the GPU kernel needs no tiled intermediate arrays. Dimension letters: N samples, H rows, W cols.
#pragma once

#include <cmath>

#include "augment/philox.h"

namespace caf {

struct PerlinParams {
  int sy, sx;       // lattice cells along rows (H) and columns (W): powers of two, 1..32
  float angle_deg;  // rotation of the noise, U(-90, 90)
};

CAF_HD PerlinParams perlin_params(uint64_t seed, uint32_t step, uint32_t sample) {
  Philox4 r = random_words(seed, step, sample, Purpose::perlin_scale, 0);
  return {1 << uniform_int(r.v[0], 6), 1 << uniform_int(r.v[1], 6), uniform(r.v[2], -90.f, 90.f)};
}

CAF_HD float perlin_fade(float t) { return t * t * t * (t * (t * 6.f - 15.f) + 10.f); }

// Unrotated noise at integer pixel (i, j) of an H x W image.
CAF_HD float perlin_at(uint64_t seed, uint32_t step, uint32_t sample, const PerlinParams& p,
                       int64_t H, int64_t W, int64_t i, int64_t j) {
  const float u = float(i) * float(p.sy) / float(H), v = float(j) * float(p.sx) / float(W);
  const int ci = int(u), cj = int(v);
  const float fy = u - float(ci), fx = v - float(cj);
  auto grad_dot = [&](int gi, int gj, float dy, float dx) {
    const uint32_t corner = uint32_t(gi * (p.sx + 1) + gj);
    const float t = 6.283185307179586f * uniform01(
                        random_words(seed, step, sample, Purpose::perlin_gradient, corner).v[0]);
    return ::cosf(t) * dy + ::sinf(t) * dx;
  };
  const float n00 = grad_dot(ci, cj, fy, fx), n10 = grad_dot(ci + 1, cj, fy - 1.f, fx);
  const float n01 = grad_dot(ci, cj + 1, fy, fx - 1.f), n11 = grad_dot(ci + 1, cj + 1, fy - 1.f, fx - 1.f);
  const float ty = perlin_fade(fy), tx = perlin_fade(fx);
  const float a = n00 + ty * (n10 - n00), b = n01 + ty * (n11 - n01);
  return 1.41421356237f * (a + tx * (b - a));
}

// Noise of sample n at pixel (i, j) after the rotation: bilinear from the four unrotated
// neighbours of the inverse-rotated position, zeros outside the image.
CAF_HD float perlin_rotated(uint64_t seed, uint32_t step, uint32_t sample, int64_t H, int64_t W,
                            int64_t i, int64_t j) {
  const PerlinParams p = perlin_params(seed, step, sample);
  const float rad = p.angle_deg * 0.017453292519943295f, c = ::cosf(rad), s = ::sinf(rad);
  const float cy = 0.5f * float(H - 1), cx = 0.5f * float(W - 1);
  const float dy = float(i) - cy, dx = float(j) - cx;
  const float y = cy + c * dy - s * dx, x = cx + s * dy + c * dx;  // inverse rotation
  const float y0f = ::floorf(y), x0f = ::floorf(x);
  const int64_t y0 = int64_t(y0f), x0 = int64_t(x0f);
  const float wy = y - y0f, wx = x - x0f;
  float acc = 0.f;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) {
      const int64_t yy = y0 + a, xx = x0 + b;
      const float w = (a ? wy : 1.f - wy) * (b ? wx : 1.f - wx);
      if (w == 0.f || yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
      acc += w * perlin_at(seed, step, sample, p, H, W, yy, xx);
    }
  return acc;
}

// Functor over N*H*W pixels: writes the rotated noise (or, with threshold, the 0/1 mask).
struct PerlinNoise {
  float* out;
  uint64_t seed;
  uint32_t step, first_sample;
  int64_t H, W;
  bool mask;  // true: out = (P > 0.5) ? 1 : 0
  CAF_HD void operator()(int64_t idx) const {
    const int64_t j = idx % W, i = (idx / W) % H, n = idx / (H * W);
    const float p = perlin_rotated(seed, step, first_sample + uint32_t(n), H, W, i, j);
    out[idx] = mask ? (p > 0.5f ? 1.f : 0.f) : p;
  }
};

}  // namespace caf
