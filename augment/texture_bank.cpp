// augment/texture_bank.cpp: the texture bank from a folder (decoded in parallel) or generated.
//
// The procedural kinds work in float on the host and round once when packing to uint8; every
// random value comes from a HostRng seeded by (seed, texture index), so textures can be painted
// in parallel and in any order with the same result. Two-colour kinds draw a field t in [0, 1]
// and blend two colours that are kept far apart, so no texture comes out flat.
#include "augment/texture_bank.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <vector>

#include "augment/image_io.h"
#include "kernels/error.h"
#include "kernels/host_rng.h"

namespace caf {
namespace {

constexpr double pi = 3.141592653589793;

struct Rgb {
  double v[3];
};

Rgb random_colour(HostRng& r) {
  return {{r.uniform(0, 255), r.uniform(0, 255), r.uniform(0, 255)}};
}

// Redrawn until the channels differ by 120 in total, so the two phases of a pattern stay visible.
void colour_pair(HostRng& r, Rgb& a, Rgb& b) {
  a = random_colour(r);
  do {
    b = random_colour(r);
  } while (std::fabs(a.v[0] - b.v[0]) + std::fabs(a.v[1] - b.v[1]) + std::fabs(a.v[2] - b.v[2]) <
           120.0);
}

int random_int(HostRng& r, int lo, int hi) {
  return lo + int(r.next() % uint64_t(hi - lo + 1));
}

// Fractal value noise: 3-5 octaves of smoothly interpolated random lattices, each twice as fine
// as the last, stretched to [0, 1].
std::vector<double> fractal_noise(HostRng& r, int S) {
  const int octaves = random_int(r, 3, 5), base_cells = random_int(r, 2, 6);
  const double persistence = r.uniform(0.4, 0.65);
  std::vector<double> t(size_t(S) * size_t(S), 0.0);
  double amplitude = 1.0;
  for (int o = 0; o < octaves; ++o, amplitude *= persistence) {
    const int cells = base_cells << o;
    std::vector<double> lattice(size_t(cells + 1) * size_t(cells + 1));
    for (double& v : lattice) v = r.uniform();
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x) {
        const double u = (y + 0.5) * cells / S, v = (x + 0.5) * cells / S;
        const int i = int(u), j = int(v);
        double fy = u - i, fx = v - j;
        fy = fy * fy * (3 - 2 * fy);
        fx = fx * fx * (3 - 2 * fx);
        auto at = [&](int a, int b) { return lattice[size_t(a) * size_t(cells + 1) + size_t(b)]; };
        const double top = at(i, j) + fx * (at(i, j + 1) - at(i, j));
        const double bottom = at(i + 1, j) + fx * (at(i + 1, j + 1) - at(i + 1, j));
        t[size_t(y) * size_t(S) + size_t(x)] += amplitude * (top + fy * (bottom - top));
      }
  }
  const auto [lo, hi] = std::minmax_element(t.begin(), t.end());
  const double min = *lo, range = std::max(*hi - *lo, 1e-12);
  for (double& v : t) v = (v - min) / range;
  return t;
}

// Sizes drawn in [lo, hi] px, but at most S / 2 so both colours appear even in small textures.
double pattern_size(HostRng& r, int S, double lo, double hi) {
  const double top = std::clamp(S / 2.0, 2.0, hi);
  return r.uniform(std::min(lo, top), top);
}

std::vector<double> stripes(HostRng& r, int S) {
  const double angle = r.uniform(0, pi), period = pattern_size(r, S, 4, 40);
  const double phase = r.uniform(), duty = r.uniform(0.3, 0.7);
  const bool soft = r.uniform() < 0.5;
  const double c = std::cos(angle), s = std::sin(angle);
  std::vector<double> t(size_t(S) * size_t(S));
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const double u = ((x + 0.5) * c + (y + 0.5) * s) / period + phase;
      const double f = u - std::floor(u);
      t[size_t(y) * size_t(S) + size_t(x)] = soft ? 0.5 - 0.5 * std::cos(2 * pi * f) : f < duty;
    }
  return t;
}

std::vector<double> checkerboard(HostRng& r, int S) {
  const double cell = pattern_size(r, S, 4, 48), angle = r.uniform(0, pi / 2);
  const double off_u = r.uniform(), off_v = r.uniform();
  const double c = std::cos(angle), s = std::sin(angle);
  std::vector<double> t(size_t(S) * size_t(S));
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const double px = x + 0.5, py = y + 0.5;
      const auto u = int64_t(std::floor((px * c + py * s) / cell + off_u));
      const auto v = int64_t(std::floor((py * c - px * s) / cell + off_v));
      t[size_t(y) * size_t(S) + size_t(x)] = double((u + v) & 1);
    }
  return t;
}

