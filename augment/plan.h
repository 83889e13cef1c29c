// augment/plan.h: what happens to each sample of a batch, drawn from the counter-based generator.
//
// A SamplePlan holds every random choice for one sample (METHOD.md 4): whether the normal image is
// rotated (4.5), whether it gets an anomaly and from which generator (4: normal with probability
// 0.5, else one enabled generator uniformly), the Perlin shape (4.1), texture, source operations and
// their parameters (4.2), beta (4.3) and NDAA's rectangle and sine (4.4). plan_sample is a pure
// function of (seed, step, sample) and the settings, CAF_HD, so the device draws its own plans (no
// host round trip) and the CPU draws identical ones for tests, previews and manifests.
#pragma once

#include <cmath>
#include <cstdint>

#include "augment/perlin.h"
#include "augment/philox.h"
#include "augment/source_ops.h"

namespace caf {

enum class Generator : uint8_t { none, transparent, opaque, ndaa };
inline constexpr int kGeneratorCount = 3;  // anomaly generators (none excluded)
const char* generator_name(Generator g);

// Everything plan_sample needs: the constants of METHOD 4 (the [proposed] ones are config keys,
// see augment/simulator.h) and the class's selection. Plain data: it is copied into kernels.
struct PlanSettings {
  uint64_t seed = 0;
  uint32_t step = 0;
  // When set, the step number is read from here (memory on the simulating device) instead of
  // `step`: a CUDA graph that captured the simulation then draws a new step's anomalies on every
  // replay, from a counter the graph itself advances.
  const uint32_t* step_ptr = nullptr;
  CAF_HD uint32_t step_now() const { return step_ptr ? *step_ptr : step; }
  uint32_t first_sample = 0;       // sample index of row 0 of the batch
  int64_t height = 256, width = 256;
  int32_t texture_count = 0;
  uint8_t enabled[kGeneratorCount] = {1, 1, 1};  // transparent, opaque, ndaa
  uint8_t rotation = 0;            // the class allows rotating normal images
  float p_anomaly = 0.5f;
  float beta_lo = 0.2f, beta_hi = 0.8f;
  float rotation_p = 0.3f, rotation_deg = 90.f;
  float ndaa_size_lo = 0.1f, ndaa_size_hi = 0.5f;   // rectangle side / image side
  float ndaa_amp_lo = 2.f, ndaa_amp_hi = 8.f;       // pixels
  float ndaa_freq_lo = 0.5f, ndaa_freq_hi = 2.f;    // periods across the rectangle
};

struct SamplePlan {
  Generator generator;
  uint8_t rotate;          // rotate the normal image (before composing the anomaly)
  SourceOp ops[kSourceOpsPerSample];
  int32_t texture;
  float rot_cos, rot_sin;  // normal-image rotation
  float beta;              // anomaly opacity: U(beta_lo, beta_hi) transparent, 1 opaque
  PerlinParams perlin;
  float op_params[kSourceOpsPerSample][3];
  int32_t rect_y0, rect_x0, rect_h, rect_w;  // NDAA rectangle
  uint8_t swap_axes;       // NDAA: displace columns as a function of the row (else rows by column)
  float amp, freq, phase;  // NDAA sine: amplitude (px), periods, phase (rad)
};

CAF_HD SamplePlan plan_sample(const PlanSettings& s, uint32_t row) {
  const uint32_t sample = s.first_sample + row, step = s.step_now();
  SamplePlan p{};
  p.generator = Generator::none;
  p.beta = 1.f;

  const Philox4 rot = random_words(s.seed, step, sample, Purpose::rotation, 0);
  p.rotate = s.rotation && uniform01(rot.v[0]) < s.rotation_p;
  const double rad = double(uniform(rot.v[1], -s.rotation_deg, s.rotation_deg)) * 0.017453292519943295;
  p.rot_cos = p.rotate ? float(::cos(rad)) : 1.f;
  p.rot_sin = p.rotate ? float(::sin(rad)) : 0.f;

  const Philox4 choice = random_words(s.seed, step, sample, Purpose::choice, 0);
  int n_enabled = 0;
  for (int g = 0; g < kGeneratorCount; ++g) n_enabled += s.enabled[g] != 0;
  if (n_enabled > 0 && uniform01(choice.v[0]) < s.p_anomaly) {
    int pick = int(uniform_int(choice.v[1], uint32_t(n_enabled)));
    for (int g = 0; g < kGeneratorCount; ++g)
      if (s.enabled[g] && pick-- == 0) p.generator = Generator(g + 1);
  }

  if (p.generator == Generator::transparent || p.generator == Generator::opaque) {
    p.perlin = perlin_params(s.seed, step, sample);
    const Philox4 blend = random_words(s.seed, step, sample, Purpose::blend, 0);
    if (p.generator == Generator::transparent) p.beta = uniform(blend.v[0], s.beta_lo, s.beta_hi);
    // Texture and 3 distinct operations in random order (a partial Fisher-Yates shuffle).
    const Philox4 tex = random_words(s.seed, step, sample, Purpose::texture, 0);
    p.texture = int32_t(uniform_int(tex.v[0], uint32_t(s.texture_count > 0 ? s.texture_count : 1)));
    uint8_t order[kSourceOpCount];
    for (int k = 0; k < kSourceOpCount; ++k) order[k] = uint8_t(k);
    for (int k = 0; k < kSourceOpsPerSample; ++k) {
      const int swap = k + int(uniform_int(tex.v[1 + k], uint32_t(kSourceOpCount - k)));
      const uint8_t t = order[k];
      order[k] = order[swap];
      order[swap] = t;
      p.ops[k] = SourceOp(order[k]);
      source_op_params(p.ops[k], random_words(s.seed, step, sample, Purpose::texture_op, uint32_t(k)),
                       p.op_params[k]);
    }
  } else if (p.generator == Generator::ndaa) {
    const Philox4 a = random_words(s.seed, step, sample, Purpose::ndaa, 0);
    const Philox4 b = random_words(s.seed, step, sample, Purpose::ndaa, 1);
    p.rect_h = int32_t(uniform(a.v[0], s.ndaa_size_lo, s.ndaa_size_hi) * float(s.height));
    p.rect_w = int32_t(uniform(a.v[1], s.ndaa_size_lo, s.ndaa_size_hi) * float(s.width));
    p.rect_h = p.rect_h < 2 ? 2 : p.rect_h;
    p.rect_w = p.rect_w < 2 ? 2 : p.rect_w;
    p.rect_y0 = int32_t(uniform_int(a.v[2], uint32_t(s.height - p.rect_h + 1)));
    p.rect_x0 = int32_t(uniform_int(a.v[3], uint32_t(s.width - p.rect_w + 1)));
    p.swap_axes = uniform01(b.v[0]) < 0.5f;
    p.amp = uniform(b.v[1], s.ndaa_amp_lo, s.ndaa_amp_hi);
    p.freq = uniform(b.v[2], s.ndaa_freq_lo, s.ndaa_freq_hi);
    p.phase = uniform(b.v[3], 0.f, 6.2831853f);
  }
  return p;
}

}  // namespace caf
