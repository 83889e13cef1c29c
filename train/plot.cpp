// train/plot.cpp: the figures of train/plot.h on a plain RGB canvas.
//
// Layout in pixels, top to bottom: title (font scale 2), axes box, tick labels, x label, legend
// rows; the y label runs bottom-to-top left of the tick labels. Everything drawn is clipped to
// the canvas, so long labels are cut rather than failing.
#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "kernels/error.h"

namespace caf {

namespace {

struct Glyph {
  char c;
  uint8_t rows[7];  // 5 bits per row, the leftmost pixel in bit 4
};

const Glyph kGlyphs[] = {
    {'A', {14, 17, 17, 31, 17, 17, 17}}, {'B', {30, 17, 17, 30, 17, 17, 30}},
    {'C', {14, 17, 16, 16, 16, 17, 14}}, {'D', {28, 18, 17, 17, 17, 18, 28}},
    {'E', {31, 16, 16, 30, 16, 16, 31}}, {'F', {31, 16, 16, 30, 16, 16, 16}},
    {'G', {14, 17, 16, 23, 17, 17, 15}}, {'H', {17, 17, 17, 31, 17, 17, 17}},
    {'I', {14, 4, 4, 4, 4, 4, 14}},      {'J', {7, 2, 2, 2, 2, 18, 12}},
    {'K', {17, 18, 20, 24, 20, 18, 17}}, {'L', {16, 16, 16, 16, 16, 16, 31}},
    {'M', {17, 27, 21, 21, 17, 17, 17}}, {'N', {17, 17, 25, 21, 19, 17, 17}},
    {'O', {14, 17, 17, 17, 17, 17, 14}}, {'P', {30, 17, 17, 30, 16, 16, 16}},
    {'Q', {14, 17, 17, 17, 21, 18, 13}}, {'R', {30, 17, 17, 30, 20, 18, 17}},
    {'S', {15, 16, 16, 14, 1, 1, 30}},   {'T', {31, 4, 4, 4, 4, 4, 4}},
    {'U', {17, 17, 17, 17, 17, 17, 14}}, {'V', {17, 17, 17, 17, 17, 10, 4}},
    {'W', {17, 17, 17, 21, 21, 21, 10}}, {'X', {17, 17, 10, 4, 10, 17, 17}},
    {'Y', {17, 17, 17, 10, 4, 4, 4}},    {'Z', {31, 1, 2, 4, 8, 16, 31}},
    {'0', {14, 17, 19, 21, 25, 17, 14}}, {'1', {4, 12, 4, 4, 4, 4, 14}},
    {'2', {14, 17, 1, 2, 4, 8, 31}},     {'3', {31, 2, 4, 2, 1, 17, 14}},
    {'4', {2, 6, 10, 18, 31, 2, 2}},     {'5', {31, 16, 30, 1, 1, 17, 14}},
    {'6', {6, 8, 16, 30, 17, 17, 14}},   {'7', {31, 1, 2, 4, 8, 8, 8}},
    {'8', {14, 17, 17, 14, 17, 17, 14}}, {'9', {14, 17, 17, 15, 1, 2, 12}},
    {'.', {0, 0, 0, 0, 0, 12, 12}},      {',', {0, 0, 0, 0, 12, 4, 8}},
    {':', {0, 12, 12, 0, 12, 12, 0}},    {'(', {2, 4, 8, 8, 8, 4, 2}},
    {')', {8, 4, 2, 2, 2, 4, 8}},        {'-', {0, 0, 0, 31, 0, 0, 0}},
    {'/', {0, 1, 2, 4, 8, 16, 0}},       {'%', {24, 25, 2, 4, 8, 19, 3}},
    {'=', {0, 0, 31, 0, 31, 0, 0}},      {'+', {0, 4, 4, 31, 4, 4, 0}},
    {'_', {0, 0, 0, 0, 0, 0, 31}},       {' ', {0, 0, 0, 0, 0, 0, 0}},
    {'?', {14, 17, 1, 2, 4, 0, 4}},
};

const Glyph& glyph(char c) {
  if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  for (const Glyph& g : kGlyphs)
    if (g.c == c) return g;
  return kGlyphs[sizeof kGlyphs / sizeof kGlyphs[0] - 1];
}

struct Rgb {
  uint8_t r, g, b;
};

const Rgb kBlack{0, 0, 0}, kGrid{225, 225, 225};
// matplotlib's tab10, the colours readers know from curve plots.
const Rgb kPalette[] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                        {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127}};

int text_width(const std::string& s, int scale) {
  return int(s.size()) * 6 * scale;
}

struct Canvas {
  Image im;
  Canvas(int h, int w) {
    im.height = h;
    im.width = w;
    im.channels = 3;
    im.pixels.assign(size_t(h) * size_t(w) * 3, 255);
  }
  void set(int y, int x, Rgb c) {
    if (y < 0 || y >= im.height || x < 0 || x >= im.width) return;
    im.at(y, x, 0) = c.r;
    im.at(y, x, 1) = c.g;
    im.at(y, x, 2) = c.b;
  }
  void rect(int y0, int x0, int y1, int x1, Rgb c) {  // filled, inclusive corners
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) set(y, x, c);
  }
  // Left-to-right text with its top-left corner at (y0, x0); vertical text runs bottom-to-top
  // from its bottom-left corner at (y0, x0).
  void text(const std::string& s, int y0, int x0, int scale, Rgb c, bool vertical = false) {
    for (size_t k = 0; k < s.size(); ++k) {
      const Glyph& g = glyph(s[k]);
      const int along = int(k) * 6 * scale;
      for (int r = 0; r < 7; ++r)
        for (int col = 0; col < 5; ++col) {
          if (!((g.rows[r] >> (4 - col)) & 1)) continue;
          const int u = along + col * scale, v = r * scale;
          if (vertical)
            rect(y0 - u - scale + 1, x0 + v, y0 - u, x0 + v + scale - 1, c);
          else
            rect(y0 + v, x0 + u, y0 + v + scale - 1, x0 + u + scale - 1, c);
        }
    }
  }
  // A 2-px line: 2x2 dots at unit steps along the longer axis, clipped to [ymin..ymax] rows
  // and [xmin..xmax] columns.
  void line(double ya, double xa, double yb, double xb, Rgb c, int ymin, int xmin, int ymax,
            int xmax) {
    const int n = int(std::ceil(std::max(std::fabs(yb - ya), std::fabs(xb - xa)))) + 1;
    for (int i = 0; i <= n; ++i) {
      const double t = double(i) / n;
      const int y = int(std::lround(ya + t * (yb - ya) - 0.5));
      const int x = int(std::lround(xa + t * (xb - xa) - 0.5));
      for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx)
          if (y + dy >= ymin && y + dy <= ymax && x + dx >= xmin && x + dx <= xmax)
            set(y + dy, x + dx, c);
    }
  }
};

}  // namespace

