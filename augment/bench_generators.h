// augment/bench_generators.h: CutPaste and NSA, the two generators used only to build the
// simulated-anomaly benchmark (METHOD.md 4.7 and 7; never in training): one anomalous copy of each
// clean image, its mask, and every parameter drawn for it (for the benchmark's manifest.json).
//
// Key decision: this is a dataset builder, not the training loop. Per-sample parameters, NSA's
// object masks and attempt loops run on the host, from Philox streams keyed by (seed; step 0,
// sample, Purpose::cutpaste or Purpose::nsa), after one copy of the images to the host; the pixel
// work (jittered paste, Poisson solve, label) runs on the images' device as the CAF_HD passes of
// augment/poisson.h, so CPU and GPU give the same images for the same seed.
//
// Masks mark exactly the pixels that changed. Outputs are snapped to the 8-bit grid (the benchmark
// is written as 8-bit PNGs), and both masks are restricted to pixels whose mean absolute change
// over the channels exceeds 1/255:
//   - CutPaste: the pasted rectangle (normal) or the rotated patch's alpha > 0.5 (scar), ANDed with
//     the changed pixels. The CutPaste paper labels the whole rectangle; a pasted pixel equal to
//     the one it covers (flat backgrounds) is no anomaly, and a benchmark should not ask a model
//     to find it. Scar pixels with alpha in (0, 0.5] change a little but are outside the mask.
//   - NSA: METHOD 4.7.1 step 7's binary label (union of patch masks AND changed, 5x5 median), ANDed
//     with the union once more, because the median can switch on an unchanged pixel in a concave
//     corner of the union.
// Images: f32 [N, 3, H, W] in [0, 1] (planar RGB); masks f32 [N, 1, H, W] 0/1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "augment/poisson.h"
#include "nn/tensor.h"

namespace caf {

struct BenchResult {
  Tensor image;                        // f32 [N, 3, H, W] in [0, 1], on the input's device
  Tensor mask;                         // f32 [N, 1, H, W] 0/1
  std::vector<nlohmann::json> params;  // per sample: every drawn parameter
};

struct PoissonStats {
  int iterations = 0;  // SOR sweeps per solve (one red and one black half-pass each)
  int solves = 0;      // blending rounds run (each solves every sample with a patch in that round)
  double max_relative_residual = 0;  // max over samples and rounds of ||r||inf / ||div v||inf on Ω
};

// ---- CutPaste (METHOD 4.7.2) --------------------------------------------------------------------

// The draw for one sample of an H x W image: variant (normal or scar, 1/2 each: CutPaste's union),
// the cut and paste rectangles (both fully inside the image, independent), the scar's angle
// U(-45, 45) and its expanded box, and ColorJitter(0.1, 0.1, 0.1, 0.1) factors. Normal: area
// ratio U(0.02, 0.15), aspect U(0.3, 1) or U(1, 3.3) with probability 1/2 each, w = sqrt(r A
// aspect), h = sqrt(r A / aspect), rounded. Scar: width U(2, 16) and height U(10, 25) px, defined
// at 256 px and scaled by H / 256 (at least 1 px). gray_mean is left 0: cutpaste_apply fills it.
CutPastePlan cutpaste_draw(uint64_t seed, uint32_t sample, int64_t H, int64_t W);

// Pastes on the images' device with the given plans (one per image): fills each plan's contrast
// reference from a host copy of the images, then runs the paste pass. A test hook as well: plans
// with jitter factors 1, 1, 1, 0 paste the source pixels unchanged.
BenchResult cutpaste_apply(const Tensor& images, std::vector<CutPastePlan> plans);

// cutpaste_draw for samples first_sample .. first_sample + N - 1, then cutpaste_apply.
BenchResult cutpaste_generate(const Tensor& images, uint64_t seed, uint32_t first_sample);

// ---- NSA (METHOD 4.7.1) -------------------------------------------------------------------------

// The per-class constants of METHOD 4.7.1. Axis 0 is rows (NSA's "h"), axis 1 columns ("w").
struct NsaClass {
  std::string name;
  bool known = false;        // false: not an MVTec AD class; the common defaults, as an object
  bool texture = false;      // mixed clone and rescale (0.5, 2); else normal clone, (0.7, 1.3)
  bool object_mask = false;  // object = |mean RGB - background| > threshold (uint8 scale)
  float background = 0.f, threshold = 0.f;
  float width_bounds[2][2] = {{0.03f, 0.4f}, {0.03f, 0.4f}};  // half-width fractions [axis][lo, hi]
  float min_object_pct = 0.7f;
  float min_overlap_pct = 0.25f;
  int num_patches = 3;
  float resize_lo = 0.7f, resize_hi = 1.3f;
};
NsaClass nsa_class(const std::string& name);

// One NSA anomaly per image: patches of sources[i] (a different normal image of the same class,
// chosen by the caller) Poisson-blended into images[i] in up to num_patches rounds (the first patch
// always attempted, each later one with probability 1/2), binary label. A sample whose patches are
// all skipped (no location passes the object tests in 200 attempts, or the blend region is under
// 50 px) is drawn again from the continuing stream, up to 20 times; after that it stays normal
// with an empty mask and params say so. iterations: SOR sweeps per solve, 0 for
// poisson_default_iterations(max(H, W)). stats (optional) costs one residual pass and a copy to
// the host per round.
BenchResult nsa_generate(const Tensor& images, const Tensor& sources, const std::string& class_name,
                         uint64_t seed, uint32_t first_sample, PoissonStats* stats = nullptr,
                         int iterations = 0);

// ---- the solver on its own ----------------------------------------------------------------------

// Poisson image editing of a batch on its device (augment/poisson.h): the result equals dest
// outside mask and solves the Poisson equation with guidance from guide inside it. dest, guide:
// f32 [N, 3, H, W]; mask: u8 [N, 1, H, W] (1 = unknown); mixed: per sample, 1 for mixed clone.
// omega is the optimal SOR factor of each sample's mask bounding box. No clamping.
Tensor poisson_blend(const Tensor& dest, const Tensor& guide, const Tensor& mask,
                     const std::vector<uint8_t>& mixed, int iterations,
                     PoissonStats* stats = nullptr);

}  // namespace caf
