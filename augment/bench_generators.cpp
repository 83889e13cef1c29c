// augment/bench_generators.cpp: the host half of CutPaste and NSA (augment/bench_generators.h):
// per-sample draws from Philox streams, NSA's object masks and attempt loops, and the one dispatch
// point of the pixel passes of augment/poisson.h.
#include "augment/bench_generators.h"

#include <algorithm>
#include <cmath>

#include "augment/philox.h"
#include "kernels/dispatch.h"
#include "kernels/error.h"
#include "kernels/memory.h"

// Runs launcher `name` of augment/poisson.h on device d. In a CPU-only build the CUDA branch is
// discarded at compile time (cuda:: launchers exist only in CUDA builds).
#define CAF_BENCH_RUN(d, name, ...)                 \
  do {                                              \
    if ((d) == ::caf::Device::cuda) {               \
      if constexpr (::caf::kCudaBuild)              \
        ::caf::cuda::name(__VA_ARGS__);             \
      else                                          \
        ::caf::detail::throw_no_cuda(#name, false); \
    } else {                                        \
      ::caf::cpu::name(__VA_ARGS__);                \
    }                                               \
  } while (0)

namespace caf {
namespace {

using nlohmann::json;

constexpr double kPi = 3.14159265358979323846;

// Consecutive words of one Philox stream (seed; step 0, sample, purpose, element 0, 1, ...): the
// host's draws consume it in program order, as NSA's code consumes numpy's generator.
class Stream {
 public:
  Stream(uint64_t seed, uint32_t sample, Purpose purpose)
      : seed_(seed), sample_(sample), purpose_(purpose) {}
  uint32_t word() {
    if (used_ == 4) {
      block_ = random_words(seed_, 0, sample_, purpose_, element_++);
      used_ = 0;
    }
    return block_.v[used_++];
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * double(uniform01(word())); }
  double open01() { return 1.0 - double(uniform01(word())); }  // (0, 1]: safe under log
  // numpy's randint: [lo, hi); lo when the range is empty. Always one word, so draws stay aligned.
  int64_t randint(int64_t lo, int64_t hi) {
    const uint32_t w = word();
    return hi <= lo ? lo : lo + int64_t(uniform_int(w, uint32_t(hi - lo)));
  }
  // Gamma(shape 2, scale): the sum of two exponentials.
  double gamma2(double scale) { return -scale * (std::log(open01()) + std::log(open01())); }
  double normal(double mean, double sd) {  // Box-Muller
    const double r = std::sqrt(-2.0 * std::log(open01()));
    return mean + sd * r * std::cos(2.0 * kPi * double(uniform01(word())));
  }

 private:
  uint64_t seed_;
  uint32_t sample_;
  Purpose purpose_;
  uint32_t element_ = 0;
  int used_ = 4;
  Philox4 block_{};
};

void check_images(const Tensor& t, const char* what) {
  CAF_REQUIRE_SHAPE(
      t.defined() && t.dtype() == DType::f32 && t.ndim() == 4 && t.dim(1) == 3 && t.dim(0) > 0,
      std::string(what) + " must be f32 [N > 0, 3, H, W], got " +
          (t.defined() ? t.describe() : std::string("an undefined tensor")));
}

// A host vector copied into a new buffer on device d.
template <class T>
Buffer upload(Device d, const std::vector<T>& v) {
  Buffer b(d, v.size() * sizeof(T));
  copy_bytes(d, b.data(), Device::cpu, v.data(), v.size() * sizeof(T));
  return b;
}

template <class T>
std::vector<T> download(Device d, const Buffer& b, size_t count) {
  std::vector<T> v(count);
  copy_bytes(Device::cpu, v.data(), d, b.data(), count * sizeof(T));
  return v;
}

// Residual pass on the device, reduction here: max over samples with a non-empty Ω of
// ||r||inf / ||b||inf. The denominator is at least 1/255 (one grey level), so a flat guide (b = 0)
// reports the absolute residual instead of dividing by zero.
double relative_residual(Device d, const PoissonArgs& a) {
  const size_t pixels = size_t(a.n * a.H * a.W);
  Buffer res(d, pixels * sizeof(float)), mag(d, pixels * sizeof(float));
  CAF_BENCH_RUN(d, poisson_residual, a, static_cast<float*>(res.data()),
                static_cast<float*>(mag.data()));
  const std::vector<float> r = download<float>(d, res, pixels), m = download<float>(d, mag, pixels);
  const size_t plane = size_t(a.H * a.W);
  double worst = 0;
  for (int64_t n = 0; n < a.n; ++n) {
    double r_max = 0, b_max = 0;
    for (size_t e = size_t(n) * plane; e < size_t(n + 1) * plane; ++e) {
      r_max = std::max(r_max, double(r[e]));
      b_max = std::max(b_max, double(m[e]));
    }
    worst = std::max(worst, r_max / std::max(b_max, 1.0 / 255.0));
  }
  return worst;
}

// One solve of a batch on device d (the mask and per-sample constants already there).
void solve(Device d, const PoissonArgs& a, PoissonStats* stats) {
  CAF_BENCH_RUN(d, poisson_solve, a);
  if (!stats) return;
  stats->iterations = a.iterations;
  stats->solves += 1;
  stats->max_relative_residual = std::max(stats->max_relative_residual, relative_residual(d, a));
}

json rect_json(int64_t y0, int64_t x0, int64_t h, int64_t w) {
  return json::array({y0, x0, h, w});
}

// params[n]["mask_pixels"]: a paste that changes nothing (flat background) leaves an empty mask,
// and the manifest should say so.
void record_mask_pixels(const Tensor& mask, std::vector<json>& params) {
  const std::vector<float> m = mask.to_vector();
  const size_t plane = m.size() / params.size();
  for (size_t n = 0; n < params.size(); ++n)
    params[n]["mask_pixels"] = std::count(m.begin() + std::ptrdiff_t(n * plane),
                                          m.begin() + std::ptrdiff_t((n + 1) * plane), 1.f);
}

// ---- NSA planning -------------------------------------------------------------------------------

// Step 1: |mean RGB - background| > threshold on the uint8 scale, then a 7 x 7 median.
std::vector<uint8_t> object_mask(const NsaClass& k, const float* rgb, int64_t H, int64_t W) {
  const int64_t plane = H * W;
  std::vector<uint8_t> raw(static_cast<size_t>(plane)), out(static_cast<size_t>(plane));
  for (int64_t e = 0; e < plane; ++e) {
    const double mean = (double(rgb[e]) + rgb[plane + e] + rgb[2 * plane + e]) * 255.0 / 3.0;
    raw[size_t(e)] = std::fabs(mean - double(k.background)) > double(k.threshold);
  }
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j)
      out[size_t(i * W + j)] = binary_median(raw.data(), H, W, i, j, 3);
  return out;
}

struct NsaPatchDraw {
  int round;
  int64_t half[2];  // the drawn half-widths (rows, columns) before the source is clipped
  NsaPatchGeom geom;
  double scale;
  int src_attempts, dst_attempts;
  int64_t label_pixels;
};

struct NsaSamplePlan {
  std::vector<NsaPatchDraw> patches;
  json skipped = json::array();
  int redraws = 0;
  std::vector<uint8_t> patch_union;  // H * W: the union of the patch masks (the label's support)
};

constexpr int kAttempts = 200;   // NSA's attempts for a source and for a destination location
constexpr int kMaxRedraws = 20;  // whole-sample redraws when every patch was skipped [ours]

// Steps 2-6 for one patch slot: true and the draw, or false and the reason it was skipped.
// src_obj / dst_obj are empty for classes without object masks. union_mask gets the patch mask.
bool nsa_draw_patch(const NsaClass& k, Stream& rng, int64_t H, int64_t W,
                    const std::vector<uint8_t>& src_obj, const std::vector<uint8_t>& dst_obj,
                    NsaPatchDraw& out, std::string& why, std::vector<uint8_t>& union_mask) {
  const bool objects = !src_obj.empty();
  const int64_t dims[2] = {H, W};
  int64_t min_w[2], max_w[2], half[2];
  for (int a = 0; a < 2; ++a) {  // numpy's round: half to even, as std::nearbyint by default
    min_w[a] = int64_t(std::nearbyint(double(k.width_bounds[a][0]) * double(dims[a])));
    max_w[a] = int64_t(std::nearbyint(double(k.width_bounds[a][1]) * double(dims[a])));
  }
  for (int a = 0; a < 2; ++a)  // step 2: half-widths, 0.03 + Gamma(2, 0.05), per axis
    half[a] = out.half[a] = int64_t(std::clamp((0.03 + rng.gamma2(0.05)) * double(dims[a]),
                                               double(min_w[a]), double(max_w[a])));
  // Step 3: the source rectangle (clipped to the image), with enough object in it.
  int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
  bool found = false;
  for (out.src_attempts = 1; out.src_attempts <= kAttempts && !found; ++out.src_attempts) {
    const int64_t cy = rng.randint(min_w[0], H - min_w[0]),
                  cx = rng.randint(min_w[1], W - min_w[1]);
    y0 = std::clamp<int64_t>(cy - half[0], 0, H);
    y1 = std::clamp<int64_t>(cy + half[0], 0, H);
    x0 = std::clamp<int64_t>(cx - half[1], 0, W);
    x1 = std::clamp<int64_t>(cx + half[1], 0, W);
    found = y1 > y0 && x1 > x0;
    if (found && objects) {
      int64_t on = 0;
      for (int64_t i = y0; i < y1; ++i)
        for (int64_t j = x0; j < x1; ++j) on += src_obj[size_t(i * W + j)];
      found = double(on) / double((y1 - y0) * (x1 - x0)) > double(k.min_object_pct);
    }
  }
  --out.src_attempts;
  if (!found) {
    why = "no source location with enough object in 200 attempts";
    return false;
  }
  // Step 4: rescale, keeping the aspect ratio, sizes clipped to the width bounds (NSA's order).
  const int64_t h = y1 - y0, w = x1 - x0;
  out.scale = std::clamp(rng.normal(1.0, 0.5), double(k.resize_lo), double(k.resize_hi));
  const double nh_f = std::clamp(out.scale * double(h), double(min_w[0]), double(max_w[0]));
  const int64_t nw = std::clamp(int64_t(nh_f / double(h) * double(w)), min_w[1], max_w[1]);
  const int64_t nh = std::clamp(int64_t(double(nw) / double(w) * double(h)), min_w[0], max_w[0]);
  // The source object mask resized with the patch (bilinear, then >= 0.5).
  std::vector<uint8_t> obj(size_t(nh * nw), 1);
  int64_t obj_count = nh * nw;
  if (objects) {
    obj_count = 0;
    for (int64_t i = 0; i < nh; ++i)
      for (int64_t j = 0; j < nw; ++j) {
        const float sy = resize_coord(i, nh, h), sx = resize_coord(j, nw, w);
        const int64_t a0 = int64_t(sy), b0 = int64_t(sx);
        const int64_t a1 = std::min(a0 + 1, h - 1), b1 = std::min(b0 + 1, w - 1);
        const float wy = sy - float(a0), wx = sx - float(b0);
        auto at = [&](int64_t a, int64_t b) {
          return float(src_obj[size_t((y0 + a) * W + x0 + b)]);
        };
        const float top = at(a0, b0) + wx * (at(a0, b1) - at(a0, b0));
        const float bottom = at(a1, b0) + wx * (at(a1, b1) - at(a1, b0));
        obj[size_t(i * nw + j)] = top + wy * (bottom - top) >= 0.5f;
        obj_count += obj[size_t(i * nw + j)];
      }
    // NSA tests this inside its destination loop, where it cannot change: 200 failed attempts.
    if (double(obj_count) / double(nh * nw) <= double(k.min_object_pct)) {
      out.dst_attempts = 0;
      why = "too little object in the rescaled source patch";
      return false;
    }
  }
  // Step 5: the destination, fully inside, overlapping the destination's object.
  int64_t dy0 = 0, dx0 = 0;
  found = false;
  for (out.dst_attempts = 1; out.dst_attempts <= kAttempts && !found; ++out.dst_attempts) {
    const int64_t cy = rng.randint(nh / 2 + 1, H - nh / 2 - 1),
                  cx = rng.randint(nw / 2 + 1, W - nw / 2 - 1);
    dy0 = cy - nh / 2;
    dx0 = cx - nw / 2;
    found = dy0 >= 0 && dx0 >= 0 && dy0 + nh <= H && dx0 + nw <= W;
    if (found && objects) {
      int64_t both = 0;
      for (int64_t i = 0; i < nh; ++i)
        for (int64_t j = 0; j < nw; ++j)
          both += obj[size_t(i * nw + j)] & dst_obj[size_t((dy0 + i) * W + dx0 + j)];
      found = double(both) / double(obj_count) > double(k.min_overlap_pct);
    }
  }
  --out.dst_attempts;
  if (!found) {
    why = "no destination overlapping the object in 200 attempts";
    return false;
  }
  // Step 6: the blend region is the rectangle without its border ring (see NsaPlacePass).
  if ((nh - 2) * (nw - 2) < 50) {
    why = "blend region under 50 pixels";
    return false;
  }
  out.geom = {int32_t(y0),  int32_t(x0),  int32_t(h),  int32_t(w),
              int32_t(dy0), int32_t(dx0), int32_t(nh), int32_t(nw)};
  // The patch mask for the label: the rectangle AND (source object OR destination object).
  out.label_pixels = 0;
  for (int64_t i = 0; i < nh; ++i)
    for (int64_t j = 0; j < nw; ++j) {
      const size_t at = size_t((dy0 + i) * W + dx0 + j);
      const bool on = !objects || obj[size_t(i * nw + j)] || dst_obj[at];
      out.label_pixels += on;
      if (on) union_mask[at] = 1;
    }
  return true;
}

NsaSamplePlan nsa_plan_sample(const NsaClass& k, const float* dst, const float* src, int64_t H,
                              int64_t W, uint64_t seed, uint32_t sample) {
  Stream rng(seed, sample, Purpose::nsa);
  std::vector<uint8_t> src_obj, dst_obj;
  if (k.object_mask) {
    src_obj = object_mask(k, src, H, W);
    dst_obj = object_mask(k, dst, H, W);
  }
  NsaSamplePlan p;
  for (p.redraws = 0; p.redraws <= kMaxRedraws; ++p.redraws) {
    p.patches.clear();
    p.skipped = json::array();
    p.patch_union.assign(size_t(H * W), 0);
    for (int slot = 0; slot < k.num_patches; ++slot) {
      if (slot > 0 && uniform01(rng.word()) < 0.5f) continue;  // later patches: a coin flip each
      NsaPatchDraw d{};
      d.round = slot;
      std::string why;
      if (nsa_draw_patch(k, rng, H, W, src_obj, dst_obj, d, why, p.patch_union))
        p.patches.push_back(d);
      else
        p.skipped.push_back({{"round", slot}, {"reason", why}});
    }
    if (!p.patches.empty()) break;
  }
  p.redraws = std::min(p.redraws, kMaxRedraws);
  return p;
}

}  // namespace

// ---- CutPaste -----------------------------------------------------------------------------------

CutPastePlan cutpaste_draw(uint64_t seed, uint32_t sample, int64_t H, int64_t W) {
  CAF_REQUIRE_SHAPE(H >= 8 && W >= 8, "cutpaste_draw: images of at least 8 x 8 pixels");
  Stream rng(seed, sample, Purpose::cutpaste);
  CutPastePlan p{};
  p.scar = uniform01(rng.word()) < 0.5f;
  p.cos_a = 1.f;
  p.brightness = float(rng.uniform(0.9, 1.1));
  p.contrast = float(rng.uniform(0.9, 1.1));
  p.saturation = float(rng.uniform(0.9, 1.1));
  p.hue = float(rng.uniform(-0.1, 0.1));
  int64_t h, w;
  if (!p.scar) {
    const double area = rng.uniform(0.02, 0.15) * double(H * W);
    const bool tall = uniform01(rng.word()) < 0.5f;
    const double aspect = tall ? rng.uniform(0.3, 1.0) : rng.uniform(1.0, 3.3);  // w / h
    w = std::clamp<int64_t>(std::llround(std::sqrt(area * aspect)), 1, W);
    h = std::clamp<int64_t>(std::llround(std::sqrt(area / aspect)), 1, H);
    p.dst_h = int32_t(h);
    p.dst_w = int32_t(w);
  } else {
    const double px = double(H) / 256.0;  // the scar's sizes are defined at 256 px
    w = std::clamp<int64_t>(std::llround(rng.uniform(2.0, 16.0) * px), 1, W);
    h = std::clamp<int64_t>(std::llround(rng.uniform(10.0, 25.0) * px), 1, H);
    p.angle_deg = float(rng.uniform(-45.0, 45.0));
    const double rad = double(p.angle_deg) * kPi / 180.0, c = std::fabs(std::cos(rad)),
                 s = std::fabs(std::sin(rad));
    p.cos_a = float(std::cos(rad));
    p.sin_a = float(std::sin(rad));
    // PIL's expand: the bounding box of the rotated rectangle, in whole pixels.
    p.dst_h =
        int32_t(std::min<int64_t>(H, int64_t(std::ceil(double(h) * c + double(w) * s - 1e-6))));
    p.dst_w =
        int32_t(std::min<int64_t>(W, int64_t(std::ceil(double(w) * c + double(h) * s - 1e-6))));
  }
  p.src_h = int32_t(h);
  p.src_w = int32_t(w);
  p.src_y0 = int32_t(rng.randint(0, H - h + 1));
  p.src_x0 = int32_t(rng.randint(0, W - w + 1));
  p.dst_y0 = int32_t(rng.randint(0, H - p.dst_h + 1));
  p.dst_x0 = int32_t(rng.randint(0, W - p.dst_w + 1));
  return p;
}

BenchResult cutpaste_apply(const Tensor& images, std::vector<CutPastePlan> plans) {
  check_images(images, "cutpaste: images");
  const int64_t N = images.dim(0), H = images.dim(2), W = images.dim(3), plane = H * W;
  CAF_REQUIRE_SHAPE(int64_t(plans.size()) == N, "cutpaste_apply: one plan per image");
  const Device d = images.device();
  const std::vector<float> x = images.to_vector();
  BenchResult out;
  for (int64_t n = 0; n < N; ++n) {
    CutPastePlan& p = plans[size_t(n)];
    CAF_REQUIRE(
        p.src_h > 0 && p.src_w > 0 && p.src_y0 >= 0 && p.src_x0 >= 0 && p.src_y0 + p.src_h <= H &&
            p.src_x0 + p.src_w <= W && p.dst_y0 >= 0 && p.dst_x0 >= 0 && p.dst_y0 + p.dst_h <= H &&
            p.dst_x0 + p.dst_w <= W,
        "cutpaste_apply: sample " + std::to_string(n) + ": rectangles must lie inside the image");
    // Contrast's reference: the patch's mean gray after the brightness step (torchvision blends
    // with the mean of the image it is given, here the cut patch).
    double sum = 0;
    for (int64_t i = p.src_y0; i < p.src_y0 + p.src_h; ++i)
      for (int64_t j = p.src_x0; j < p.src_x0 + p.src_w; ++j) {
        float rgb[3];
        for (int c = 0; c < 3; ++c)
          rgb[c] = clamp01(x[size_t((n * 3 + c) * plane + i * W + j)] * p.brightness);
        sum += double(gray_of(rgb));
      }
    p.gray_mean = float(sum / double(p.src_h * p.src_w));
    out.params.push_back({{"generator", "cutpaste"},
                          {"variant", p.scar ? "scar" : "normal"},
                          {"src", rect_json(p.src_y0, p.src_x0, p.src_h, p.src_w)},
                          {"dst", rect_json(p.dst_y0, p.dst_x0, p.dst_h, p.dst_w)},
                          {"angle_deg", p.angle_deg},
                          {"brightness", p.brightness},
                          {"contrast", p.contrast},
                          {"saturation", p.saturation},
                          {"hue", p.hue},
                          {"gray_mean", p.gray_mean}});
  }
  const Buffer plans_d = upload(d, plans);
  out.image = Tensor::empty(images.shape(), DType::f32, d);
  out.mask = Tensor::empty({N, 1, H, W}, DType::f32, d);
  CutPasteArgs a;
  a.n = N;
  a.H = H;
  a.W = W;
  a.plans = static_cast<const CutPastePlan*>(plans_d.data());
  a.x = images.data<float>();
  a.image = out.image.data<float>();
  a.mask = out.mask.data<float>();
  CAF_BENCH_RUN(d, cutpaste_paste, a);
  record_mask_pixels(out.mask, out.params);
  return out;
}

BenchResult cutpaste_generate(const Tensor& images, uint64_t seed, uint32_t first_sample) {
  check_images(images, "cutpaste: images");
  std::vector<CutPastePlan> plans;
  for (int64_t n = 0; n < images.dim(0); ++n)
    plans.push_back(cutpaste_draw(seed, first_sample + uint32_t(n), images.dim(2), images.dim(3)));
  BenchResult out = cutpaste_apply(images, std::move(plans));
  for (int64_t n = 0; n < images.dim(0); ++n) {
    out.params[size_t(n)]["sample"] = first_sample + uint32_t(n);
    out.params[size_t(n)]["seed"] = seed;
  }
  return out;
}

// ---- NSA ----------------------------------------------------------------------------------------

NsaClass nsa_class(const std::string& name) {
  NsaClass k;
  k.name = name;
  k.known = true;
  auto mask = [&](float bg, float thr) {
    k.object_mask = true;
    k.background = bg;
    k.threshold = thr;
  };
  if (name == "carpet" || name == "grid" || name == "leather" || name == "tile" || name == "wood") {
    k.texture = true;
    k.num_patches = 4;
    k.resize_lo = 0.5f;
    k.resize_hi = 2.f;
  } else if (name == "bottle") {
    mask(200, 60);
  } else if (name == "screw") {
    mask(200, 60);
    k.width_bounds[0][1] = k.width_bounds[1][1] = 0.12f;
    k.min_object_pct = 0.5f;
    k.num_patches = 4;
  } else if (name == "capsule") {
    mask(200, 60);
    k.width_bounds[0][1] = 0.15f;
  } else if (name == "zipper") {
    mask(200, 60);
    k.width_bounds[1][1] = 0.2f;
    k.num_patches = 4;
  } else if (name == "hazelnut") {
    mask(20, 20);
    k.width_bounds[0][1] = k.width_bounds[1][1] = 0.35f;
  } else if (name == "pill") {
    mask(20, 20);
    k.width_bounds[0][1] = 0.2f;
  } else if (name == "toothbrush") {
    mask(20, 20);
    k.width_bounds[1][1] = 0.2f;
    k.min_object_pct = 0.25f;
  } else if (name == "metal_nut") {
    mask(20, 20);
    k.min_object_pct = 0.5f;
  } else if (name == "cable") {
    k.width_bounds[0][0] = k.width_bounds[1][0] = 0.05f;
  } else if (name != "transistor") {
    k.known = false;
  }
  return k;
}

BenchResult nsa_generate(const Tensor& images, const Tensor& sources, const std::string& class_name,
                         uint64_t seed, uint32_t first_sample, PoissonStats* stats,
                         int iterations) {
  check_images(images, "nsa: images");
  check_images(sources, "nsa: sources");
  CAF_REQUIRE_SHAPE(images.shape() == sources.shape(), "nsa: images " + images.describe() +
                                                           " and sources " + sources.describe() +
                                                           " must have the same shape");
  const int64_t N = images.dim(0), H = images.dim(2), W = images.dim(3), plane = H * W;
  CAF_REQUIRE_SHAPE(H >= 16 && W >= 16, "nsa: images of at least 16 x 16 pixels");
  const Device d = images.device();
  const NsaClass k = nsa_class(class_name);
  if (iterations <= 0) iterations = poisson_default_iterations(std::max(H, W));
  if (stats) *stats = PoissonStats{iterations, 0, 0.0};

  const std::vector<float> x = images.to_vector(), s = sources.to_vector();
  std::vector<NsaSamplePlan> plans(static_cast<size_t>(N));
#pragma omp parallel for schedule(dynamic)
  for (int64_t n = 0; n < N; ++n)
    plans[size_t(n)] = nsa_plan_sample(k, x.data() + n * 3 * plane, s.data() + n * 3 * plane, H, W,
                                       seed, first_sample + uint32_t(n));

  BenchResult out;
  std::vector<uint8_t> patch_union(static_cast<size_t>(N * plane));
  for (int64_t n = 0; n < N; ++n) {
    const NsaSamplePlan& p = plans[size_t(n)];
    std::copy(p.patch_union.begin(), p.patch_union.end(), patch_union.begin() + n * plane);
    json patches = json::array();
    for (const NsaPatchDraw& q : p.patches)
      patches.push_back(
          {{"round", q.round},
           {"half_width", json::array({q.half[0], q.half[1]})},
           {"src", rect_json(q.geom.src_y0, q.geom.src_x0, q.geom.src_h, q.geom.src_w)},
           {"dst", rect_json(q.geom.dst_y0, q.geom.dst_x0, q.geom.dst_h, q.geom.dst_w)},
           {"scale", q.scale},
           {"src_attempts", q.src_attempts},
           {"dst_attempts", q.dst_attempts},
           {"label_pixels", q.label_pixels}});
    out.params.push_back({{"generator", "nsa"},
                          {"sample", first_sample + uint32_t(n)},
                          {"seed", seed},
                          {"class", class_name},
                          {"class_known", k.known},
                          {"clone", k.texture ? "mixed" : "normal"},
                          {"object_mask", k.object_mask},
                          {"patches", patches},
                          {"skipped", p.skipped},
                          {"redraws", p.redraws},
                          {"iterations", iterations}});
  }

  out.image = images.clone();
  out.mask = Tensor::empty({N, 1, H, W}, DType::f32, d);
  const Tensor src = sources.to(d);
  Buffer guide(d, size_t(N * 3 * plane) * sizeof(float)),
      rhs(d, size_t(N * 3 * plane) * sizeof(float));
  Buffer region(d, size_t(N * plane));
  for (int round = 0; round < k.num_patches; ++round) {
    std::vector<NsaPatchGeom> geom(size_t(N), NsaPatchGeom{});
    std::vector<PoissonSample> samples(static_cast<size_t>(N));
    bool any = false;
    for (int64_t n = 0; n < N; ++n) {
      samples[size_t(n)].mixed = k.texture;
      for (const NsaPatchDraw& q : plans[size_t(n)].patches)
        if (q.round == round) {
          geom[size_t(n)] = q.geom;
          samples[size_t(n)].omega = poisson_optimal_omega(q.geom.dst_h - 2, q.geom.dst_w - 2);
          any = true;
        }
    }
    if (!any) continue;
    const Buffer geom_d = upload(d, geom), samples_d = upload(d, samples);
    NsaPlaceArgs pa;
    pa.n = N;
    pa.H = H;
    pa.W = W;
    pa.geom = static_cast<const NsaPatchGeom*>(geom_d.data());
    pa.source = src.data<float>();
    pa.guide = static_cast<float*>(guide.data());
    pa.mask = static_cast<uint8_t*>(region.data());
    CAF_BENCH_RUN(d, nsa_place, pa);
    PoissonArgs a;
    a.n = N;
    a.H = H;
    a.W = W;
    a.mask = pa.mask;
    a.guide = pa.guide;
    a.samples = static_cast<const PoissonSample*>(samples_d.data());
    a.f = out.image.data<float>();
    a.rhs = static_cast<float*>(rhs.data());
    a.iterations = iterations;
    solve(d, a, stats);
    CAF_BENCH_RUN(d, nsa_round, a);
  }
  const Buffer union_d = upload(d, patch_union);
  Buffer changed(d, size_t(N * plane));
  NsaLabelArgs la;
  la.n = N;
  la.H = H;
  la.W = W;
  la.original = images.data<float>();
  la.image = out.image.data<float>();
  la.patch_union = static_cast<const uint8_t*>(union_d.data());
  la.changed = static_cast<uint8_t*>(changed.data());
  la.label = out.mask.data<float>();
  CAF_BENCH_RUN(d, nsa_label, la);
  record_mask_pixels(out.mask, out.params);
  return out;
}

// ---- the solver on its own ----------------------------------------------------------------------

Tensor poisson_blend(const Tensor& dest, const Tensor& guide, const Tensor& mask,
                     const std::vector<uint8_t>& mixed, int iterations, PoissonStats* stats) {
  check_images(dest, "poisson_blend: dest");
  CAF_REQUIRE_SHAPE(
      guide.shape() == dest.shape() && guide.dtype() == DType::f32,
      "poisson_blend: guide " + guide.describe() + " must match dest " + dest.describe());
  const int64_t N = dest.dim(0), H = dest.dim(2), W = dest.dim(3);
  CAF_REQUIRE_SHAPE(mask.dtype() == DType::u8 && mask.shape() == Dims({N, 1, H, W}),
                    "poisson_blend: mask must be u8 [N, 1, H, W], got " + mask.describe());
  CAF_REQUIRE_SHAPE(int64_t(mixed.size()) == N, "poisson_blend: one mixed flag per sample");
  const Device d = dest.device();
  // omega from each sample's mask bounding box.
  const std::vector<uint8_t> m = mask.to_bytes();
  std::vector<PoissonSample> samples(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    int64_t i0 = H, i1 = -1, j0 = W, j1 = -1;
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j)
        if (m[size_t((n * H + i) * W + j)]) {
          i0 = std::min(i0, i);
          i1 = std::max(i1, i);
          j0 = std::min(j0, j);
          j1 = std::max(j1, j);
        }
    samples[size_t(n)].mixed = mixed[size_t(n)];
    if (i1 >= 0) samples[size_t(n)].omega = poisson_optimal_omega(i1 - i0 + 1, j1 - j0 + 1);
  }
  const Buffer samples_d = upload(d, samples);
  const Tensor g = guide.to(d), md = mask.to(d);
  Tensor f = dest.clone();
  Buffer rhs(d, size_t(dest.numel()) * sizeof(float));
  PoissonArgs a;
  a.n = N;
  a.H = H;
  a.W = W;
  a.mask = md.data<uint8_t>();
  a.guide = g.data<float>();
  a.samples = static_cast<const PoissonSample*>(samples_d.data());
  a.f = f.data<float>();
  a.rhs = static_cast<float*>(rhs.data());
  a.iterations = iterations;
  if (stats) *stats = PoissonStats{iterations, 0, 0.0};
  solve(d, a, stats);
  return f;
}

}  // namespace caf
