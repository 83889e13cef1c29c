// The benchmark-only generators (augment/bench_generators.h): CutPaste's draws and paste, the
// Poisson solver on cases with a known answer and on a real seam, NSA's patches and label, and
// (suite gpu) CUDA against the CPU for the same seed.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "augment/bench_generators.h"
#include "augment/image_io.h"
#include "augment/texture_bank.h"
#include "kernels/error.h"
#include "tests/test_util.h"

using namespace caf;

namespace {

const char* kBottle = "/work/shared/data/mvtec_bottle_256/bottle/train/good";
constexpr double kPi = 3.14159265358979323846;

// n procedural textures of side S as f32 [n, 3, S, S] on the 8-bit grid.
Tensor textures(int64_t n, int64_t S, uint64_t seed) {
  const std::vector<uint8_t> b =
      texture_bank_procedural(n, int(S), seed, Device::cpu).images.to_bytes();
  std::vector<float> f(b.size());
  for (size_t i = 0; i < b.size(); ++i) f[i] = float(b[i]) / 255.f;
  return Tensor::from_vector({n, 3, S, S}, f);
}

// Bottle training images first .. first + n - 1 resized to S; undefined without the data.
Tensor bottles(int64_t first, int64_t n, int64_t S) {
  if (!std::filesystem::is_directory(kBottle)) return Tensor();
  const std::vector<std::string> files = list_images(kBottle, false);
  if (int64_t(files.size()) < first + n) return Tensor();
  std::vector<float> f;
  for (int64_t i = first; i < first + n; ++i)
    for (uint8_t v : image_to_planar(
             image_resize_bilinear(image_to_rgb(image_read(files[size_t(i)])), int(S), int(S))))
      f.push_back(float(v) / 255.f);
  return Tensor::from_vector({n, 3, S, S}, f);
}

// Objects on a dark background: textures inside a centred disk of radius 0.35 S, 0 outside, so
// the object-mask classes (background 20, threshold 20) find an object without the data.
Tensor disks(int64_t n, int64_t S, uint64_t seed) {
  std::vector<float> f = textures(n, S, seed).to_vector();
  for (int64_t k = 0; k < n; ++k)
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < S; ++j) {
        const double dy = double(i) - 0.5 * double(S - 1), dx = double(j) - 0.5 * double(S - 1);
        const bool inside = std::sqrt(dy * dy + dx * dx) < 0.35 * double(S);
        for (int c = 0; c < 3; ++c) {
          float& v = f[size_t(((k * 3 + c) * S + i) * S + j)];
          // An object pixel is far from the background.
          v = inside ? std::max(v, 77.f / 255.f) : 0.f;
        }
      }
  return Tensor::from_vector({n, 3, S, S}, f);
}

bool changed_at(const std::vector<float>& a, const std::vector<float>& b, int64_t n, int64_t plane,
                int64_t ij) {
  float d = 0;
  for (int c = 0; c < 3; ++c)
    d += std::fabs(a[size_t((n * 3 + c) * plane + ij)] - b[size_t((n * 3 + c) * plane + ij)]);
  return d / 3.f > 1.f / 255.f;
}

// In [0, 1] and a multiple of 1/255 (outputs are snapped for 8-bit PNGs).
bool on_8bit_grid(float v) {
  return v >= 0.f && v <= 1.f && std::fabs(v * 255.f - std::round(v * 255.f)) < 1e-3f;
}

bool in_rect(const nlohmann::json& r, int64_t i, int64_t j) {
  const int64_t y0 = r[0], x0 = r[1], h = r[2], w = r[3];
  return i >= y0 && i < y0 + h && j >= x0 && j < x0 + w;
}

// Gradient energy across the border of Ω: the sum over 4-neighbour pairs (p in Ω, q not) of
// |f_p - f_q|^2.
double seam_energy(const std::vector<float>& f, const std::vector<uint8_t>& mask, int64_t S) {
  double e = 0;
  for (int64_t i = 1; i + 1 < S; ++i)
    for (int64_t j = 1; j + 1 < S; ++j) {
      if (!mask[size_t(i * S + j)]) continue;
      const int64_t nb[4] = {-S, S, -1, 1};
      for (int64_t o : nb) {
        if (mask[size_t(i * S + j + o)]) continue;
        for (int c = 0; c < 3; ++c) {
          const double d = double(f[size_t(c * S * S + i * S + j)]) -
                           double(f[size_t(c * S * S + i * S + j + o)]);
          e += d * d;
        }
      }
    }
  return e;
}

}  // namespace

