// augment/perlin.h: DRAEM's Perlin-noise anomaly shapes (METHOD.md 4.1), computed per pixel.
//
// For each sample: lattice scales sx = 2^a, sy = 2^b with a, b uniform in {0..5}; a gradient
// (cos t, sin t), t ~ U[0, 2 pi), at each of the (sy + 1) x (sx + 1) lattice corners; single-octave
// noise P = sqrt(2) * lerp(lerp(n00, n10, fade(fy)), lerp(n01, n11, fade(fy)), fade(fx)) with the
// row coordinate first; then P rotated by U(-90, 90) degrees about the image centre (bilinear,
// zeros outside); the mask M_u is P > 0.5.
//
// Key decision: every transcendental (the corner gradients' cos/sin, the rotation's) is evaluated
// once per sample or per corner, in double, and rounded to float; the per-pixel work is then only
// +, -, * and floor, which the CPU (-ffp-contract=off) and CUDA (-fmad=false) evaluate bit for
// bit alike. So a pixel's value is a pure function of (seed, step, sample, pixel), equal on both
// devices, and the per-pixel kernel reads a 33 x 33 table instead of DRAEM's tiled full-size
// gradient arrays. Dimension letters: N samples, H rows, W cols.
#pragma once

#include <cmath>

#include "augment/philox.h"

namespace caf {

inline constexpr int kPerlinMaxScale = 32;
inline constexpr int kPerlinCorners = (kPerlinMaxScale + 1) * (kPerlinMaxScale + 1);

struct PerlinParams {
  int sy, sx;     // lattice cells along rows (H) and columns (W): powers of two, 1..32
  float cos_a;    // rotation of the noise by a ~ U(-90, 90) degrees
  float sin_a;
  float angle_deg;
};

CAF_HD PerlinParams perlin_params(uint64_t seed, uint32_t step, uint32_t sample) {
  const Philox4 r = random_words(seed, step, sample, Purpose::perlin_scale, 0);
  const float deg = uniform(r.v[2], -90.f, 90.f);
  const double rad = double(deg) * 0.017453292519943295;
  return {1 << uniform_int(r.v[0], 6), 1 << uniform_int(r.v[1], 6), float(::cos(rad)),
          float(::sin(rad)), deg};
}

// The gradient of lattice corner `corner` (row-major over (sy + 1) x (sx + 1)): (dy, dx) weights.
CAF_HD void perlin_gradient(uint64_t seed, uint32_t step, uint32_t sample, uint32_t corner,
                            float* g) {
  const double t = 6.283185307179586 *
                   double(uniform01(random_words(seed, step, sample, Purpose::perlin_gradient, corner).v[0]));
  g[0] = float(::cos(t));
  g[1] = float(::sin(t));
}

CAF_HD float perlin_fade(float t) { return t * t * t * (t * (t * 6.f - 15.f) + 10.f); }

// Unrotated noise at integer pixel (i, j) of an H x W image; g holds the corner gradients.
CAF_HD float perlin_at(const float* g, const PerlinParams& p, int64_t H, int64_t W, int64_t i,
                       int64_t j) {
  const float u = float(i) * float(p.sy) / float(H), v = float(j) * float(p.sx) / float(W);
  const int ci = int(u), cj = int(v);
  const float fy = u - float(ci), fx = v - float(cj);
  auto grad_dot = [&](int gi, int gj, float dy, float dx) {
    const float* c = g + 2 * (gi * (p.sx + 1) + gj);
    return c[0] * dy + c[1] * dx;
  };
  const float n00 = grad_dot(ci, cj, fy, fx), n10 = grad_dot(ci + 1, cj, fy - 1.f, fx);
  const float n01 = grad_dot(ci, cj + 1, fy, fx - 1.f), n11 = grad_dot(ci + 1, cj + 1, fy - 1.f, fx - 1.f);
  const float ty = perlin_fade(fy), tx = perlin_fade(fx);
  const float a = n00 + ty * (n10 - n00), b = n01 + ty * (n11 - n01);
  return 1.41421356237f * (a + tx * (b - a));
}

// Noise at pixel (i, j) after the rotation: bilinear from the four unrotated neighbours of the
// inverse-rotated position, zeros outside the image.
CAF_HD float perlin_rotated(const float* g, const PerlinParams& p, int64_t H, int64_t W, int64_t i,
                            int64_t j) {
  const float cy = 0.5f * float(H - 1), cx = 0.5f * float(W - 1);
  const float dy = float(i) - cy, dx = float(j) - cx;
  const float y = cy + p.cos_a * dy - p.sin_a * dx, x = cx + p.sin_a * dy + p.cos_a * dx;
  const float y0f = ::floorf(y), x0f = ::floorf(x);
  const int64_t y0 = int64_t(y0f), x0 = int64_t(x0f);
  const float wy = y - y0f, wx = x - x0f;
  float acc = 0.f;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) {
      const int64_t yy = y0 + a, xx = x0 + b;
      const float w = (a ? wy : 1.f - wy) * (b ? wx : 1.f - wx);
      if (w == 0.f || yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
      acc += w * perlin_at(g, p, H, W, yy, xx);
    }
  return acc;
}

}  // namespace caf
