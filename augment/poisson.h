// augment/poisson.h: the per-pixel passes of the two benchmark-only generators (METHOD.md 4.7):
// Poisson image editing by red-black SOR (NSA's blend, 4.7.1 step 6), NSA's patch placement and
// binary label (steps 6-7), and CutPaste's jittered paste (4.7.2). augment/bench_generators.h
// draws the per-sample plans on the host and runs these passes on the images' device.
//
// Key decision: every pass is a CAF_HD functor of the pixel index over the whole batch, run by
// cpu_for_each or the CUDA grid-stride launcher, so the CPU tests run the GPU's arithmetic and the
// solver needs no hand-written kernel. The solver is red-black Gauss-Seidel with over-relaxation:
// a half-pass updates one colour of the checkerboard reading only the other, so it is race-free on
// the GPU and gives the same result on the CPU; each half-pass visits the pixels of one colour of
// the batch and a pixel outside the mask returns at once. The CutPaste and NSA passes live here
// rather than in a file of their own because they share this file's launchers (cuda/poisson.cu).
//
// The discrete problem (Pérez et al. 2003), per channel: for p in the mask Ω with in-image
// 4-neighbours N_p (k = |N_p|),
//     k f_p - sum_{q in N_p} f_q = b_p = sum_{q in N_p} v_pq,
// f_q for q outside Ω fixed to the destination (the Dirichlet border). v_pq = g_p - g_q for the
// guide g (the source placed in destination coordinates; "normal clone"), or per (pixel, channel,
// neighbour) whichever of g_p - g_q and d_p - d_q (destination) has the larger magnitude ("mixed
// clone"). SOR step: f_p += omega * ((sum_q f_q + b_p) / k - f_p).
// Layout: images planar NCHW float (C = 3), masks N1HW uint8 (regions) or float 0/1 (labels);
// dimension letters N, C, H, W; (i, j) = (row, column).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common.h"

