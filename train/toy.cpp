// train/toy.cpp: the procedural toy class behind `caf make-toy` (see toy.h for the design).
//
// Rendering works on a double canvas (HWC, 3 channels, nominal range [0, 1]) before noise and
// quantisation. Shapes are signed distance functions (negative inside, in pixels) turned into
// coverage with a one-pixel ramp, which antialiases edges at the cost of one evaluation per pixel
// instead of supersampling. Geometry is drawn in units of the image size S; only line widths have
// a floor in pixels so that strokes survive small sizes. The three random streams of an image
// (look, defect, sensor noise) are separate generators, so redrawing a defect that missed the
// area budget changes neither the clean image nor its noise.
#include "train/toy.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "kernels/error.h"
#include "kernels/host_rng.h"

namespace fs = std::filesystem;

namespace caf {
namespace {

constexpr double kPi = 3.14159265358979323846;
// The defect's share of the image (changed pixels), as MVTec's small and medium defects.
constexpr double kMinDefectArea = 0.003, kMaxDefectArea = 0.05;
constexpr int kMaxDefectAttempts = 64;
constexpr double kNoiseSigma = 0.012;
constexpr const char* kReadmeMarker = "caf make-toy";
constexpr const char* kCafVersion = "0.1.0";  // keep in step with project(VERSION) and `caf info`
constexpr const char* kUsageHint =
    "caf make-toy --out DIR [--kind texture|object] [--seed S] [--size PX] [--train N] "
    "[--test-good N] [--test-per-defect N] [--name NAME]";

using Rgb = std::array<double, 3>;

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double clamp01(double v) {
  return v < 0 ? 0 : (v > 1 ? 1 : v);
}
double smoothstep(double e0, double e1, double x) {
  const double t = clamp01((x - e0) / (e1 - e0));
  return t * t * (3 - 2 * t);
}
double coverage(double sd) {
  return clamp01(0.5 - sd);
}
// std::hypot guards against overflow, which pixel distances never need, at several times the cost.
double len(double x, double y) {
  return std::sqrt(x * x + y * y);
}
// 1 deeper than `soft` pixels inside, 0 beyond `soft` outside: a rim 2 * soft wide.
double soft_coverage(double sd, double soft) {
  return 1 - smoothstep(-soft, soft, sd);
}

Rgb scale(const Rgb& c, double k) {
  return {c[0] * k, c[1] * k, c[2] * k};
}
Rgb lerp(const Rgb& a, const Rgb& b, double t) {
  return {a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t};
}
// A base colour with per-image jitter: overall brightness +-3%, each channel +-2%.
Rgb jitter(HostRng& rng, const Rgb& c) {
  const double k = rng.uniform(0.97, 1.03);
  return {c[0] * k * rng.uniform(0.98, 1.02), c[1] * k * rng.uniform(0.98, 1.02),
          c[2] * k * rng.uniform(0.98, 1.02)};
}
template <size_t N>
const Rgb& pick(HostRng& rng, const std::array<Rgb, N>& palette) {
  return palette[size_t(rng.next() % N)];
}
double signed_uniform(HostRng& rng, double lo, double hi) {
  const double v = rng.uniform(lo, hi);
  return rng.uniform() < 0.5 ? -v : v;
}

struct Canvas {
  int size = 0;
  std::vector<double> rgb;

  explicit Canvas(int s) : size(s), rgb(size_t(s) * size_t(s) * 3) {}
  double* px(int y, int x) { return rgb.data() + (size_t(y) * size_t(size) + size_t(x)) * 3; }
  void blend(int y, int x, const Rgb& c, double a) {
    double* p = px(y, x);
    for (int k = 0; k < 3; ++k) p[k] += (c[k] - p[k]) * a;
  }
};

// Pixel rectangle [x0, x1) x [y0, y1), clipped to the canvas.
struct Box {
  int x0, y0, x1, y1;
};
Box box_around(double xmin, double ymin, double xmax, double ymax, int s) {
  return {std::max(0, int(std::floor(xmin))), std::max(0, int(std::floor(ymin))),
          std::min(s, int(std::ceil(xmax)) + 1), std::min(s, int(std::ceil(ymax)) + 1)};
}

// Paints f(px, py, &alpha, &colour) over a box; pixel centres are at +0.5.
template <class F>
void paint(Canvas& c, const Box& b, F f) {
  for (int y = b.y0; y < b.y1; ++y)
    for (int x = b.x0; x < b.x1; ++x) {
      double a = 0;
      Rgb col{};
      f(x + 0.5, y + 0.5, a, col);
      if (a > 0) c.blend(y, x, col, std::min(a, 1.0));
    }
}

// An irregular ellipse: radius modulated by harmonics 2, 3 and 5 of the angle.
struct Blob {
  double cx = 0, cy = 0, r = 1, aspect = 1, cos_t = 1, sin_t = 0;
  std::array<double, 3> amp{}, phase{};