TEST_SUITE("augment") {
TEST_CASE("cutpaste: draws follow METHOD 4.7.2 (union 50/50, area, aspect, scar sizes and box)") {
  const int64_t S = 256, A = S * S;
  int scars = 0, normals = 0;
  double area_sum = 0, aspect_lo = 10, aspect_hi = 0;
  const int total = 4000;
  for (uint32_t n = 0; n < uint32_t(total); ++n) {
    const CutPastePlan p = cutpaste_draw(11, n, S, S);
    REQUIRE((p.src_y0 >= 0 && p.src_x0 >= 0 && p.src_y0 + p.src_h <= S && p.src_x0 + p.src_w <= S));
    REQUIRE((p.dst_y0 >= 0 && p.dst_x0 >= 0 && p.dst_y0 + p.dst_h <= S && p.dst_x0 + p.dst_w <= S));
    REQUIRE(
        (p.brightness >= 0.9f && p.brightness <= 1.1f && p.contrast >= 0.9f && p.contrast <= 1.1f));
    REQUIRE((p.saturation >= 0.9f && p.saturation <= 1.1f && p.hue >= -0.1f && p.hue <= 0.1f));
    const double h = p.src_h, w = p.src_w;
    if (!p.scar) {
      ++normals;
      CHECK((p.dst_h == p.src_h && p.dst_w == p.src_w && p.angle_deg == 0.f));
      // Rounding w and h moves the area by at most (w + h) / 2 + 1/4 pixels.
      const double slack = (0.5 * (w + h) + 0.25) / double(A), ratio = h * w / double(A);
      CHECK(ratio >= 0.02 - slack);
      CHECK(ratio <= 0.15 + slack);
      CHECK((w + 0.5) / (h - 0.5) >= 0.3);
      CHECK((w - 0.5) / (h + 0.5) <= 3.3);
      area_sum += ratio;
      aspect_lo = std::min(aspect_lo, w / h);
      aspect_hi = std::max(aspect_hi, w / h);
    } else {
      ++scars;
      CHECK((p.src_w >= 2 && p.src_w <= 16 && p.src_h >= 10 && p.src_h <= 25));
      CHECK((p.angle_deg >= -45.f && p.angle_deg <= 45.f));
      // The expanded box holds the rotated rectangle and is at most one pixel larger per axis.
      const double c = std::fabs(std::cos(p.angle_deg * kPi / 180)),
                   s = std::fabs(std::sin(p.angle_deg * kPi / 180));
      CHECK(p.dst_h >= h * c + w * s - 1e-3);
      CHECK(p.dst_h < h * c + w * s + 1);
      CHECK(p.dst_w >= w * c + h * s - 1e-3);
      CHECK(p.dst_w < w * c + h * s + 1);
    }
  }
  MESSAGE("normal " << normals << ", scar " << scars << ", mean area ratio " << area_sum / normals
                    << ", aspect w/h in [" << aspect_lo << ", " << aspect_hi << "]");
  CHECK(std::abs(scars - total / 2) < 150);             // binomial sd ~ 32
  CHECK(std::abs(area_sum / normals - 0.085) < 0.004);  // U(0.02, 0.15) has mean 0.085
  CHECK(aspect_lo < 0.35);
  CHECK(aspect_hi > 3.0);
  // The scar's sizes scale with the image: at 64 px they are a quarter (at least 1 px).
  for (uint32_t n = 0; n < 400; ++n) {
    const CutPastePlan p = cutpaste_draw(11, n, 64, 64);
    if (p.scar) CHECK((p.src_w >= 1 && p.src_w <= 4 && p.src_h >= 2 && p.src_h <= 7));
  }
}

TEST_CASE("cutpaste: ColorJitter steps (identity, clamping, gray targets, hue turns)") {
  CutPastePlan p{};
  p.brightness = p.contrast = p.saturation = 1.f;
  const float px[3] = {0.2f, 0.55f, 0.9f};
  float v[3] = {px[0], px[1], px[2]};
  cutpaste_jitter(p, v);
  CHECK((v[0] == px[0] && v[1] == px[1] && v[2] == px[2]));  // bit-identical
  p.brightness = 2.f;
  float b[3] = {0.7f, 0.25f, 0.f};
  cutpaste_jitter(p, b);
  CHECK((b[0] == 1.f && b[1] == 0.5f && b[2] == 0.f));  // multiplied, then clamped
  p.brightness = 1.f;
  p.contrast = 0.f;
  p.gray_mean = 0.4f;
  float c[3] = {0.1f, 0.8f, 0.3f};
  cutpaste_jitter(p, c);
  CHECK((c[0] == 0.4f && c[1] == 0.4f && c[2] == 0.4f));  // contrast 0: the patch's mean gray
  p.contrast = 1.f;
  p.saturation = 0.f;
  float s[3] = {0.1f, 0.8f, 0.3f};
  const float gray = gray_of(s);
  cutpaste_jitter(p, s);
  CHECK((s[0] == doctest::Approx(gray) && s[1] == doctest::Approx(gray) &&
         s[2] == doctest::Approx(gray)));
  p.saturation = 1.f;
  p.hue = 1.f / 3.f;  // red -> green -> blue, a third of a turn each
  float h[3] = {1.f, 0.f, 0.f};
  cutpaste_jitter(p, h);
  CHECK((std::fabs(h[0]) < 1e-5f && std::fabs(h[1] - 1.f) < 1e-5f && std::fabs(h[2]) < 1e-5f));
  cutpaste_jitter(p, h);
  CHECK((std::fabs(h[0]) < 1e-5f && std::fabs(h[1]) < 1e-5f && std::fabs(h[2] - 1.f) < 1e-5f));
  float t[3] = {px[0], px[1], px[2]};  // a turn and back; value and saturation kept
  p.hue = 0.07f;
  cutpaste_jitter(p, t);
  CHECK(std::max({t[0], t[1], t[2]}) == doctest::Approx(0.9f));
  p.hue = -0.07f;
  cutpaste_jitter(p, t);
  for (int k = 0; k < 3; ++k) CHECK(t[k] == doctest::Approx(px[k]).epsilon(1e-5));
}

TEST_CASE("cutpaste: identity jitter: a normal paste copies the source; mask = changed pixels") {
  const int64_t N = 6, S = 64, plane = S * S;
  const Tensor x = textures(N, S, 3);
  const std::vector<float> xv = x.to_vector();
  std::vector<CutPastePlan> plans;
  for (uint32_t n = 0; plans.size() < size_t(N); ++n) {
    CutPastePlan p = cutpaste_draw(5, n, S, S);
    if (p.scar) continue;
    p.brightness = p.contrast = p.saturation = 1.f;
    p.hue = 0.f;
    plans.push_back(p);
  }
  const BenchResult r = cutpaste_apply(x, plans);
  const std::vector<float> out = r.image.to_vector(), m = r.mask.to_vector();
  for (int64_t n = 0; n < N; ++n) {
    const CutPastePlan& p = plans[size_t(n)];
    int64_t wrong_pixel = 0, wrong_mask = 0, masked = 0;
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < S; ++j) {
        const bool in =
            i >= p.dst_y0 && i < p.dst_y0 + p.dst_h && j >= p.dst_x0 && j < p.dst_x0 + p.dst_w;
        const int64_t from =
            in ? (p.src_y0 + i - p.dst_y0) * S + (p.src_x0 + j - p.dst_x0) : i * S + j;
        for (int c = 0; c < 3; ++c)
          wrong_pixel += out[size_t((n * 3 + c) * plane + i * S + j)] !=
                         xv[size_t((n * 3 + c) * plane + from)];
        const float mv = m[size_t(n * plane + i * S + j)];
        wrong_mask += mv != ((in && changed_at(out, xv, n, plane, i * S + j)) ? 1.f : 0.f);
        masked += mv == 1.f;
      }
    CHECK(wrong_pixel == 0);
    CHECK(wrong_mask == 0);
    CHECK(masked > 0);
    CHECK(r.params[size_t(n)]["mask_pixels"] == masked);
  }
}

