// augment/simulate.h: the anomaly simulation of a whole batch as a fixed sequence of passes.
//
// One call turns a batch of clean images into (target, image with anomaly, mask), entirely on the
// device that holds the batch, with no host synchronisation (METHOD.md 10):
//    1. plans        one thread per sample draws its SamplePlan (augment/plan.h)
//    2. gradients    one thread per (sample, lattice corner): Perlin gradients, in double once
//    3. source ops   3 stages; each = histogram + lookup tables + one pass over all pixels, where
//                    every sample applies its own k-th operation (augment/source_ops.h)
//    4. rotation     normal images of classes that allow it, reflection at the borders (4.5)
//    5. compose      per pixel: transparent / opaque blend (4.3) with Perlin computed in place, or
//                    NDAA's sine distortion and primitive mask M_o (4.4 steps 1-3)
//    6. NDAA blocks  mean of M_o over block x block tiles (4.4 step 4)
//    7. NDAA finish  M_l = resized block means > 0.5; M = M_o * M_l; pixels outside M restored
// That is at most 18 launches per batch whatever its size, the same sequence on every step (so a
// CUDA graph can capture it).
// Passes 1, 2, 4-7 and the pixel part of 3 are CAF_HD functors run by cpu_for_each or the CUDA
// grid-stride launcher, so the CPU reference is the GPU's own per-pixel code; only the histogram
// has two implementations (a loop; a shared-memory kernel with integer atomics).
// Layout: images planar NCHW float in [0, 1] (C = 3), masks N1HW 0/1, textures NCHW uint8.
#pragma once

#include <cstdint>

#include "augment/plan.h"

namespace caf {

struct SimulateArgs {
  PlanSettings plan;
  int64_t n = 0;                  // batch; height and width are plan.height, plan.width
  float threshold = 0.5f;         // Perlin threshold (4.1)
  float tau = 0.05f;              // NDAA difference threshold (4.4)
  int32_t block = 8;              // NDAA block size (4.4)
  uint8_t reflect = 1;            // rotation fill: reflection (1) or zeros (0)
  const float* clean = nullptr;   // [n, 3, H, W]
  const uint8_t* bank = nullptr;  // [texture_count, 3, H, W]
  float* target = nullptr;        // [n, 3, H, W]; rotated normal image (R's target); may be null
                                  // when the class has no rotation (then clean is the target)
  float* image = nullptr;         // [n, 3, H, W]
  float* mask = nullptr;          // [n, 1, H, W]
  // Workspace (see simulate_workspace_bytes).
  SamplePlan* plans = nullptr;    // [n]
  float* grads = nullptr;         // [n, kPerlinCorners, 2]
  uint8_t* tex[2] = {};           // [n, 3, H, W] each: ping-pong between source-op stages
  int32_t* hist = nullptr;        // [n, 3, 256]
  uint8_t* lut = nullptr;         // [n, 3, 256]
  float* blocks = nullptr;        // [n, ceil(H / block), ceil(W / block)]