  double sd(double x, double y) const {
    const double dx = x - cx, dy = y - cy;
    const double a = dx * cos_t + dy * sin_t, b = (-dx * sin_t + dy * cos_t) * aspect;
    const double th = std::atan2(b, a);
    const double rr =
        r * (1 + amp[0] * std::sin(2 * th + phase[0]) + amp[1] * std::sin(3 * th + phase[1]) +
             amp[2] * std::sin(5 * th + phase[2]));
    // Distances are stretched by up to `aspect` across the short axis; the square root splits
    // the difference, which is plenty for a soft edge.
    return (len(a, b) - rr) / std::sqrt(aspect);
  }
  Box box(double pad, int s) const {
    const double e = r * (1 + amp[0] + amp[1] + amp[2]) + pad;
    return box_around(cx - e, cy - e, cx + e, cy + e, s);
  }
};

Blob draw_blob(HostRng& rng, double cx, double cy, double r, double max_aspect, double max_amp) {
  Blob b;
  b.cx = cx;
  b.cy = cy;
  b.r = r;
  b.aspect = rng.uniform(1.0, max_aspect);
  const double t = rng.uniform(0, kPi);
  b.cos_t = std::cos(t);
  b.sin_t = std::sin(t);
  for (int k = 0; k < 3; ++k) {
    b.amp[size_t(k)] = rng.uniform(0, max_amp) / double(k + 1);
    b.phase[size_t(k)] = rng.uniform(0, 2 * kPi);
  }
  return b;
}

// A curved line: in its own frame (x' along, y' across) the centre line is
// y' = curv * x'^2 + amp * sin(freq * x' + phase) for |x'| <= half_len, and the width tapers to
// zero at both ends like a real scratch or a loose thread.
struct Stroke {
  double cx = 0, cy = 0, cos_t = 1, sin_t = 0, half_len = 1, half_width = 1;
  double curv = 0, amp = 0, freq = 0, phase = 0;