TEST_CASE("cutpaste: a scar is the rotated thin rectangle (area, centre, orientation)") {
  // One white source rectangle on black, jitter off: every alpha > 0.5 pixel changes, so the mask
  // is the rotated rectangle itself and its moments can be checked.
  const int64_t S = 256, plane = S * S;
  int checked = 0;
  for (uint32_t n = 0; checked < 6 && n < 200; ++n) {
    CutPastePlan p = cutpaste_draw(8, n, S, S);
    if (!p.scar || p.src_h < 2.5 * p.src_w || std::fabs(p.angle_deg) < 5.f) continue;
    const bool overlap = p.dst_y0 < p.src_y0 + p.src_h && p.src_y0 < p.dst_y0 + p.dst_h &&
                         p.dst_x0 < p.src_x0 + p.src_w && p.src_x0 < p.dst_x0 + p.dst_w;
    if (overlap) continue;
    p.brightness = p.contrast = p.saturation = 1.f;
    p.hue = 0.f;
    std::vector<float> img(size_t(3 * plane), 0.f);
    for (int c = 0; c < 3; ++c)
      for (int64_t i = p.src_y0; i < p.src_y0 + p.src_h; ++i)
        for (int64_t j = p.src_x0; j < p.src_x0 + p.src_w; ++j)
          img[size_t(c * plane + i * S + j)] = 1.f;
    const BenchResult r = cutpaste_apply(Tensor::from_vector({1, 3, S, S}, img), {p});
    const std::vector<float> m = r.mask.to_vector(), out = r.image.to_vector();
    double cnt = 0, sy = 0, sx = 0, syy = 0, sxx = 0, sxy = 0;
    int64_t outside_box = 0;
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < S; ++j) {
        const bool in_box =
            i >= p.dst_y0 && i < p.dst_y0 + p.dst_h && j >= p.dst_x0 && j < p.dst_x0 + p.dst_w;
        const bool in_src =
            i >= p.src_y0 && i < p.src_y0 + p.src_h && j >= p.src_x0 && j < p.src_x0 + p.src_w;
        if (!in_box)
          outside_box +=
              out[size_t(i * S + j)] != (in_src ? 1.f : 0.f) || m[size_t(i * S + j)] != 0.f;
        if (m[size_t(i * S + j)] == 0.f) continue;
        cnt += 1;
        sy += double(i);
        sx += double(j);
        syy += double(i) * double(i);
        sxx += double(j) * double(j);
        sxy += double(i) * double(j);
      }
    const double my = sy / cnt, mx = sx / cnt, cyy = syy / cnt - my * my, cxx = sxx / cnt - mx * mx,
                 cxy = sxy / cnt - mx * my;
    // The long side's direction on screen (x right, y down): (sin a, cos a) for a counterclockwise
    // turn by a, i.e. 90 - a degrees.
    double axis = 0.5 * std::atan2(2 * cxy, cxx - cyy) * 180 / kPi;
    if (axis < 0) axis += 180;
    const double area = double(p.src_h) * double(p.src_w);
    CAPTURE(p.angle_deg);
    CAPTURE(p.src_h);
    CAPTURE(p.src_w);
    CHECK(outside_box == 0);
    CHECK(std::fabs(cnt - area) <= double(p.src_h + p.src_w));  // boundary pixels either way
    CHECK(std::fabs(my - (p.dst_y0 + 0.5 * (p.dst_h - 1))) < 0.75);
    CHECK(std::fabs(mx - (p.dst_x0 + 0.5 * (p.dst_w - 1))) < 0.75);
    CHECK(std::fabs(axis - (90.0 - p.angle_deg)) < 6.0);
    ++checked;
  }
  CHECK(checked == 6);
}