Image plot_curves(const std::vector<Curve>& curves, const std::vector<std::string>& labels,
                  const std::string& title, const std::string& xlabel, const std::string& ylabel,
                  int width, int height) {
  if (curves.size() != labels.size())
    throw ShapeError("plot_curves: " + std::to_string(curves.size()) + " curves but " +
                     std::to_string(labels.size()) + " labels");
  for (const Curve& c : curves)
    if (c.x.size() != c.y.size())
      throw ShapeError("plot_curves: a curve's x and y differ in length");
  const int left = 46, right = 14, top = 28;
  const int bottom = 34 + 11 * int(curves.size());
  if (width < left + right + 60 || height < top + bottom + 60)
    throw ConfigError("plot_curves: a " + std::to_string(width) + "x" + std::to_string(height) +
                      " figure is too small for the axes and a legend of " +
                      std::to_string(curves.size()) + " curves");
  Canvas cv(height, width);
  const int x0 = left, x1 = width - right, y0 = top, y1 = height - bottom;
  auto px = [&](double u) { return x0 + std::clamp(u, 0.0, 1.0) * (x1 - x0); };
  auto py = [&](double v) { return y1 - std::clamp(v, 0.0, 1.0) * (y1 - y0); };

  for (int i = 0; i <= 5; ++i) {
    const int gx = int(std::lround(px(0.2 * i))), gy = int(std::lround(py(0.2 * i)));
    cv.rect(y0, gx, y1, gx, kGrid);
    cv.rect(gy, x0, gy, x1, kGrid);
    char tick[8];
    std::snprintf(tick, sizeof tick, "%.1f", 0.2 * i);
    cv.text(tick, y1 + 5, gx - text_width(tick, 1) / 2, 1, kBlack);
    cv.text(tick, gy - 3, x0 - 5 - text_width(tick, 1), 1, kBlack);
  }
  cv.rect(y0, x0, y0, x1, kBlack);
  cv.rect(y1, x0, y1, x1, kBlack);
  cv.rect(y0, x0, y1, x0, kBlack);
  cv.rect(y0, x1, y1, x1, kBlack);

  const int title_scale = text_width(title, 2) <= width - 8 ? 2 : 1;
  cv.text(title, 6, (width - text_width(title, title_scale)) / 2, title_scale, kBlack);
  cv.text(xlabel, y1 + 17, (x0 + x1 - text_width(xlabel, 1)) / 2, 1, kBlack);
  cv.text(ylabel, (y0 + y1 + text_width(ylabel, 1)) / 2, 4, 1, kBlack, true);

  for (size_t k = 0; k < curves.size(); ++k) {
    const Rgb c = kPalette[k % (sizeof kPalette / sizeof kPalette[0])];
    const Curve& cu = curves[k];
    for (size_t i = 1; i < cu.x.size(); ++i)
      cv.line(py(cu.y[i - 1]), px(cu.x[i - 1]), py(cu.y[i]), px(cu.x[i]), c, y0, x0, y1, x1);
    if (cu.x.size() == 1)
      cv.rect(int(py(cu.y[0])) - 1, int(px(cu.x[0])) - 1, int(py(cu.y[0])), int(px(cu.x[0])), c);
    const int ly = y1 + 32 + 11 * int(k);
    cv.rect(ly + 3, x0, ly + 4, x0 + 16, c);
    cv.text(labels[k], ly, x0 + 22, 1, kBlack);
  }
  return std::move(cv.im);
}