  int64_t blocks_h() const { return (plan.height + block - 1) / block; }
  int64_t blocks_w() const { return (plan.width + block - 1) / block; }
};

// Bytes of workspace for a batch of n, and the pointers into one allocation of that size.
size_t simulate_workspace_bytes(const SimulateArgs& a);
void simulate_workspace_bind(SimulateArgs& a, void* workspace);

namespace cpu {
void simulate(const SimulateArgs& a);
// One source-op stage (pass 3, stage k) from `in` (the bank when in_is_bank, else a per-sample
// buffer) to `out`; a.plans must already hold the plans. Exposed for the source-op tests.
void source_stage(const SimulateArgs& a, int k, const uint8_t* in, bool in_is_bank, uint8_t* out);
}  // namespace cpu
namespace cuda {
void simulate(const SimulateArgs& a);
void source_stage(const SimulateArgs& a, int k, const uint8_t* in, bool in_is_bank, uint8_t* out);
}  // namespace cuda

// ---- the per-element passes --------------------------------------------------------------------

CAF_HD bool uses_texture(const SamplePlan& p) {
  return p.generator == Generator::transparent || p.generator == Generator::opaque;
}

struct PlanPass {
  PlanSettings s;
  SamplePlan* plans;
  CAF_HD void operator()(int64_t n) const { plans[n] = plan_sample(s, uint32_t(n)); }
};

struct GradientPass {
  PlanSettings s;
  const SamplePlan* plans;
  float* grads;
  CAF_HD void operator()(int64_t idx) const {
    const int64_t n = idx / kPerlinCorners, corner = idx % kPerlinCorners;
    const SamplePlan& p = plans[n];
    if (!uses_texture(p) || corner >= (p.perlin.sy + 1) * (p.perlin.sx + 1)) return;
    perlin_gradient(s.seed, s.step_now(), s.first_sample + uint32_t(n), uint32_t(corner), grads + 2 * idx);
  }
};

// The texture a stage reads for sample n: the bank entry (stage 0) or the previous stage's output.
CAF_HD const uint8_t* stage_input(const SamplePlan& p, const uint8_t* in, bool in_is_bank,
                                  int64_t n, int64_t plane3) {
  return in + (in_is_bank ? int64_t(p.texture) : n) * plane3;
}

struct LutPass {  // one thread per (sample, channel)
  const SamplePlan* plans;
  int k;
  const int32_t* hist;
  int64_t total;
  uint8_t* lut;
  CAF_HD void operator()(int64_t idx) const {
    const SamplePlan& p = plans[idx / 3];
    if (!uses_texture(p) || !source_op_uses_lut(p.ops[k])) return;
    source_op_lut(p.ops[k], p.op_params[k], int(idx % 3), hist + idx * 256, total, lut + idx * 256);
  }
};

struct StagePass {  // one thread per (sample, pixel)
  const SamplePlan* plans;
  int k;
  const uint8_t* in;
  bool in_is_bank;
  uint8_t* out;
  const uint8_t* lut;
  int64_t H, W;
  CAF_HD void operator()(int64_t idx) const {
    const int64_t n = idx / (H * W), ij = idx % (H * W);
    const SamplePlan& p = plans[n];
    if (!uses_texture(p)) return;
    source_op_pixel(p.ops[k], p.op_params[k], stage_input(p, in, in_is_bank, n, 3 * H * W),
                    lut + n * 3 * 256, H, W, ij / W, ij % W, out + n * 3 * H * W);
  }
};

// Mirror a coordinate into [0, n - 1] (reflection about the border pixels' centres).
CAF_HD float reflect_coord(float v, float last) {
  if (last <= 0.f) return 0.f;
  for (int guard = 0; guard < 8 && (v < 0.f || v > last); ++guard) v = v < 0.f ? -v : 2.f * last - v;
  return v < 0.f ? 0.f : (v > last ? last : v);
}

struct RotatePass {  // normal-image rotation (METHOD 4.5): one thread per (sample, pixel)
  const SamplePlan* plans;
  const float* clean;
  float* target;
  int64_t H, W;
  bool reflect;
  CAF_HD void operator()(int64_t idx) const {
    const int64_t n = idx / (H * W), ij = idx % (H * W), i = ij / W, j = ij % W;
    const SamplePlan& p = plans[n];
    const float* src = clean + n * 3 * H * W;
    float* dst = target + n * 3 * H * W;
    if (!p.rotate) {
      for (int c = 0; c < 3; ++c) dst[c * H * W + ij] = src[c * H * W + ij];
      return;
    }
    const float cy = 0.5f * float(H - 1), cx = 0.5f * float(W - 1);
    const float dy = float(i) - cy, dx = float(j) - cx;
    float y = cy + p.rot_cos * dy - p.rot_sin * dx, x = cx + p.rot_sin * dy + p.rot_cos * dx;
    if (reflect) {
      y = reflect_coord(y, float(H - 1));
      x = reflect_coord(x, float(W - 1));
    }
    const float y0f = ::floorf(y), x0f = ::floorf(x);
    const int64_t y0 = int64_t(y0f), x0 = int64_t(x0f);
    const float wy = y - y0f, wx = x - x0f;
    float acc[3] = {0.f, 0.f, 0.f};
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b) {
        const int64_t yy = y0 + a, xx = x0 + b;
        const float w = (a ? wy : 1.f - wy) * (b ? wx : 1.f - wx);
        if (w == 0.f || yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
        for (int c = 0; c < 3; ++c) acc[c] += w * src[c * H * W + yy * W + xx];
      }
    for (int c = 0; c < 3; ++c) dst[c * H * W + ij] = acc[c];
  }
};

// NDAA's distorted image at (i, j) inside the rectangle: the sine displacement, then a bilinear
// read with coordinates clamped to the image (METHOD 4.4 step 2).
CAF_HD void ndaa_distorted(const SamplePlan& p, const float* x, int64_t H, int64_t W, int64_t i,
                           int64_t j, float* out) {
  const bool swap = p.swap_axes != 0;
  const float span = float((swap ? p.rect_h : p.rect_w) - 1);
  const float u = float(swap ? i - p.rect_y0 : j - p.rect_x0) / span;
  const float arg = 6.2831853f * u * p.freq + p.phase;
  const float d = p.amp * float(::sin(double(arg)));
  float y = float(i) + (swap ? 0.f : d), xc = float(j) + (swap ? d : 0.f);
  y = y < 0.f ? 0.f : (y > float(H - 1) ? float(H - 1) : y);
  xc = xc < 0.f ? 0.f : (xc > float(W - 1) ? float(W - 1) : xc);
  const int64_t y0 = int64_t(::floorf(y)), x0 = int64_t(::floorf(xc));
  const int64_t y1 = y0 + 1 < H ? y0 + 1 : H - 1, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
  const float wy = y - float(y0), wx = xc - float(x0);
  for (int c = 0; c < 3; ++c) {
    const float* ch = x + c * H * W;
    const float top = ch[y0 * W + x0] + wx * (ch[y0 * W + x1] - ch[y0 * W + x0]);
    const float bottom = ch[y1 * W + x0] + wx * (ch[y1 * W + x1] - ch[y1 * W + x0]);
    out[c] = top + wy * (bottom - top);
  }
}

struct ComposePass {  // one thread per (sample, pixel)
  const SamplePlan* plans;
  const float* x;        // the base image: target (rotated) or clean
  const uint8_t* tex;    // the final source textures [n, 3, H, W]
  const float* grads;
  float* image;
  float* mask;
  int64_t H, W;
  float threshold, tau;
  CAF_HD void operator()(int64_t idx) const {
    const int64_t n = idx / (H * W), ij = idx % (H * W), i = ij / W, j = ij % W, plane = H * W;
    const SamplePlan& p = plans[n];
    const float* xs = x + n * 3 * plane;
    float* out = image + n * 3 * plane;
    float m = 0.f;
    if (uses_texture(p)) {
      // I = (1 - M) I + (1 - beta) M I + beta M N (paper eq. 1; beta = 1 gives eq. 2).
      m = perlin_rotated(grads + n * 2 * kPerlinCorners, p.perlin, H, W, i, j) > threshold ? 1.f : 0.f;
      const uint8_t* t = tex + n * 3 * plane;
      for (int c = 0; c < 3; ++c) {
        const float v = xs[c * plane + ij];
        out[c * plane + ij] = m != 0.f ? (1.f - p.beta) * v + p.beta * (float(t[c * plane + ij]) / 255.f) : v;
      }
    } else if (p.generator == Generator::ndaa && i >= p.rect_y0 && i < p.rect_y0 + p.rect_h &&
               j >= p.rect_x0 && j < p.rect_x0 + p.rect_w) {
      // Pixels of M_o keep the distortion for now; the finishing pass restores those outside M_l.
      float d[3];
      ndaa_distorted(p, xs, H, W, i, j, d);
      float diff = 0.f;
      for (int c = 0; c < 3; ++c) {
        const float v = xs[c * plane + ij];
        diff += d[c] > v ? d[c] - v : v - d[c];
      }
      m = diff / 3.f > tau ? 1.f : 0.f;
      for (int c = 0; c < 3; ++c) out[c * plane + ij] = m != 0.f ? d[c] : xs[c * plane + ij];
    } else {
      for (int c = 0; c < 3; ++c) out[c * plane + ij] = xs[c * plane + ij];
    }
    mask[idx] = m;
  }
};

struct BlockPass {  // NDAA step 4a: one thread per (sample, block): the mean of M_o
  const SamplePlan* plans;
  const float* mask;
  float* blocks;
  int64_t H, W, BH, BW;
  int32_t block;
  CAF_HD void operator()(int64_t idx) const {
    const int64_t n = idx / (BH * BW), b = idx % (BH * BW), bi = b / BW, bj = b % BW;
    if (plans[n].generator != Generator::ndaa) return;
    const float* m = mask + n * H * W;
    float sum = 0.f;
    int count = 0;
    for (int64_t i = bi * block; i < (bi + 1) * block && i < H; ++i)
      for (int64_t j = bj * block; j < (bj + 1) * block && j < W; ++j, ++count) sum += m[i * W + j];
    blocks[idx] = sum / float(count);
  }
};

struct NdaaFinishPass {  // NDAA steps 4b-6: one thread per (sample, pixel)
  const SamplePlan* plans;
  const float* x;
  const float* blocks;
  float* image;
  float* mask;
  int64_t H, W, BH, BW;
  CAF_HD void operator()(int64_t idx) const {
    const int64_t n = idx / (H * W), ij = idx % (H * W), i = ij / W, j = ij % W, plane = H * W;
    if (plans[n].generator != Generator::ndaa || mask[idx] == 0.f) return;
    // M_l: the block means resized back to H x W (bilinear, half-pixel centres), above 0.5.
    float y = (float(i) + 0.5f) * float(BH) / float(H) - 0.5f;
    float xc = (float(j) + 0.5f) * float(BW) / float(W) - 0.5f;
    y = y < 0.f ? 0.f : (y > float(BH - 1) ? float(BH - 1) : y);
    xc = xc < 0.f ? 0.f : (xc > float(BW - 1) ? float(BW - 1) : xc);
    const int64_t y0 = int64_t(y), x0 = int64_t(xc);
    const int64_t y1 = y0 + 1 < BH ? y0 + 1 : BH - 1, x1 = x0 + 1 < BW ? x0 + 1 : BW - 1;
    const float wy = y - float(y0), wx = xc - float(x0);
    const float* bl = blocks + n * BH * BW;
    const float top = bl[y0 * BW + x0] + wx * (bl[y0 * BW + x1] - bl[y0 * BW + x0]);
    const float bottom = bl[y1 * BW + x0] + wx * (bl[y1 * BW + x1] - bl[y1 * BW + x0]);
    if (top + wy * (bottom - top) > 0.5f) return;  // inside M = M_o * M_l: keep the distortion
    mask[idx] = 0.f;
    for (int c = 0; c < 3; ++c)
      image[n * 3 * plane + c * plane + ij] = x[n * 3 * plane + c * plane + ij];
  }
};

}  // namespace caf