TEST_CASE("cutpaste: deterministic; masks binary, non-empty, in the box, only changed pixels") {
  const int64_t N = 8, S = 64, plane = S * S;
  const Tensor x = textures(N, S, 21);
  const std::vector<float> xv = x.to_vector();
  const BenchResult a = cutpaste_generate(x, 42, 100), b = cutpaste_generate(x, 42, 100);
  const BenchResult c = cutpaste_generate(x, 43, 100);
  CHECK(a.image.to_vector() == b.image.to_vector());
  CHECK(a.mask.to_vector() == b.mask.to_vector());
  CHECK(a.params == b.params);
  CHECK(a.image.to_vector() != c.image.to_vector());
  const std::vector<float> out = a.image.to_vector(), m = a.mask.to_vector();
  int scars = 0;
  for (int64_t n = 0; n < N; ++n) {
    const nlohmann::json& p = a.params[size_t(n)];
    scars += p["variant"] == "scar";
    int64_t masked = 0, unchanged_masked = 0, changed_outside_box = 0, changed_unmasked = 0;
    int64_t not_binary = 0;
    for (int64_t ij = 0; ij < plane; ++ij) {
      const float v = m[size_t(n * plane + ij)];
      not_binary += v != 0.f && v != 1.f;
      const bool ch = changed_at(out, xv, n, plane, ij);
      masked += v == 1.f;
      unchanged_masked += v == 1.f && !ch;
      changed_outside_box += ch && !in_rect(p["dst"], ij / S, ij % S);
      changed_unmasked += ch && v == 0.f;
    }
    // A normal paste's mask is every changed pixel; a scar's leaves out its alpha <= 0.5 rim.
    if (p["variant"] == "normal") CHECK(changed_unmasked == 0);
    CHECK(not_binary == 0);
    CHECK(masked > 0);
    CHECK(unchanged_masked == 0);
    CHECK(changed_outside_box == 0);
  }
  CHECK(std::all_of(out.begin(), out.end(), on_8bit_grid));
  MESSAGE("scars among " << N << ": " << scars);
}