namespace caf {

// ---- shared helpers -----------------------------------------------------------------------------

CAF_HD float clamp01(float v) {
  return v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
}

// Round to the 8-bit grid (k / 255, nearest): the benchmark is stored as 8-bit PNGs, so outputs
// are snapped here and the masks describe the pixels that change in the written files.
CAF_HD float quantize8(float v) {
  return ::floorf(clamp01(v) * 255.f + 0.5f) / 255.f;
}

// Changed pixel (METHOD 4.7.1 step 7): mean over the 3 channels of |a - b| above 1 on the uint8
// scale. a, b point at channel 0 of one pixel; plane = H * W.
CAF_HD bool pixel_changed(const float* a, const float* b, int64_t plane) {
  float d = 0.f;
  for (int c = 0; c < 3; ++c) d += ::fabsf(a[c * plane] - b[c * plane]);
  return d / 3.f > 1.f / 255.f;
}

// The in-image 4-neighbours of (i, j) as offsets from i * W + j, in a fixed order (so sums round
// alike everywhere); returns their number.
CAF_HD int neighbours4(int64_t H, int64_t W, int64_t i, int64_t j, int64_t* off) {
  int k = 0;
  if (i > 0) off[k++] = -W;
  if (i + 1 < H) off[k++] = W;
  if (j > 0) off[k++] = -1;
  if (j + 1 < W) off[k++] = 1;
  return k;
}

// Binary median of the (2r+1)^2 window around (i, j) of a 0/1 plane, border replicated (OpenCV's
// medianBlur): 1 when at least half of the window (rounded up) is 1.
CAF_HD uint8_t binary_median(const uint8_t* m, int64_t H, int64_t W, int64_t i, int64_t j, int r) {
  int ones = 0;
  for (int di = -r; di <= r; ++di) {
    int64_t y = i + di;
    y = y < 0 ? 0 : (y >= H ? H - 1 : y);
    for (int dj = -r; dj <= r; ++dj) {
      int64_t x = j + dj;
      x = x < 0 ? 0 : (x >= W ? W - 1 : x);
      ones += m[y * W + x] != 0;
    }
  }
  const int side = 2 * r + 1;
  return ones * 2 > side * side ? 1 : 0;
}

// cv2.resize's INTER_LINEAR source coordinate of destination index x when resizing n_src to n_dst
// samples: half-pixel centres, clamped to [0, n_src - 1].
CAF_HD float resize_coord(int64_t x, int64_t n_dst, int64_t n_src) {
  const float s = (float(x) + 0.5f) * (float(n_src) / float(n_dst)) - 0.5f;
  return s < 0.f ? 0.f : (s > float(n_src - 1) ? float(n_src - 1) : s);
}

// ---- Poisson solver -----------------------------------------------------------------------------

// Per sample. The solve starts Ω from the guide (the pasted source): the remaining error is then
// the smooth correction that matches the border, which SOR removes fastest.
struct PoissonSample {
  float omega = 1.9f;  // over-relaxation factor, in (0, 2)
  uint8_t mixed = 0;   // 1: mixed clone, 0: normal clone
};

struct PoissonArgs {
  int64_t n = 0, H = 0, W = 0;             // C = 3
  const uint8_t* mask = nullptr;           // [n, H, W]: 1 on Ω, the unknown pixels
  const float* guide = nullptr;            // [n, 3, H, W]: read on Ω and its 4-neighbours only
  const PoissonSample* samples = nullptr;  // [n]
  float* f = nullptr;    // [n, 3, H, W]: in the destination; out the blend (Ω only)
  float* rhs = nullptr;  // [n, 3, H, W] workspace: b on Ω
  int iterations = 0;    // SOR sweeps (one red and one black half-pass each)
};

// The default sweep count: 2000 at 256 px, in proportion to the side (SOR's convergence time grows
// linearly with the patch side at the optimal omega).
inline int poisson_default_iterations(int64_t side) {
  const int64_t it = 2000 * side / 256;
  return int(it < 100 ? 100 : it);
}

// The optimal SOR factor for the Dirichlet Laplacian on an h x w rectangle of unknowns (Young):
// rho = (cos(pi / (h + 1)) + cos(pi / (w + 1))) / 2 (Jacobi's spectral radius), omega =
// 2 / (1 + sqrt(1 - rho^2)). A mask inside the rectangle converges at least as fast.
inline float poisson_optimal_omega(int64_t h, int64_t w) {
  const double pi = 3.14159265358979323846;
  const double rho = 0.5 * (std::cos(pi / double(h + 1)) + std::cos(pi / double(w + 1)));
  return float(2.0 / (1.0 + std::sqrt(1.0 - rho * rho)));
}

// b = the guidance field summed around each pixel of Ω; one thread per pixel.
struct PoissonRhsPass {
  PoissonArgs a;
  CAF_HD void operator()(int64_t idx) const {
    if (!a.mask[idx]) return;
    const int64_t plane = a.H * a.W, n = idx / plane, ij = idx % plane, i = ij / a.W, j = ij % a.W;
    int64_t off[4];
    const int k = neighbours4(a.H, a.W, i, j, off);
    const bool mixed = a.samples[n].mixed != 0;
    for (int c = 0; c < 3; ++c) {
      const int64_t at = (n * 3 + c) * plane + ij;
      float b = 0.f;
      for (int e = 0; e < k; ++e) {
        float v = a.guide[at] - a.guide[at + off[e]];
        if (mixed) {
          const float d = a.f[at] - a.f[at + off[e]];
          if (::fabsf(d) > ::fabsf(v)) v = d;
        }
        b += v;
      }
      a.rhs[at] = b;
    }
  }
};

struct PoissonInitPass {  // the starting point on Ω: the guide; one thread per pixel
  PoissonArgs a;
  CAF_HD void operator()(int64_t idx) const {
    const int64_t plane = a.H * a.W, n = idx / plane, ij = idx % plane;
    if (!a.mask[idx]) return;
    for (int c = 0; c < 3; ++c) a.f[(n * 3 + c) * plane + ij] = a.guide[(n * 3 + c) * plane + ij];
  }
};

// One half-pass: the pixels with (i + j) % 2 == parity. Index over (n, i, column pair), so each
// thread owns one pixel of the colour.
struct PoissonSorPass {
  PoissonArgs a;
  int parity;
  CAF_HD void operator()(int64_t idx) const {
    const int64_t half = (a.W + 1) / 2, n = idx / (a.H * half), r = idx % (a.H * half);
    const int64_t i = r / half, j = 2 * (r % half) + ((i + parity) & 1);
    if (j >= a.W) return;
    const int64_t plane = a.H * a.W, ij = i * a.W + j;
    if (!a.mask[n * plane + ij]) return;
    int64_t off[4];
    const int k = neighbours4(a.H, a.W, i, j, off);
    const float omega = a.samples[n].omega;
    for (int c = 0; c < 3; ++c) {
      float* fc = a.f + (n * 3 + c) * plane;
      float s = 0.f;
      for (int e = 0; e < k; ++e) s += fc[ij + off[e]];
      const float target = (s + a.rhs[(n * 3 + c) * plane + ij]) / float(k);
      fc[ij] += omega * (target - fc[ij]);
    }
  }
};
inline int64_t poisson_half_pass_size(const PoissonArgs& a) {
  return a.n * a.H * ((a.W + 1) / 2);
}

// Per pixel: residual = max over channels of |k f_p - sum f_q - b_p| and magnitude = max over
// channels of |b_p| on Ω (in double, so the measure is not limited by its own rounding), 0
// elsewhere. The host reduces both to the relative residual.
struct PoissonResidualPass {
  PoissonArgs a;
  float* residual;   // [n, H, W]
  float* magnitude;  // [n, H, W]
  CAF_HD void operator()(int64_t idx) const {
    residual[idx] = 0.f;
    magnitude[idx] = 0.f;
    if (!a.mask[idx]) return;
    const int64_t plane = a.H * a.W, n = idx / plane, ij = idx % plane, i = ij / a.W, j = ij % a.W;
    int64_t off[4];
    const int k = neighbours4(a.H, a.W, i, j, off);
    double r_max = 0.0, b_max = 0.0;
    for (int c = 0; c < 3; ++c) {
      const float* fc = a.f + (n * 3 + c) * plane;
      const double b = double(a.rhs[(n * 3 + c) * plane + ij]);
      double r = double(k) * double(fc[ij]) - b;
      for (int e = 0; e < k; ++e) r -= double(fc[ij + off[e]]);
      r = r < 0.0 ? -r : r;
      const double mag = b < 0.0 ? -b : b;
      r_max = r > r_max ? r : r_max;
      b_max = mag > b_max ? mag : b_max;
    }
    residual[idx] = float(r_max);
    magnitude[idx] = float(b_max);
  }
};

// ---- NSA (METHOD 4.7.1) -------------------------------------------------------------------------

// One patch of one sample in one blending round: the source rectangle, resized bilinearly to the
// destination rectangle. dst_h == 0: the sample has no patch in this round.
struct NsaPatchGeom {
  int32_t src_y0, src_x0, src_h, src_w;
  int32_t dst_y0, dst_x0, dst_h, dst_w;
};

// Places the resized source patch into the guide and marks Ω = the destination rectangle without
// its one-pixel border (NSA zeroes the border of its seamlessClone mask, so the rectangle's outer
// ring is the Dirichlet border). Outside the rectangle the mask is 0 and the guide is not written.
struct NsaPlacePass {  // one thread per (sample, pixel)
  const NsaPatchGeom* geom;
  const float* source;  // [n, 3, H, W]
  float* guide;         // [n, 3, H, W]
  uint8_t* mask;        // [n, H, W]
  int64_t H, W;
  CAF_HD void operator()(int64_t idx) const {
    const int64_t plane = H * W, n = idx / plane, ij = idx % plane, i = ij / W, j = ij % W;
    const NsaPatchGeom g = geom[n];
    const int64_t y = i - g.dst_y0, x = j - g.dst_x0;
    mask[idx] = 0;
    if (g.dst_h == 0 || y < 0 || y >= g.dst_h || x < 0 || x >= g.dst_w) return;
    mask[idx] = y > 0 && x > 0 && y + 1 < g.dst_h && x + 1 < g.dst_w;
    const float sy = resize_coord(y, g.dst_h, g.src_h), sx = resize_coord(x, g.dst_w, g.src_w);
    const int64_t y0 = int64_t(sy), x0 = int64_t(sx);
    const int64_t y1 = y0 + 1 < g.src_h ? y0 + 1 : y0, x1 = x0 + 1 < g.src_w ? x0 + 1 : x0;
    const float wy = sy - float(y0), wx = sx - float(x0);
    for (int c = 0; c < 3; ++c) {
      const float* s = source + (n * 3 + c) * plane + int64_t(g.src_y0) * W + g.src_x0;
      const float top = s[y0 * W + x0] + wx * (s[y0 * W + x1] - s[y0 * W + x0]);
      const float bottom = s[y1 * W + x0] + wx * (s[y1 * W + x1] - s[y1 * W + x0]);
      guide[(n * 3 + c) * plane + ij] = top + wy * (bottom - top);
    }
  }
};

// After each round: Ω saturated and snapped to 8 bits, as cv2.seamlessClone's uint8 output is.
struct NsaRoundPass {
  const uint8_t* mask;  // [n, H, W]
  float* f;             // [n, 3, H, W]
  int64_t H, W;
  CAF_HD void operator()(int64_t idx) const {
    if (!mask[idx]) return;
    const int64_t plane = H * W, n = idx / plane, ij = idx % plane;
    for (int c = 0; c < 3; ++c)
      f[(n * 3 + c) * plane + ij] = quantize8(f[(n * 3 + c) * plane + ij]);
  }
};

// Label, step 1: changed = inside the union of patch masks and changed by more than 1/255.
struct NsaChangedPass {
  const float* original;       // [n, 3, H, W]
  const float* image;          // [n, 3, H, W]
  const uint8_t* patch_union;  // [n, H, W]
  uint8_t* changed;            // [n, H, W]
  int64_t H, W;
  CAF_HD void operator()(int64_t idx) const {
    const int64_t plane = H * W, n = idx / plane, ij = idx % plane, at = n * 3 * plane + ij;
    changed[idx] = patch_union[idx] && pixel_changed(image + at, original + at, plane);
  }
};

// Label, step 2: 5 x 5 median of `changed`, then ANDed with the union again: outside every patch
// nothing changed, and the median alone can switch on a pixel in a concave corner of the union.
struct NsaLabelPass {
  const uint8_t* changed;      // [n, H, W]
  const uint8_t* patch_union;  // [n, H, W]
  float* label;                // [n, 1, H, W]
  int64_t H, W;
  CAF_HD void operator()(int64_t idx) const {
    const int64_t plane = H * W, n = idx / plane, ij = idx % plane;
    const bool on = patch_union[idx] && binary_median(changed + n * plane, H, W, ij / W, ij % W, 2);
    label[idx] = on ? 1.f : 0.f;
  }
};

// ---- CutPaste (METHOD 4.7.2) --------------------------------------------------------------------

struct CutPastePlan {
  uint8_t scar;                          // 0: CutPaste (normal), 1: CutPaste-Scar
  int32_t src_y0, src_x0, src_h, src_w;  // the cut rectangle
  int32_t dst_y0, dst_x0, dst_h, dst_w;  // where it lands: the rectangle (normal) or the bounding
                                         // box of the rotated patch (scar, "expand")
  float angle_deg, cos_a, sin_a;         // scar rotation, counterclockwise as PIL; 0 for normal
  float brightness, contrast, saturation, hue;  // ColorJitter factors; hue in turns
  float gray_mean;  // mean gray of the cut patch after the brightness step: contrast's reference
};

// ITU-R 601 luma with torchvision's weights (rgb_to_grayscale).
CAF_HD float gray_of(const float* rgb) {
  return 0.2989f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
}

// Turns the hue of a pixel by `shift` turns in HSV (torchvision's adjust_hue arithmetic).
CAF_HD void hue_shift(float* rgb, float shift) {
  const float r = rgb[0], g = rgb[1], b = rgb[2];
  const float mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
  const float mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
  const float cr = mx - mn;
  if (cr == 0.f) return;  // grey: no hue to turn
  const float s = cr / mx, rc = (mx - r) / cr, gc = (mx - g) / cr, bc = (mx - b) / cr;
  float h = mx == r ? bc - gc : (mx == g ? 2.f + rc - bc : 4.f + gc - rc);
  h = h / 6.f + 1.f + shift;
  h -= ::floorf(h);
  const float h6 = h * 6.f, sector_f = ::floorf(h6), f = h6 - sector_f;
  const int sector = int(sector_f) % 6;
  const float p = clamp01(mx * (1.f - s)), q = clamp01(mx * (1.f - s * f));
  const float t = clamp01(mx * (1.f - s * (1.f - f)));
  // Each channel's value per sector of the hue circle, as an index into {v, t, p, q}.
  const float val[4] = {mx, t, p, q};
  const int pick[6][3] = {{0, 1, 2}, {3, 0, 2}, {2, 0, 1}, {2, 3, 0}, {1, 2, 0}, {0, 2, 3}};
  for (int c = 0; c < 3; ++c) rgb[c] = val[pick[sector][c]];
}

// ColorJitter on one pixel, in a fixed order (torchvision draws a random order per call; caf fixes
// brightness, contrast, saturation, hue so the contrast reference is one number per patch). Each
// step clamps to [0, 1] as torchvision does. Factors 1, 1, 1, 0 leave the pixel bit-identical.
CAF_HD void cutpaste_jitter(const CutPastePlan& p, float* rgb) {
  for (int c = 0; c < 3; ++c) rgb[c] = clamp01(rgb[c] * p.brightness);
  for (int c = 0; c < 3; ++c)
    rgb[c] = clamp01(p.contrast * rgb[c] + (1.f - p.contrast) * p.gray_mean);
  const float gray = gray_of(rgb);
  for (int c = 0; c < 3; ++c) rgb[c] = clamp01(p.saturation * rgb[c] + (1.f - p.saturation) * gray);
  if (p.hue != 0.f) hue_shift(rgb, p.hue);
}

// Per (sample, pixel): the pasted image and its mask. Normal: inside the destination rectangle the
// pixel is the jittered source pixel. Scar: the jittered patch is rotated about its centre into
// the bounding box, bilinearly, and blended with the bilinear alpha (the coverage of the patch):
// out = (1 - alpha) x + alpha * colour. The mask is the pasted region (normal: the rectangle; scar:
// alpha > 0.5) restricted to pixels that changed (pixel_changed), so it marks exactly the pixels
// whose values differ; outputs are snapped to 8 bits first.
struct CutPastePass {
  const CutPastePlan* plans;
  const float* x;  // [n, 3, H, W]
  float* image;    // [n, 3, H, W]
  float* mask;     // [n, 1, H, W]
  int64_t H, W;
  CAF_HD void operator()(int64_t idx) const {
    const int64_t plane = H * W, n = idx / plane, ij = idx % plane, i = ij / W, j = ij % W;
    const CutPastePlan& p = plans[n];
    const float* xs = x + n * 3 * plane;
    float* out = image + n * 3 * plane;
    const int64_t u = i - p.dst_y0, v = j - p.dst_x0;
    bool pasted = false;
    float rgb[3] = {xs[ij], xs[plane + ij], xs[2 * plane + ij]};
    if (u >= 0 && u < p.dst_h && v >= 0 && v < p.dst_w) {
      if (!p.scar) {
        const int64_t at = (p.src_y0 + u) * W + (p.src_x0 + v);
        for (int c = 0; c < 3; ++c) rgb[c] = xs[c * plane + at];
        cutpaste_jitter(p, rgb);
        for (int c = 0; c < 3; ++c) rgb[c] = quantize8(rgb[c]);
        pasted = true;
      } else {
        // Inverse rotation of the box position about the centres of box and patch.
        const float dy = float(u) - 0.5f * float(p.dst_h - 1),
                    dx = float(v) - 0.5f * float(p.dst_w - 1);
        const float py = 0.5f * float(p.src_h - 1) + p.sin_a * dx + p.cos_a * dy;
        const float px = 0.5f * float(p.src_w - 1) + p.cos_a * dx - p.sin_a * dy;
        const float y0f = ::floorf(py), x0f = ::floorf(px), wy = py - y0f, wx = px - x0f;
        float alpha = 0.f, premul[3] = {0.f, 0.f, 0.f};
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 2; ++b) {
            const int64_t yy = int64_t(y0f) + a, xx = int64_t(x0f) + b;
            const float w = (a ? wy : 1.f - wy) * (b ? wx : 1.f - wx);
            if (w == 0.f || yy < 0 || yy >= p.src_h || xx < 0 || xx >= p.src_w) continue;
            const int64_t at = (p.src_y0 + yy) * W + (p.src_x0 + xx);
            float s[3] = {xs[at], xs[plane + at], xs[2 * plane + at]};
            cutpaste_jitter(p, s);
            alpha += w;
            for (int c = 0; c < 3; ++c) premul[c] += w * s[c];
          }
        // The corners' colours weighted by their coverage: premul is already colour * alpha.
        if (alpha > 0.f)
          for (int c = 0; c < 3; ++c) rgb[c] = quantize8((1.f - alpha) * rgb[c] + premul[c]);
        pasted = alpha > 0.5f;
      }
    }
    for (int c = 0; c < 3; ++c) out[c * plane + ij] = rgb[c];
    mask[idx] = pasted && pixel_changed(out + ij, xs + ij, plane) ? 1.f : 0.f;
  }
};