Image heatmap_overlay(const uint8_t* rgb_chw, const float* map, int height, int width, float lo,
                      float hi, const uint8_t* mask) {
  if (!(lo < hi))
    throw ConfigError("heatmap_overlay: the colour range needs lo < hi, got " + std::to_string(lo) +
                      " .. " + std::to_string(hi));
  if (height <= 0 || width <= 0) throw ShapeError("heatmap_overlay: empty image");
  Image im;
  im.height = height;
  im.width = width;
  im.channels = 3;
  im.pixels.resize(size_t(height) * size_t(width) * 3);
  const size_t hw = size_t(height) * size_t(width);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const size_t p = size_t(y) * size_t(width) + size_t(x);
      const float m = map[p];
      const double v =
          std::isnan(m) ? 0.0 : std::clamp((double(m) - lo) / (double(hi) - lo), 0.0, 1.0);
      // jet: blue -> cyan -> yellow -> red, each channel a clamped tent.
      const double jet[3] = {std::clamp(1.5 - std::fabs(4 * v - 3), 0.0, 1.0),
                             std::clamp(1.5 - std::fabs(4 * v - 2), 0.0, 1.0),
                             std::clamp(1.5 - std::fabs(4 * v - 1), 0.0, 1.0)};
      bool edge = false;
      if (mask && mask[p])
        edge = (y > 0 && !mask[p - size_t(width)]) ||
               (y + 1 < height && !mask[p + size_t(width)]) || (x > 0 && !mask[p - 1]) ||
               (x + 1 < width && !mask[p + 1]);
      for (int c = 0; c < 3; ++c)
        im.at(y, x, c) =
            edge ? 255
                 : uint8_t(std::lround(0.5 * rgb_chw[size_t(c) * hw + p] + 0.5 * 255.0 * jet[c]));
    }
  return im;
}

}  // namespace caf