void blend_planar(const std::vector<double>& t, const Rgb& a, const Rgb& b, int S, double* rgb) {
  const size_t plane = size_t(S) * size_t(S);
  for (int c = 0; c < 3; ++c)
    for (size_t p = 0; p < plane; ++p)
      rgb[size_t(c) * plane + p] = a.v[c] + t[p] * (b.v[c] - a.v[c]);
}

// 10-40 filled ellipses (some circles) of random colours over a random background, in order.
void blotches(HostRng& r, int S, double* rgb) {
  const size_t plane = size_t(S) * size_t(S);
  const Rgb background = random_colour(r);
  for (int c = 0; c < 3; ++c) std::fill_n(rgb + size_t(c) * plane, plane, background.v[c]);
  const int n = random_int(r, 10, 40);
  for (int k = 0; k < n; ++k) {
    const double cx = r.uniform(0, S), cy = r.uniform(0, S);
    const double rx = std::max(1.0, r.uniform(0.03, 0.25) * S);
    const double ry = r.uniform() < 0.3 ? rx : std::max(1.0, r.uniform(0.03, 0.25) * S);
    const double angle = r.uniform(0, pi), c = std::cos(angle), s = std::sin(angle);
    const Rgb colour = random_colour(r);
    const double reach = std::max(rx, ry);
    const int y0 = std::max(0, int(cy - reach)), y1 = std::min(S - 1, int(cy + reach));
    const int x0 = std::max(0, int(cx - reach)), x1 = std::min(S - 1, int(cx + reach));
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
        const double u = (dx * c + dy * s) / rx, v = (dy * c - dx * s) / ry;
        if (u * u + v * v > 1.0) continue;
        for (int ch = 0; ch < 3; ++ch)
          rgb[size_t(ch) * plane + size_t(y) * size_t(S) + size_t(x)] = colour.v[ch];
      }
  }
}

void paint_procedural(uint64_t seed, int64_t index, int S, uint8_t* chw) {
  HostRng r(HostRng(seed).next() ^ (uint64_t(index) * 0xD1B54A32D192ED03ull));
  std::vector<double> rgb(size_t(3) * size_t(S) * size_t(S));
  const int kind = int(index % 4);
  if (kind == 3) {
    blotches(r, S, rgb.data());
  } else {
    Rgb a, b;
    colour_pair(r, a, b);
    const std::vector<double> t = kind == 0   ? fractal_noise(r, S)
                                  : kind == 1 ? stripes(r, S)
                                              : checkerboard(r, S);
    blend_planar(t, a, b, S, rgb.data());
  }
  for (size_t k = 0; k < rgb.size(); ++k)
    chw[k] = uint8_t(std::lrint(std::clamp(rgb[k], 0.0, 255.0)));
}

}  // namespace

TextureBank texture_bank_load(const std::string& dir, int size, Device device, int64_t max_images) {
  CAF_REQUIRE_T(ConfigError, size > 0, "texture_bank_load: the texture size must be positive");
  std::vector<std::string> files = list_images(dir, true);
  if (files.empty())
    throw IoError("texture_bank_load: " + dir + ": no image files (.png .jpg .jpeg .bmp .tga)",
                  "give a folder of texture images such as DTD, or none for the procedural bank");
  if (max_images > 0 && int64_t(files.size()) > max_images) files.resize(size_t(max_images));
  const int64_t T = int64_t(files.size());
  const size_t per = size_t(3) * size_t(size) * size_t(size);
  std::vector<uint8_t> bytes(size_t(T) * per);
  // The error of the lowest-numbered failing file wins, so the message does not depend on timing.
  int64_t failed_at = T;
  std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < T; ++i) {
    try {
      const Image im =
          image_resize_bilinear(image_to_rgb(image_read(files[size_t(i)])), size, size);
      const std::vector<uint8_t> chw = image_to_planar(im);
      std::copy(chw.begin(), chw.end(), bytes.begin() + std::ptrdiff_t(size_t(i) * per));
    } catch (...) {
#pragma omp critical(caf_texture_bank_error)
      if (i < failed_at) failed_at = i, failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  return {Tensor::from_bytes({T, 3, size, size}, bytes, device), dir};
}

TextureBank texture_bank_procedural(int64_t count, int size, uint64_t seed, Device device) {
  CAF_REQUIRE_T(ConfigError, count > 0 && size > 0,
                "texture_bank_procedural: the count and the size must be positive");
  const size_t per = size_t(3) * size_t(size) * size_t(size);
  std::vector<uint8_t> bytes(size_t(count) * per);
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < count; ++i)
    paint_procedural(seed, i, size, bytes.data() + size_t(i) * per);
  return {Tensor::from_bytes({count, 3, size, size}, bytes, device), "procedural"};
}

}  // namespace caf