TEST_CASE("poisson: normal clone of destination + constant reproduces the destination") {
  // guide = dest + 0.1: the guidance field is the destination's own gradient, so the solution on
  // Ω is the destination (the Dirichlet data agree), from a start that is off by 0.1 everywhere.
  const int64_t N = 2, S = 64;
  const Tensor dest = textures(N, S, 9);
  const std::vector<float> dv = dest.to_vector();
  std::vector<float> gv(dv);
  for (float& v : gv) v += 0.1f;
  std::vector<uint8_t> mask(size_t(N * S * S), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 8 + 4 * n; i < 50; ++i)
      for (int64_t j = 5; j < 58 - 6 * n; ++j) mask[size_t((n * S + i) * S + j)] = 1;
  const Tensor m = Tensor::from_bytes({N, 1, S, S}, mask),
               guide = Tensor::from_vector({N, 3, S, S}, gv);
  for (uint8_t mixed : {uint8_t(0), uint8_t(1)}) {
    PoissonStats st, early;
    const int iterations = poisson_default_iterations(S);
    const std::vector<float> f =
        poisson_blend(dest, guide, m, {mixed, mixed}, iterations, &st).to_vector();
    poisson_blend(dest, guide, m, {mixed, mixed}, 10, &early);
    double err = 0, outside = 0;  // max |f - dest| on the mask and off it
    for (size_t e = 0; e < f.size(); ++e) {
      const size_t px = (e / size_t(3 * S * S)) * size_t(S * S) + e % size_t(S * S);
      double& worst = mask[px] ? err : outside;
      worst = std::max(worst, double(std::fabs(f[e] - dv[e])));
    }
    MESSAGE(std::string(mixed ? "mixed" : "normal")
            << " clone: " << st.iterations << " sweeps, relative residual "
            << st.max_relative_residual << " (after 10 sweeps " << early.max_relative_residual
            << "), max |f - dest| on the mask " << err);
    CHECK(st.iterations == iterations);
    CHECK(st.solves == 1);
    CHECK(st.max_relative_residual < 1e-3);
    CHECK(early.max_relative_residual > 10 * st.max_relative_residual);
    CHECK(err < 1e-4);
    CHECK(outside == 0);
  }
}

