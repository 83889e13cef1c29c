// augment/source_ops.h: the 10 operations applied to an anomaly-source texture (METHOD.md 4.2).
//
// DRAEM applies 3 distinct operations out of 10, in random order, to each texture with imgaug on
// uint8 images. caf keeps the uint8 representation between operations (each rounds to nearest and
// clamps, as imgaug and PIL do), which makes the integer operations exact on both devices and gives
// closed-form identities to test (invert twice, posterize to 8 bits, gamma 1). The operations fall
// in three groups, so that one fused pass per stage serves a whole batch:
//   - lookup-table ops, a 256-entry table per (sample, channel): gamma, solarize, posterize,
//     invert, autocontrast, equalise (the last two built from the channel's histogram);
//   - pixel ops, reading the 3 channels of one pixel: brightness, hue and saturation;
//   - neighbourhood ops, reading other pixels: sharpness (3x3), rotation (bilinear gather).
// Operations and ranges follow METHOD 4.2; where imgaug/PIL semantics need a choice it is written
// beside the code. Dimension letters: C channels (3), H rows, W cols; images are planar CHW bytes.
#pragma once

#include <cmath>
#include <cstdint>

#include "augment/philox.h"
#include "kernels/common.h"

namespace caf {

enum class SourceOp : uint8_t {
  gamma,         // p[0..2]: gamma per channel, U(0.5, 2)
  brightness,    // p[0]: multiplier U(0.8, 1.2), p[1]: offset U(-30, 30) on the luma
  sharpness,     // p[0]: factor U(0, 2); 0 = smoothed, 1 = unchanged, 2 = sharpened
  hue_saturation,// p[0]: hue shift U(-50, 50) on imgaug's +-255 scale, p[1]: saturation shift U(-50, 50)
  solarize,      // p[0]: 1 to apply (probability 0.5), p[1]: threshold U(32, 128)
  posterize,     // p[0]: bits kept, uniform in {1..8}
  invert,
  autocontrast,  // p[0]: cutoff U(0, 20) percent at each end
  equalize,
  rotate,        // p[0], p[1]: cos, sin of an angle U(-45, 45) degrees; filled with 0
};
inline constexpr int kSourceOpCount = 10;
inline constexpr int kSourceOpsPerSample = 3;

const char* source_op_name(SourceOp op);

CAF_HD bool source_op_uses_histogram(SourceOp op) {
  return op == SourceOp::autocontrast || op == SourceOp::equalize;
}
CAF_HD bool source_op_uses_lut(SourceOp op) {
  return op == SourceOp::gamma || op == SourceOp::solarize || op == SourceOp::posterize ||
         op == SourceOp::invert || source_op_uses_histogram(op);
}

// Round to nearest and clamp to a byte.
CAF_HD uint8_t to_byte(float v) {
  v = v < 0.f ? 0.f : (v > 255.f ? 255.f : v);
  return uint8_t(v + 0.5f);
}

// Draws the parameters of `op` from four random words (angles in double, rounded once).
CAF_HD void source_op_params(SourceOp op, Philox4 r, float* p) {
  p[0] = p[1] = p[2] = 0.f;
  switch (op) {
    case SourceOp::gamma:
      for (int c = 0; c < 3; ++c) p[c] = uniform(r.v[c], 0.5f, 2.f);
      break;
    case SourceOp::brightness:
      p[0] = uniform(r.v[0], 0.8f, 1.2f);
      p[1] = uniform(r.v[1], -30.f, 30.f);
      break;
    case SourceOp::sharpness: p[0] = uniform(r.v[0], 0.f, 2.f); break;
    case SourceOp::hue_saturation:
      p[0] = uniform(r.v[0], -50.f, 50.f);
      p[1] = uniform(r.v[1], -50.f, 50.f);
      break;
    case SourceOp::solarize:
      p[0] = uniform01(r.v[0]) < 0.5f ? 1.f : 0.f;
      p[1] = uniform(r.v[1], 32.f, 128.f);
      break;
    case SourceOp::posterize: p[0] = float(1 + uniform_int(r.v[0], 8)); break;
    case SourceOp::invert: break;
    case SourceOp::autocontrast: p[0] = uniform(r.v[0], 0.f, 20.f); break;
    case SourceOp::equalize: break;
    case SourceOp::rotate: {
      const double rad = double(uniform(r.v[0], -45.f, 45.f)) * 0.017453292519943295;
      p[0] = float(::cos(rad));
      p[1] = float(::sin(rad));
      break;
    }
  }
}

// ---- lookup-table ops: lut[v] for v in 0..255 of one channel ---------------------------------

// Builds the table of op for channel c. hist (256 counts of the channel) is read by autocontrast
// and equalise only; total = H * W. Gamma's pow runs in double so both devices round alike.
CAF_HD void source_op_lut(SourceOp op, const float* p, int c, const int32_t* hist, int64_t total,
                          uint8_t* lut) {
  for (int v = 0; v < 256; ++v) lut[v] = uint8_t(v);  // identity unless the op says otherwise
  switch (op) {
    case SourceOp::gamma:
      for (int v = 0; v < 256; ++v) lut[v] = to_byte(float(255.0 * ::pow(v / 255.0, double(p[c]))));
      break;
    case SourceOp::solarize:  // PIL: invert every value at or above the threshold
      if (p[0] != 0.f)
        for (int v = 0; v < 256; ++v)
          if (float(v) >= p[1]) lut[v] = uint8_t(255 - v);
      break;
    case SourceOp::posterize: {  // keep the top `bits` bits
      const int bits = int(p[0]);
      const int keep = (0xFF << (8 - bits)) & 0xFF;
      for (int v = 0; v < 256; ++v) lut[v] = uint8_t(v & keep);
      break;
    }
    case SourceOp::invert:
      for (int v = 0; v < 256; ++v) lut[v] = uint8_t(255 - v);
      break;
    case SourceOp::autocontrast: {
      // PIL: drop cutoff% of the pixels from each end of the histogram, then stretch the
      // remaining range [lo, hi] linearly onto [0, 255] (truncating); a flat channel is unchanged.
      int64_t cut_lo = int64_t(double(total) * double(p[0]) / 100.0), cut_hi = cut_lo;
      int lo = 0, hi = 255;
      for (; lo < 256; ++lo) {
        const int64_t left = hist[lo] - cut_lo;
        if (left > 0) break;
        cut_lo = -left;
      }
      for (; hi >= 0; --hi) {
        const int64_t left = hist[hi] - cut_hi;
        if (left > 0) break;
        cut_hi = -left;
      }
      if (hi <= lo) break;
      const float scale = 255.f / float(hi - lo), offset = -float(lo) * scale;
      for (int v = 0; v < 256; ++v) {
        const int t = int(float(v) * scale + offset);
        lut[v] = uint8_t(t < 0 ? 0 : (t > 255 ? 255 : t));
      }
      break;
    }
    case SourceOp::equalize: {
      // PIL: step = (pixels not in the last occupied bin) / 255; each value maps to the
      // (rounded) number of steps below it, so the cumulative histogram becomes a straight line.
      int last = 255;
      while (last > 0 && hist[last] == 0) --last;
      int occupied = 0;
      for (int v = 0; v < 256; ++v) occupied += hist[v] != 0;
      const int64_t step = (total - hist[last]) / 255;
      if (occupied <= 1 || step == 0) break;
      int64_t acc = step / 2;
      for (int v = 0; v < 256; ++v) {
        const int64_t t = acc / step;
        lut[v] = uint8_t(t > 255 ? 255 : t);
        acc += hist[v];
      }
      break;
    }
    default: break;
  }
}

// ---- pixel ops on one RGB pixel (values 0..255 as float) --------------------------------------

// Brightness on the luma only (imgaug changes Y of YCrCb and keeps the chroma): with Cr and Cb
// fixed, changing Y by d adds d to each of R, G and B.
CAF_HD void brightness_pixel(const float* p, float* rgb) {
  const float y = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
  const float d = y * (p[0] - 1.f) + p[1];
  for (int c = 0; c < 3; ++c) rgb[c] += d;
}

// Hue and saturation shifts in HSV. imgaug's hue scale is +-255 for a full turn each way, so a
// shift h turns the hue by h * 360 / 255 degrees; saturation moves by s on the 0..255 scale.
CAF_HD void hue_saturation_pixel(const float* p, float* rgb) {
  const float r = rgb[0], g = rgb[1], b = rgb[2];
  const float mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
  const float mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
  const float delta = mx - mn;
  float hue = 0.f;  // degrees
  if (delta > 0.f) {
    if (mx == r) hue = 60.f * (g - b) / delta;
    else if (mx == g) hue = 60.f * (b - r) / delta + 120.f;
    else hue = 60.f * (r - g) / delta + 240.f;
  }
  float sat = mx > 0.f ? 255.f * delta / mx : 0.f;
  hue += p[0] * (360.f / 255.f);
  while (hue < 0.f) hue += 360.f;
  while (hue >= 360.f) hue -= 360.f;
  sat += p[1];
  sat = sat < 0.f ? 0.f : (sat > 255.f ? 255.f : sat);
  const float v = mx, chroma = v * sat / 255.f;
  const float h6 = hue / 60.f;
  const int sector = int(h6);
  const float f = h6 - float(sector);
  const float x_up = chroma * f, x_down = chroma * (1.f - f), base = v - chroma;
  float o[3];
  switch (sector) {
    case 0: o[0] = chroma; o[1] = x_up; o[2] = 0.f; break;
    case 1: o[0] = x_down; o[1] = chroma; o[2] = 0.f; break;
    case 2: o[0] = 0.f; o[1] = chroma; o[2] = x_up; break;
    case 3: o[0] = 0.f; o[1] = x_down; o[2] = chroma; break;
    case 4: o[0] = x_up; o[1] = 0.f; o[2] = chroma; break;
    default: o[0] = chroma; o[1] = 0.f; o[2] = x_down; break;
  }
  for (int c = 0; c < 3; ++c) rgb[c] = o[c] + base;
}

// ---- one stage: op applied at pixel (i, j) of one sample ---------------------------------------

// Writes the 3 channels of output pixel (i, j). in: planar CHW bytes of the sample's texture;
// lut: 3 x 256 (used by lookup-table ops). Neighbourhood ops read the input around (i, j).
CAF_HD void source_op_pixel(SourceOp op, const float* p, const uint8_t* in, const uint8_t* lut,
                            int64_t H, int64_t W, int64_t i, int64_t j, uint8_t* out) {
  const int64_t plane = H * W, at = i * W + j;
  if (source_op_uses_lut(op)) {
    for (int c = 0; c < 3; ++c) out[c * plane + at] = lut[c * 256 + in[c * plane + at]];
    return;
  }
  float rgb[3];
  switch (op) {
    case SourceOp::brightness:
    case SourceOp::hue_saturation:
      for (int c = 0; c < 3; ++c) rgb[c] = float(in[c * plane + at]);
      if (op == SourceOp::brightness) brightness_pixel(p, rgb);
      else hue_saturation_pixel(p, rgb);
      break;
    case SourceOp::sharpness: {
      // PIL's ImageEnhance.Sharpness: blend with the image smoothed by [1 1 1; 1 5 1; 1 1 1] / 13,
      // border pixels left unsmoothed; the factor extrapolates past the original above 1.
      const bool border = i == 0 || j == 0 || i == H - 1 || j == W - 1;
      for (int c = 0; c < 3; ++c) {
        const uint8_t* ch = in + c * plane;
        const float x = float(ch[at]);
        float smooth = x;
        if (!border) {
          float s = 4.f * x;  // centre weight 5 = 4 here + 1 in the 3 x 3 sum
          for (int di = -1; di <= 1; ++di)
            for (int dj = -1; dj <= 1; ++dj) s += float(ch[at + di * W + dj]);
          smooth = s / 13.f;
        }
        rgb[c] = smooth + p[0] * (x - smooth);
      }
      break;
    }
    case SourceOp::rotate: {
      // Inverse-rotate the output position about the centre, bilinear, zeros outside.
      const float cy = 0.5f * float(H - 1), cx = 0.5f * float(W - 1);
      const float dy = float(i) - cy, dx = float(j) - cx;
      const float y = cy + p[0] * dy - p[1] * dx, x = cx + p[1] * dy + p[0] * dx;
      const float y0f = ::floorf(y), x0f = ::floorf(x);
      const int64_t y0 = int64_t(y0f), x0 = int64_t(x0f);
      const float wy = y - y0f, wx = x - x0f;
      rgb[0] = rgb[1] = rgb[2] = 0.f;
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b) {
          const int64_t yy = y0 + a, xx = x0 + b;
          const float w = (a ? wy : 1.f - wy) * (b ? wx : 1.f - wx);
          if (w == 0.f || yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
          for (int c = 0; c < 3; ++c) rgb[c] += w * float(in[c * plane + yy * W + xx]);
        }
      break;
    }
    default:
      for (int c = 0; c < 3; ++c) rgb[c] = float(in[c * plane + at]);
      break;
  }
  for (int c = 0; c < 3; ++c) out[c * plane + at] = to_byte(rgb[c]);
}

}  // namespace caf