  // Signed distance to the tapered edge, and through `across` the position across the line in
  // [-1, 1] (for shading a round thread).
  double sd(double x, double y, double* across = nullptr) const {
    const double dx = x - cx, dy = y - cy;
    const double u = dx * cos_t + dy * sin_t, v = -dx * sin_t + dy * cos_t;
    if (std::fabs(u) >= half_len) return 1e9;
    const double f = curv * u * u + amp * std::sin(freq * u + phase);
    const double df = 2 * curv * u + amp * freq * std::cos(freq * u + phase);
    const double d = (v - f) / std::sqrt(1 + df * df);
    const double t = u / half_len, t2 = t * t;
    const double hw = half_width * (1 - t2 * t2);
    if (across) *across = hw > 0 ? std::max(-1.0, std::min(1.0, d / hw)) : 1;
    return std::fabs(d) - hw;
  }
  Box box(int s) const {
    double xmin = 1e9, ymin = 1e9, xmax = -1e9, ymax = -1e9;
    for (int i = 0; i <= 64; ++i) {
      const double u = half_len * (2.0 * i / 64 - 1);
      const double v = curv * u * u + amp * std::sin(freq * u + phase);
      const double x = cx + u * cos_t - v * sin_t, y = cy + u * sin_t + v * cos_t;
      xmin = std::min(xmin, x), xmax = std::max(xmax, x);
      ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
    const double pad = half_width + 2 + std::fabs(amp) * 0.1;
    return box_around(xmin - pad, ymin - pad, xmax + pad, ymax + pad, s);
  }
};

// Shared stroke geometry: centre, direction, half length, half width (with a pixel floor) and a
// bow of `sagitta` pixels at the ends.
Stroke make_stroke(double cx, double cy, double angle, double half_len, double half_width,
                   double sagitta) {
  Stroke st;
  st.cx = cx;
  st.cy = cy;
  st.cos_t = std::cos(angle);
  st.sin_t = std::sin(angle);
  st.half_len = half_len;
  st.half_width = std::max(0.75, half_width);
  st.curv = sagitta / (half_len * half_len);
  return st;
}

// ---- texture: a plain weave ------------------------------------------------------------------

struct TextureLook {
  double period = 0, phase_x = 0, phase_y = 0, grad_x = 0, grad_y = 0;
  Rgb warp{}, weft{};
  uint64_t salt = 0;
};

TextureLook draw_texture_look(HostRng& rng, int s) {
  TextureLook t;
  t.period = s / 10.5 * rng.uniform(0.99, 1.01);
  t.phase_x = rng.uniform(0, 2 * t.period);  // the weave repeats every two threads
  t.phase_y = rng.uniform(0, 2 * t.period);
  t.grad_x = rng.uniform(-0.03, 0.03);
  t.grad_y = rng.uniform(-0.03, 0.03);
  t.warp = jitter(rng, {0.64, 0.56, 0.44});
  t.weft = jitter(rng, {0.36, 0.44, 0.56});
  t.salt = rng.next();
  return t;
}

// One thread family along an axis: per-position quantities of the weave, computed once per row
// or column (the weave is separable up to the crossing test).
struct ThreadAxis {
  std::vector<double> body, lift, twist_c, twist_s, along_c, along_s, tone;
  std::vector<int> parity;
};

ThreadAxis thread_axis(int s, double period, double phase, uint64_t salt) {
  ThreadAxis a;
  for (int i = 0; i < s; ++i) {
    const double u = (i + 0.5 + phase) / period;
    const double k = std::floor(u), pu = u - k - 0.5;
    a.body.push_back(std::cos(kPi * pu));  // 1 on the thread's axis, 0 between threads
    a.lift.push_back(std::sin(kPi * u));
    a.twist_c.push_back(std::cos(2 * kPi * pu));
    a.twist_s.push_back(std::sin(2 * kPi * pu));
    a.along_c.push_back(std::cos(4 * kPi * u));  // two twist stripes per thread spacing
    a.along_s.push_back(std::sin(4 * kPi * u));
    const uint64_t h = mix64(salt ^ uint64_t(int64_t(k)));
    a.tone.push_back(1 + 0.05 * ((h >> 11) * (1.0 / 9007199254740992.0) * 2 - 1));
    a.parity.push_back(int(int64_t(k) & 1));
  }
  return a;
}

Canvas render_texture(const TextureLook& t, int s) {
  // Warp threads run down the columns, weft threads across the rows. At crossing (k, m) the
  // warp is on top when k + m is even: each thread's height follows sin(pi * position along it),
  // its sign flipping from one thread to the next.
  const ThreadAxis cols = thread_axis(s, t.period, t.phase_x, t.salt);
  const ThreadAxis rows = thread_axis(s, t.period, t.phase_y, ~t.salt);
  const double sharp = 0.6 * t.period;  // crossing edges about a pixel wide
  Canvas c(s);
  for (int y = 0; y < s; ++y)
    for (int x = 0; x < s; ++x) {
      const double sk = cols.parity[size_t(x)] ? -1 : 1, sm = rows.parity[size_t(y)] ? -1 : 1;
      const double ew = sk * rows.lift[size_t(y)], ef = -sm * cols.lift[size_t(x)];
      const double bu = cols.body[size_t(x)], bv = rows.body[size_t(y)];
      const double w = smoothstep(-2, 2, sharp * ((0.6 * ew + bu) - (0.6 * ef + bv)));
      // Yarn twist: slanted stripes, sin(2 pi (across + 2 along)) via the angle-sum identity.
      const double tw_w = cols.twist_s[size_t(x)] * rows.along_c[size_t(y)] +
                          cols.twist_c[size_t(x)] * rows.along_s[size_t(y)];
      const double tw_f = rows.twist_s[size_t(y)] * cols.along_c[size_t(x)] +
                          rows.twist_c[size_t(y)] * cols.along_s[size_t(x)];
      const double lw = (0.42 + 0.58 * std::sqrt(bu) * (0.78 + 0.22 * ew)) * (1 + 0.06 * tw_w) *
                        cols.tone[size_t(x)];
      const double lf = (0.42 + 0.58 * std::sqrt(bv) * (0.78 + 0.22 * ef)) * (1 + 0.06 * tw_f) *
                        rows.tone[size_t(y)];
      const double light = 1 + t.grad_x * ((x + 0.5) / s - 0.5) + t.grad_y * ((y + 0.5) / s - 0.5);
      double* p = c.px(y, x);
      for (int k = 0; k < 3; ++k)
        p[k] = (w * t.warp[size_t(k)] * lw + (1 - w) * t.weft[size_t(k)] * lf) * light;
    }
  return c;
}

void texture_defect(Canvas& c, const std::string& defect, HostRng& rng) {
  const double s = c.size, px = s / 256;  // one pixel of the 256-px design
  const double cx = rng.uniform(0.18, 0.82) * s, cy = rng.uniform(0.18, 0.82) * s;
  if (defect == "scratch") {
    const Stroke st =
        make_stroke(cx, cy, rng.uniform(0, kPi), rng.uniform(0.15, 0.25) * s,
                    rng.uniform(0.007, 0.012) * s, signed_uniform(rng, 0.02, 0.08) * s);
    const Rgb col =
        rng.uniform() < 0.5 ? jitter(rng, {0.94, 0.93, 0.89}) : jitter(rng, {0.06, 0.05, 0.05});
    paint(c, st.box(c.size), [&](double x, double y, double& a, Rgb& out) {
      a = coverage(st.sd(x, y));
      out = col;
    });
  } else if (defect == "hole") {
    const Blob b = draw_blob(rng, cx, cy, rng.uniform(0.035, 0.065) * s, 1.5, 0.08);
    const Rgb col = jitter(rng, {0.05, 0.045, 0.04});
    const double soft = std::max(0.75, 1.5 * px);
    paint(c, b.box(soft + 1, c.size), [&](double x, double y, double& a, Rgb& out) {
      a = soft_coverage(b.sd(x, y), soft);
      out = col;
    });
  } else if (defect == "stain") {
    static const std::array<Rgb, 3> palette = {Rgb{0.55, 0.22, 0.08}, Rgb{0.20, 0.17, 0.06},
                                               Rgb{0.45, 0.07, 0.22}};
    const Blob b = draw_blob(rng, cx, cy, rng.uniform(0.06, 0.095) * s, 1.8, 0.15);
    const Rgb col = jitter(rng, pick(rng, palette));
    const double alpha = rng.uniform(0.55, 0.75), soft = std::max(1.0, 3 * px);
    paint(c, b.box(soft + 1, c.size), [&](double x, double y, double& a, Rgb& out) {
      const double sd = b.sd(x, y);
      // Dried liquid collects at its rim: slightly denser near the edge.
      a = alpha * soft_coverage(sd, soft) * (0.85 + 0.3 * smoothstep(-5 * px, 0, sd));
      out = col;
    });
  } else if (defect == "thread") {
    static const std::array<Rgb, 4> palette = {Rgb{0.80, 0.12, 0.10}, Rgb{0.12, 0.52, 0.20},
                                               Rgb{0.93, 0.92, 0.86}, Rgb{0.07, 0.07, 0.09}};
    Stroke st = make_stroke(cx, cy, rng.uniform(0, kPi), rng.uniform(0.3, 0.45) * s,
                            rng.uniform(0.006, 0.009) * s, signed_uniform(rng, 0, 0.05) * s);
    st.amp = rng.uniform(0.015, 0.04) * s;
    st.freq = 2 * kPi / (rng.uniform(0.12, 0.25) * s);
    st.phase = rng.uniform(0, 2 * kPi);
    const Rgb col = jitter(rng, pick(rng, palette));
    paint(c, st.box(c.size), [&](double x, double y, double& a, Rgb& out) {
      double across = 0;
      a = coverage(st.sd(x, y, &across));
      out = scale(col, 0.72 + 0.35 * std::sqrt(1 - across * across));  // a round thread
    });
  } else {
    CAF_REQUIRE(false, "texture_defect: unknown defect " + defect);
  }
}

// ---- object: a brass washer with a notch and printed marks
// ---------------------------------------

struct Washer {
  double cx = 0, cy = 0, r_out = 0, r_in = 0;
  double notch_hw = 0, notch_depth = 0, notch_shift = 0, notch_shear = 0;
  double dent_amp = 0, dent_hw = 0, dent_x = 1, dent_y = 0;  // rim bent over an angle range
  std::vector<Blob> cuts;  // material removed: broken-off chunks, holes