TEST_CASE("poisson: blending reduces the seam of a pasted patch") {
  // Dest: one image; guide: another image shifted, so the patch content does not continue the
  // destination; Ω: a 40 x 48 rectangle. The plain paste copies the guide into Ω.
  const int64_t S = 128;
  Tensor pair = bottles(0, 2, S);
  const char* what = "bottle train/good 000 and 001";
  if (!pair.defined()) {
    pair = textures(2, S, 31);
    what = "procedural textures (the bottle data is not here)";
  }
  const std::vector<float> pv = pair.to_vector();
  const std::vector<float> dest(pv.begin(), pv.begin() + 3 * S * S);
  std::vector<float> guide(size_t(3 * S * S));
  const int64_t shift_y = 30, shift_x = -35;
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < S; ++j) {
        const int64_t y = std::clamp<int64_t>(i + shift_y, 0, S - 1),
                      x = std::clamp<int64_t>(j + shift_x, 0, S - 1);
        guide[size_t(c * S * S + i * S + j)] = pv[size_t(3 * S * S + c * S * S + y * S + x)];
      }
  std::vector<uint8_t> mask(size_t(S * S), 0);
  for (int64_t i = 20; i < 60; ++i)
    for (int64_t j = 60; j < 108; ++j) mask[size_t(i * S + j)] = 1;
  std::vector<float> paste = dest;
  for (int c = 0; c < 3; ++c)
    for (int64_t e = 0; e < S * S; ++e)
      if (mask[size_t(e)]) paste[size_t(c * S * S + e)] = guide[size_t(c * S * S + e)];
  PoissonStats st;
  const std::vector<float> blend =
      poisson_blend(Tensor::from_vector({1, 3, S, S}, dest),
                    Tensor::from_vector({1, 3, S, S}, guide),
                    Tensor::from_bytes({1, 1, S, S}, mask), {0}, poisson_default_iterations(S), &st)
          .to_vector();
  const double e_paste = seam_energy(paste, mask, S), e_blend = seam_energy(blend, mask, S);
  const double e_dest = seam_energy(dest, mask, S);
  MESSAGE(std::string(what) << ": seam energy paste " << e_paste << ", Poisson " << e_blend
                            << ", the untouched destination " << e_dest << "; relative residual "
                            << st.max_relative_residual << " after " << st.iterations << " sweeps");
  CHECK(e_blend < 0.5 * e_paste);
  CHECK(st.max_relative_residual < 1e-3);
}

TEST_CASE("nsa: per-class constants of METHOD 4.7.1") {
  const NsaClass bottle = nsa_class("bottle"), screw = nsa_class("screw"),
                 carpet = nsa_class("carpet");
  const NsaClass toothbrush = nsa_class("toothbrush"), capsule = nsa_class("capsule"),
                 cable = nsa_class("cable");
  const NsaClass other = nsa_class("widget"), transistor = nsa_class("transistor");
  CHECK((bottle.object_mask && bottle.background == 200.f && bottle.threshold == 60.f &&
         bottle.num_patches == 3));
  CHECK((screw.width_bounds[0][1] == 0.12f && screw.width_bounds[1][1] == 0.12f &&
         screw.min_object_pct == 0.5f));
  CHECK(screw.num_patches == 4);
  CHECK((carpet.texture && !carpet.object_mask && carpet.num_patches == 4 &&
         carpet.resize_lo == 0.5f && carpet.resize_hi == 2.f));
  CHECK((toothbrush.width_bounds[1][1] == 0.2f && toothbrush.width_bounds[0][1] == 0.4f &&
         toothbrush.min_object_pct == 0.25f && toothbrush.background == 20.f));
  CHECK((capsule.width_bounds[0][1] == 0.15f && capsule.width_bounds[1][1] == 0.4f));
  CHECK((cable.width_bounds[0][0] == 0.05f && !cable.object_mask));
  CHECK((transistor.known && !transistor.object_mask && !transistor.texture));
  CHECK((!other.known && !other.object_mask && !other.texture && other.num_patches == 3));
}