// ---- launchers: the same functors on either device ----------------------------------------------

struct NsaPlaceArgs {
  int64_t n = 0, H = 0, W = 0;
  const NsaPatchGeom* geom = nullptr;
  const float* source = nullptr;
  float* guide = nullptr;
  uint8_t* mask = nullptr;
};
struct NsaLabelArgs {
  int64_t n = 0, H = 0, W = 0;
  const float* original = nullptr;
  const float* image = nullptr;
  const uint8_t* patch_union = nullptr;
  uint8_t* changed = nullptr;  // workspace [n, H, W]
  float* label = nullptr;      // [n, 1, H, W]
};
struct CutPasteArgs {
  int64_t n = 0, H = 0, W = 0;
  const CutPastePlan* plans = nullptr;
  const float* x = nullptr;
  float* image = nullptr;
  float* mask = nullptr;
};

// poisson_solve: b, the start on Ω, then `iterations` red and black half-passes; writes f on Ω.
// poisson_residual: the per-pixel residual and |b| (see PoissonResidualPass) of the current f.
// nsa_place: guide and Ω of one round; nsa_round: saturate and snap Ω; nsa_label: the binary label.
namespace cpu {
void poisson_solve(const PoissonArgs& a);
void poisson_residual(const PoissonArgs& a, float* residual, float* magnitude);
void nsa_place(const NsaPlaceArgs& a);
void nsa_round(const PoissonArgs& a);
void nsa_label(const NsaLabelArgs& a);
void cutpaste_paste(const CutPasteArgs& a);
}  // namespace cpu
namespace cuda {
void poisson_solve(const PoissonArgs& a);
void poisson_residual(const PoissonArgs& a, float* residual, float* magnitude);
void nsa_place(const NsaPlaceArgs& a);
void nsa_round(const PoissonArgs& a);
void nsa_label(const NsaLabelArgs& a);
void cutpaste_paste(const CutPasteArgs& a);
}  // namespace cuda

}  // namespace caf