  double sd(double x, double y) const {
    const double dx = x - cx, dy = y - cy, r = len(dx, dy);
    double rim = r_out;
    if (dent_amp != 0 && r > 0) {
      const double delta =
          std::acos(std::max(-1.0, std::min(1.0, (dx * dent_x + dy * dent_y) / r)));
      if (delta < dent_hw) rim += dent_amp * std::pow(std::cos(0.5 * kPi * delta / dent_hw), 2);
    }
    double d = std::max(r - rim, r_in - r);
    // The notch: a box centred on the top of the rim, cutting notch_depth into the ring.
    const double ny = y - (cy - r_out);
    const double nx = x - cx - notch_shift - notch_shear * ny;
    const double qx = std::fabs(nx) - notch_hw, qy = std::fabs(ny) - notch_depth;
    const double box = len(std::max(qx, 0.0), std::max(qy, 0.0)) + std::min(std::max(qx, qy), 0.0);
    d = std::max(d, -box);
    for (const Blob& b : cuts) d = std::max(d, -b.sd(x, y));
    return d;
  }
};

struct ObjectLook {
  Washer shape;
  Rgb metal{}, background{}, ink{};
  double light_x = 0, light_y = 0, grad_x = 0, grad_y = 0, bevel = 0;
  double bar_x = 0, bar_y0 = 0, bar_y1 = 0, bar_r = 0, dot_x = 0, dot_y = 0, dot_r = 0;
};

ObjectLook draw_object_look(HostRng& rng, int s) {
  ObjectLook o;
  const double jit = 2.0 * s / 256;  // +-2 px at 256
  Washer& w = o.shape;
  w.cx = 0.5 * s + rng.uniform(-jit, jit);
  w.cy = 0.5 * s + rng.uniform(-jit, jit);
  w.r_out = 0.34 * s * rng.uniform(0.995, 1.005);
  w.r_in = 0.14 * s * rng.uniform(0.995, 1.005);
  w.notch_hw = 0.045 * s;
  w.notch_depth = 0.075 * s;
  o.metal = jitter(rng, {0.74, 0.63, 0.40});
  o.background = jitter(rng, {0.17, 0.19, 0.22});
  o.ink = {0.10, 0.09, 0.08};
  const double angle = 1.25 * kPi + rng.uniform(-0.26, 0.26);  // light from the upper left
  o.light_x = std::cos(angle);
  o.light_y = std::sin(angle);
  o.grad_x = rng.uniform(-0.08, 0.08);
  o.grad_y = rng.uniform(-0.08, 0.08);
  o.bevel = std::max(1.5, 0.02 * s);
  // Printed marks: a bar on the left of the ring and a dot at its lower right.
  const double mid = 0.5 * (w.r_out + w.r_in);
  o.bar_x = w.cx - mid;
  o.bar_y0 = w.cy - 0.05 * s;
  o.bar_y1 = w.cy + 0.05 * s;
  o.bar_r = 0.016 * s;
  o.dot_x = w.cx + mid * std::sqrt(0.5);
  o.dot_y = w.cy + mid * std::sqrt(0.5);
  o.dot_r = 0.022 * s;
  return o;
}

// Renders the pixels of `region` into c (a shape defect re-renders only around its change).
void render_object(const ObjectLook& o, Canvas& c, const Box& region) {
  const Washer& w = o.shape;
  const int s = c.size;
  for (int y = region.y0; y < region.y1; ++y)
    for (int x = region.x0; x < region.x1; ++x) {
      const double px = x + 0.5, py = y + 0.5;
      const double light = 1 + o.grad_x * (px / s - 0.5) + o.grad_y * (py / s - 0.5);
      const double sd = w.sd(px, py), cov = coverage(sd);
      Rgb out = scale(o.background, light);
      if (cov > 0) {
        const double dx = px - w.cx, dy = py - w.cy, r = std::max(1.0, len(dx, dy));
        // Brushed metal reflects more on the side facing the light.
        double shade = 0.88 + 0.1 * (dx * o.light_x + dy * o.light_y) / r;
        if (-sd < o.bevel) {
          // A bevel along every edge, lit by the outward normal (the SDF gradient).
          const double h = 0.5;
          const double gx = w.sd(px + h, py) - w.sd(px - h, py);
          const double gy = w.sd(px, py + h) - w.sd(px, py - h);
          const double gn = std::max(1e-9, len(gx, gy));
          const double facing = (gx * o.light_x + gy * o.light_y) / gn;
          shade += 0.35 * facing * (1 - std::max(0.0, -sd) / o.bevel);
        }
        Rgb metal = scale(o.metal, shade * light);
        const double by = std::max(o.bar_y0, std::min(o.bar_y1, py));
        const double bar = len(px - o.bar_x, py - by) - o.bar_r;
        const double dot = len(px - o.dot_x, py - o.dot_y) - o.dot_r;
        metal = lerp(metal, scale(o.ink, light), 0.92 * std::max(coverage(bar), coverage(dot)));
        out = lerp(out, metal, cov);
      }
      double* p = c.px(y, x);
      for (int k = 0; k < 3; ++k) p[k] = out[size_t(k)];
    }
}

// A point on the ring at a random angle, `spread` off its middle radius.
void ring_point(HostRng& rng, const Washer& w, double spread, double& x, double& y, double& angle) {
  angle = rng.uniform(0, 2 * kPi);
  const double r = 0.5 * (w.r_out + w.r_in) + rng.uniform(-spread, spread);
  x = w.cx + r * std::cos(angle);
  y = w.cy + r * std::sin(angle);
}

Canvas object_defect(const ObjectLook& look, const Canvas& clean, const std::string& defect,
                     HostRng& rng) {
  const int s = clean.size;
  const double px = s / 256.0;
  const Washer& w = look.shape;
  Canvas c = clean;
  double x = 0, y = 0, angle = 0;
  // Surface defects paint over the clean image, weighted by the washer's coverage.
  auto on_part = [&](double x_, double y_) { return coverage(w.sd(x_, y_)); };
  if (defect == "scratch") {
    ring_point(rng, w, 0.04 * s, x, y, angle);
    const Stroke st =
        make_stroke(x, y, angle + 0.5 * kPi + rng.uniform(-0.45, 0.45), rng.uniform(0.11, 0.18) * s,
                    rng.uniform(0.007, 0.01) * s, signed_uniform(rng, 0, 0.04) * s);
    const Rgb col =
        rng.uniform() < 0.5 ? jitter(rng, {0.97, 0.95, 0.90}) : jitter(rng, {0.22, 0.19, 0.15});
    paint(c, st.box(s), [&](double x_, double y_, double& a, Rgb& out) {
      a = coverage(st.sd(x_, y_)) * on_part(x_, y_);
      out = col;
    });
    return c;
  }
  if (defect == "stain") {
    static const std::array<Rgb, 3> palette = {Rgb{0.20, 0.14, 0.07}, Rgb{0.25, 0.50, 0.42},
                                               Rgb{0.36, 0.26, 0.52}};
    ring_point(rng, w, 0.04 * s, x, y, angle);
    const Blob b = draw_blob(rng, x, y, rng.uniform(0.05, 0.08) * s, 1.6, 0.15);
    const Rgb col = jitter(rng, pick(rng, palette));
    const double alpha = rng.uniform(0.5, 0.7), soft = std::max(1.0, 2.5 * px);
    paint(c, b.box(soft + 1, s), [&](double x_, double y_, double& a, Rgb& out) {
      a = alpha * soft_coverage(b.sd(x_, y_), soft) * on_part(x_, y_);
      out = col;
    });
    return c;
  }
  // Shape defects change the geometry and re-render the part around the change (plus the bevel
  // the new edge gets); every changed pixel lies in that region.
  ObjectLook changed = look;
  Washer& g = changed.shape;
  const double pad = look.bevel + 2;
  Box region{0, 0, s, s};
  if (defect == "hole" || defect == "missing") {
    // A hole goes through the part; a missing chunk breaks off its rim.
    const bool hole = defect == "hole";
    double r = 0;
    if (hole) {
      ring_point(rng, w, 0.03 * s, x, y, angle);
      r = rng.uniform(0.028, 0.045) * s;
    } else {
      angle = rng.uniform(0, 2 * kPi);
      const double at = w.r_out + rng.uniform(-0.01, 0.03) * s;
      x = w.cx + at * std::cos(angle);
      y = w.cy + at * std::sin(angle);
      r = rng.uniform(0.07, 0.1) * s;
    }
    g.cuts.push_back(draw_blob(rng, x, y, r, hole ? 1.3 : 1.5, hole ? 0.06 : 0.12));
    region = g.cuts.back().box(pad, s);
  } else if (defect == "bend") {
    if (rng.uniform() < 0.5) {
      // The rim pushed in or out over 30 to 60 degrees.
      angle = rng.uniform(0, 2 * kPi);
      g.dent_x = std::cos(angle);
      g.dent_y = std::sin(angle);
      g.dent_amp = signed_uniform(rng, 0.03, 0.05) * s;
      g.dent_hw = rng.uniform(15, 30) * kPi / 180;
      double xmin = 1e9, ymin = 1e9, xmax = -1e9, ymax = -1e9;
      for (int i = 0; i <= 32; ++i) {
        const double a = angle + g.dent_hw * (2.0 * i / 32 - 1);
        for (double r : {w.r_out - std::fabs(g.dent_amp), w.r_out + std::fabs(g.dent_amp)}) {
          xmin = std::min(xmin, w.cx + r * std::cos(a)),
          xmax = std::max(xmax, w.cx + r * std::cos(a));
          ymin = std::min(ymin, w.cy + r * std::sin(a)),
          ymax = std::max(ymax, w.cy + r * std::sin(a));
        }
      }
      region = box_around(xmin - pad, ymin - pad, xmax + pad, ymax + pad, s);
    } else {
      // The notch bent: its walls shifted and slanted.
      g.notch_shift = signed_uniform(rng, 0.025, 0.04) * s;
      g.notch_shear = signed_uniform(rng, 0.2, 0.45);
      const double half =
          w.notch_hw + std::fabs(g.notch_shift) + std::fabs(g.notch_shear) * w.notch_depth + pad;
      const double top = w.cy - w.r_out;
      region = box_around(w.cx - half, top - w.notch_depth - pad, w.cx + half,
                          top + w.notch_depth + pad, s);
    }
  } else {
    CAF_REQUIRE(false, "object_defect: unknown defect " + defect);
  }
  render_object(changed, c, region);
  return c;
}

// ---- images, masks and the class folder -------------------------------------------------------

uint64_t image_seed(const ToyOptions& o, const std::string& split, const std::string& defect,
                    int index) {
  uint64_t h = mix64(o.seed ^ 0x746f792d636c6173ull);
  h = mix64(h ^ hash_name(o.kind.c_str()));
  h = mix64(h ^ hash_name(split.c_str()));
  h = mix64(h ^ hash_name(defect.c_str()));
  return mix64(h ^ uint64_t(index));
}

// Sensor noise, the same in an image and its clean twin: one luminance value per pixel, the sum
// of three uniforms scaled to standard deviation kNoiseSigma.
std::vector<double> sensor_noise(int s, uint64_t seed) {
  HostRng rng(seed);
  std::vector<double> n(size_t(s) * size_t(s));
  for (double& v : n) {
    const uint64_t r = rng.next();
    const double sum = double(r & 0xffff) + double((r >> 16) & 0xffff) + double((r >> 32) & 0xffff);
    v = (sum / 65536.0 - 1.5) * 2 * kNoiseSigma;
  }
  return n;
}

Image quantise(const Canvas& c, const std::vector<double>& noise) {
  Image im;
  im.height = im.width = c.size;
  im.channels = 3;
  im.pixels.resize(c.rgb.size());
  for (size_t i = 0; i < c.rgb.size(); ++i)
    im.pixels[i] = uint8_t(clamp01(c.rgb[i] + noise[i / 3]) * 255 + 0.5);
  return im;
}

std::string folder_of(const std::string& split, const std::string& defect) {
  return split + "/" + defect;
}

std::string file_name(int index, const char* suffix) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%03d%s.png", index, suffix);
  return buf;
}

bool made_by_make_toy(const fs::path& dir) {
  std::ifstream f(dir / "readme.txt");
  std::string first;
  return f && std::getline(f, first) && first.rfind(kReadmeMarker, 0) == 0;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) throw IoError("make-toy: cannot write " + path.string());
}

std::string readme_text(const ToyOptions& o, const std::vector<std::string>& defects) {
  std::string d;
  for (const std::string& name : defects) d += (d.empty() ? "" : ", ") + name;
  char buf[2048];  // the name is at most 200 characters (toy_validate)
  std::snprintf(buf, sizeof buf,
                "%s: a procedural toy class in MVTec AD layout, generated by caf %s.\n"
                "kind: %s\nseed: %llu\nsize: %d x %d, RGB\n"
                "train/good: %d\ntest/good: %d\ntest/<defect>: %d each (%s)\n"
                "ground_truth/<defect>/NNN_mask.png: 0 or 255, exactly the pixels the defect "
                "changed by more than %d levels\n"
                "regenerate: caf make-toy --kind %s --seed %llu --size %d --train %d "
                "--test-good %d --test-per-defect %d --name %s --out DIR\n"
                "Same seed, same caf and platform: byte-identical files. Make-toy replaces this "
                "folder when asked to write it again; delete this readme to protect it.\n",
                kReadmeMarker, kCafVersion, o.kind.c_str(), (unsigned long long)o.seed, o.size,
                o.size, o.train, o.test_good, o.test_per_defect, d.c_str(), kToyMaskThreshold,
                o.kind.c_str(), (unsigned long long)o.seed, o.size, o.train, o.test_good,
                o.test_per_defect, toy_class_name(o).c_str());
  return buf;
}

}  // namespace