TEST_CASE("nsa: textures (mixed clone), objects (normal clone, object masks): labels, patches") {
  struct Case {
    const char* cls;
    Tensor images, sources;
  };
  const int64_t S = 64;
  std::vector<Case> cases = {{"carpet", textures(4, S, 40), textures(4, S, 41)},
                             {"hazelnut", disks(4, S, 42), disks(4, S, 43)},
                             {"widget", textures(2, S, 44), textures(2, S, 45)}};
  const Tensor b = bottles(10, 4, 128);
  if (b.defined()) {
    const std::vector<float> bv = b.to_vector();
    const size_t half = bv.size() / 2;
    cases.push_back(
        {"bottle",
         Tensor::from_vector({2, 3, 128, 128},
                             std::vector<float>(bv.begin(), bv.begin() + std::ptrdiff_t(half))),
         Tensor::from_vector({2, 3, 128, 128},
                             std::vector<float>(bv.begin() + std::ptrdiff_t(half), bv.end()))});
  } else {
    MESSAGE("the bottle case is skipped: " << kBottle << " is not here");
  }
  for (const Case& k : cases) {
    const std::string cls_name = k.cls;
    CAPTURE(cls_name);
    const int64_t N = k.images.dim(0), H = k.images.dim(2), plane = H * H;
    const NsaClass cls = nsa_class(k.cls);
    PoissonStats st;
    const BenchResult r = nsa_generate(k.images, k.sources, k.cls, 7, 0, &st);
    const BenchResult again = nsa_generate(k.images, k.sources, k.cls, 7, 0);
    const BenchResult other = nsa_generate(k.images, k.sources, k.cls, 8, 0);
    CHECK(r.image.to_vector() == again.image.to_vector());
    CHECK(r.mask.to_vector() == again.mask.to_vector());
    CHECK(r.params == again.params);
    CHECK(r.image.to_vector() != other.image.to_vector());
    const std::vector<float> x = k.images.to_vector(), out = r.image.to_vector(),
                             m = r.mask.to_vector();
    int64_t masked_total = 0, masked_changed = 0, patches = 0;
    for (int64_t n = 0; n < N; ++n) {
      const nlohmann::json& p = r.params[size_t(n)];
      CHECK(p["clone"] == (cls.texture ? "mixed" : "normal"));
      REQUIRE(!p["patches"].empty());
      for (const nlohmann::json& q : p["patches"]) {
        ++patches;
        // Rescaled sizes lie in the width bounds (in pixels), the rectangle inside the image.
        for (int a = 0; a < 2; ++a) {
          const int64_t side = q["dst"][2 + a];
          CHECK(side >= int64_t(std::nearbyint(cls.width_bounds[a][0] * H)));
          CHECK(side <= int64_t(std::nearbyint(cls.width_bounds[a][1] * H)));
        }
        CHECK((int64_t(q["dst"][0]) >= 0 && int64_t(q["dst"][0]) + int64_t(q["dst"][2]) <= H));
        CHECK((int64_t(q["dst"][1]) >= 0 && int64_t(q["dst"][1]) + int64_t(q["dst"][3]) <= H));
      }
      std::vector<uint8_t> rects(size_t(plane), 0);  // the union of the patch rectangles
      for (const nlohmann::json& q : p["patches"])
        for (int64_t ij = 0; ij < plane; ++ij)
          rects[size_t(ij)] |= in_rect(q["dst"], ij / H, ij % H);
      int64_t masked = 0, masked_outside = 0, changed_outside = 0, not_binary = 0;
      for (int64_t ij = 0; ij < plane; ++ij) {
        const float v = m[size_t(n * plane + ij)];
        const bool ch = changed_at(out, x, n, plane, ij), inside = rects[size_t(ij)] != 0;
        not_binary += v != 0.f && v != 1.f;
        masked_outside += v == 1.f && !inside;
        changed_outside += ch && !inside;
        masked += v == 1.f;
        masked_changed += v == 1.f && ch;
      }
      CHECK(not_binary == 0);
      CHECK(masked_outside == 0);   // mask within the union of patch rectangles
      CHECK(changed_outside == 0);  // Poisson writes only inside the rectangles
      CHECK(masked > 0);
      masked_total += masked;
    }
    CHECK(std::all_of(out.begin(), out.end(), on_8bit_grid));
    MESSAGE(std::string(k.cls) << ": " << patches << " patches in " << N << " images, " << st.solves
                               << " solves of " << st.iterations << " sweeps, relative residual "
                               << st.max_relative_residual << ", "
                               << double(masked_changed) / double(masked_total)
                               << " of masked pixels changed");
    // The 5 x 5 median fills small holes inside the changed region: most masked pixels changed,
    // not all.
    CHECK(double(masked_changed) / double(masked_total) > 0.8);
    CHECK(st.max_relative_residual < 1e-3);
    CHECK(st.iterations == poisson_default_iterations(H));
  }
}

TEST_CASE("bench generators: shape errors name the problem") {
  const Tensor x = textures(2, 64, 1);
  CHECK_THROWS_AS(cutpaste_apply(x, {cutpaste_draw(1, 0, 64, 64)}), ShapeError);
  CHECK_THROWS_AS(nsa_generate(x, textures(3, 64, 2), "carpet", 1, 0), ShapeError);
  CHECK_THROWS_AS(cutpaste_generate(Tensor::zeros({2, 1, 64, 64}), 1, 0), ShapeError);
  CutPastePlan bad = cutpaste_draw(1, 0, 64, 64);
  bad.dst_y0 = 60;
  bad.dst_h = 10;
  CHECK_THROWS_AS(cutpaste_apply(textures(1, 64, 1), {bad}), Error);
}
}  // TEST_SUITE("augment")

TEST_SUITE("gpu") {
TEST_CASE("gpu: CutPaste, NSA and the Poisson solver on CUDA equal the CPU for the same seed") {
  CAF_NEED_GPU();
  // Every pass is the same CAF_HD functor without fused multiply-adds on either side (augment is
  // compiled with -ffp-contract=off and -fmad=false), IEEE division and sqrt are correctly rounded
  // on both, and red-black SOR has no order dependence, so the outputs are expected bit-identical.
  // Budget, for a last-bit difference that the 8-bit snapping or a threshold could amplify: image
  // elements differing by at most 1/255 in 1 of 10^4, masks flipping in 1 of 10^4 pixels.
  const int64_t N = 6, S = 256;
  auto compare = [](const char* what, const BenchResult& c, const BenchResult& g) {
    const std::vector<float> ci = c.image.to_vector(), gi = g.image.to_vector();
    const std::vector<float> cm = c.mask.to_vector(), gm = g.mask.to_vector();
    int64_t image_diff = 0, mask_flips = 0;
    float worst = 0;
    for (size_t i = 0; i < ci.size(); ++i) {
      image_diff += ci[i] != gi[i];
      worst = std::max(worst, std::fabs(ci[i] - gi[i]));
    }
    for (size_t i = 0; i < cm.size(); ++i) mask_flips += cm[i] != gm[i];
    MESSAGE(std::string(what) << ": image elements differing " << image_diff << " (max " << worst
                              << "), mask flips " << mask_flips);
    CHECK(c.params == g.params);
    CHECK(double(image_diff) <= 1e-4 * double(ci.size()));
    CHECK(worst <= 1.f / 255.f + 1e-6f);
    CHECK(double(mask_flips) <= 1e-4 * double(cm.size()));
  };
  const Tensor x = textures(N, S, 61), src = textures(N, S, 62);
  compare("cutpaste", cutpaste_generate(x, 5, 0), cutpaste_generate(x.to(Device::cuda), 5, 0));
  PoissonStats cs, gs;
  compare("nsa carpet", nsa_generate(x, src, "carpet", 5, 0, &cs),
          nsa_generate(x.to(Device::cuda), src.to(Device::cuda), "carpet", 5, 0, &gs));
  MESSAGE("residual cpu " << cs.max_relative_residual << ", cuda " << gs.max_relative_residual);
  CHECK(gs.max_relative_residual < 1e-3);
  const Tensor d = disks(N, S, 63), ds = disks(N, S, 64);
  compare("nsa hazelnut", nsa_generate(d, ds, "hazelnut", 5, 0),
          nsa_generate(d.to(Device::cuda), ds.to(Device::cuda), "hazelnut", 5, 0));
}
}  // TEST_SUITE("gpu")