std::vector<std::string> toy_defects(const std::string& kind) {
  if (kind == "texture") return {"scratch", "hole", "stain", "thread"};
  if (kind == "object") return {"scratch", "hole", "missing", "bend", "stain"};
  throw ConfigError("make-toy: unknown kind '" + kind + "' (texture or object)", kUsageHint);
}

std::string toy_class_name(const ToyOptions& o) {
  return o.name.empty() ? "toy_" + o.kind : o.name;
}

void toy_validate(const ToyOptions& o) {
  toy_defects(o.kind);
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw ConfigError("make-toy: " + what, kUsageHint);
  };
  need(o.size >= 32 && o.size <= 4096, "--size must be in 32..4096");
  need(o.train >= 1 && o.train <= 100000, "--train must be in 1..100000");
  need(o.test_good >= 1 && o.test_good <= 100000, "--test-good must be in 1..100000");
  need(o.test_per_defect >= 1 && o.test_per_defect <= 100000,
       "--test-per-defect must be in 1..100000");
  const std::string name = toy_class_name(o);
  need(name.size() <= 200 && name.find_first_of("/\\") == std::string::npos && name[0] != '.',
       "--name must be a plain folder name, not '" + name + "'");
}

ToySample toy_render(const ToyOptions& o, const std::string& split, const std::string& defect,
                     int index, bool with_defect) {
  toy_validate(o);
  const std::vector<std::string> defects = toy_defects(o.kind);
  const bool good = defect == "good";
  CAF_REQUIRE_T(ConfigError, (split == "train" && good) || split == "test",
                "toy_render: split is 'train' (good only) or 'test', got " + split + "/" + defect);
  CAF_REQUIRE_T(ConfigError,
                good || std::find(defects.begin(), defects.end(), defect) != defects.end(),
                "toy_render: no defect '" + defect + "' for kind " + o.kind);
  const int s = o.size;
  const uint64_t seed = image_seed(o, split, defect, index);
  HostRng look_rng(seed), defect_rng(mix64(seed ^ 1));
  const std::vector<double> noise = sensor_noise(s, mix64(seed ^ 2));

  const bool texture = o.kind == "texture";
  TextureLook tex;
  ObjectLook obj;
  if (texture)
    tex = draw_texture_look(look_rng, s);
  else
    obj = draw_object_look(look_rng, s);
  Canvas clean(s);
  if (texture)
    clean = render_texture(tex, s);
  else
    render_object(obj, clean, Box{0, 0, s, s});
  ToySample out;
  out.image = quantise(clean, noise);
  if (good || !with_defect) return out;

  const size_t plane = size_t(s) * size_t(s);
  for (int attempt = 0; attempt < kMaxDefectAttempts; ++attempt) {
    Canvas changed = clean;
    if (texture)
      texture_defect(changed, defect, defect_rng);
    else
      changed = object_defect(obj, clean, defect, defect_rng);
    const Image q = quantise(changed, noise);
    Image mask;
    mask.height = mask.width = s;
    mask.channels = 1;
    mask.pixels.assign(plane, 0);
    size_t area = 0;
    for (size_t i = 0; i < plane; ++i)
      for (size_t k = 0; k < 3; ++k)
        if (std::abs(int(q.pixels[i * 3 + k]) - int(out.image.pixels[i * 3 + k])) >
            kToyMaskThreshold) {
          mask.pixels[i] = 255;
          ++area;
          break;
        }
    const double frac = double(area) / double(plane);
    if (frac < kMinDefectArea || frac > kMaxDefectArea) continue;
    for (size_t i = 0; i < plane; ++i)
      if (mask.pixels[i])
        for (size_t k = 0; k < 3; ++k) out.image.pixels[i * 3 + k] = q.pixels[i * 3 + k];
    out.mask = std::move(mask);
    return out;
  }
  throw Error("make-toy: no " + defect + " defect within " + std::to_string(kMinDefectArea * 100) +
                  "%.." + std::to_string(kMaxDefectArea * 100) + "% of the image after " +
                  std::to_string(kMaxDefectAttempts) + " draws (" + split + "/" + defect + " " +
                  std::to_string(index) + ")",
              "try another --size or --seed");
}

ToySummary make_toy(const std::string& out_root, const ToyOptions& o) {
  toy_validate(o);
  const std::string name = toy_class_name(o);
  const fs::path root(out_root), target = root / name;
  const fs::path tmp = root / ("." + name + ".make-toy-tmp");
  const fs::path old = root / ("." + name + ".make-toy-old");
  std::error_code ec;
  if (fs::exists(target, ec)) {
    if (!fs::is_directory(target, ec))
      throw IoError("make-toy: " + target.string() + " exists and is not a folder",
                    "choose another --out or --name");
    if (!fs::is_empty(target, ec) && !made_by_make_toy(target))
      throw IoError("make-toy: " + target.string() +
                        " exists, is not empty and was not made by make-toy; refusing to "
                        "overwrite it",
                    "choose another --out or --name, or remove the folder yourself");
  }

  ToySummary sum;
  sum.class_dir = target.string();
  sum.defects = toy_defects(o.kind);
  struct Job {
    std::string split, defect;
    int index;
  };
  std::vector<Job> jobs;
  for (int i = 0; i < o.train; ++i) jobs.push_back({"train", "good", i});
  for (int i = 0; i < o.test_good; ++i) jobs.push_back({"test", "good", i});
  for (const std::string& d : sum.defects)
    for (int i = 0; i < o.test_per_defect; ++i) jobs.push_back({"test", d, i});
  sum.train = o.train;
  sum.test_good = o.test_good;
  sum.test_defect = int64_t(o.test_per_defect) * int64_t(sum.defects.size());

  // Leftovers of a crashed run carry make-toy's own names; nothing else is ever removed.
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp / "train" / "good", ec);
  fs::create_directories(tmp / "test" / "good", ec);
  for (const std::string& d : sum.defects) {
    fs::create_directories(tmp / "test" / d, ec);
    fs::create_directories(tmp / "ground_truth" / d, ec);
  }
  if (!fs::is_directory(tmp / "train" / "good"))
    throw IoError("make-toy: cannot create " + tmp.string(), "check that --out is writable");

  // Images are independent (each has its own generators), so threads can take them in any order.
  std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic)
  for (int64_t j = 0; j < int64_t(jobs.size()); ++j) {
    try {
      const Job& job = jobs[size_t(j)];
      const ToySample smp = toy_render(o, job.split, job.defect, job.index);
      image_write_png((tmp / folder_of(job.split, job.defect) / file_name(job.index, "")).string(),
                      smp.image);
      if (!smp.mask.pixels.empty())
        image_write_png(
            (tmp / "ground_truth" / job.defect / file_name(job.index, "_mask")).string(), smp.mask);
    } catch (...) {
#pragma omp critical(caf_make_toy_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) {
    fs::remove_all(tmp, ec);
    std::rethrow_exception(failure);
  }
  write_text(tmp / "readme.txt", readme_text(o, sum.defects));
  write_text(tmp / "license.txt",
             "Generated procedurally by caf make-toy from a seed; it contains no third-party "
             "material. Public domain (CC0 1.0): use it for anything.\n");

  // Swap in the new class: the old one (if any) moves aside first, so at every moment the target
  // is either the complete old class, absent, or the complete new one.
  fs::remove_all(old, ec);
  if (fs::exists(target)) fs::rename(target, old);
  fs::rename(tmp, target);
  fs::remove_all(old, ec);
  return sum;
}

}  // namespace caf
