// kernels/gaussian.h: depthwise k x k Gaussian filter with zero padding k/2 (SSIM's window).
//
//   gaussian_blur_forward   y[n,c] = w * x[n,c], w = g g^T, g the normalised 1-D Gaussian  (=)
//   gaussian_blur_backward  gx[n,c] += w (flipped) * gy[n,c]                               (+=)
// Applied separably, a row pass then a column pass (2k taps per pixel instead of k^2): with zero
// padding this is the same linear map as the 2-D window; only the rounding order differs from a
// direct depthwise conv2d (relative differences ~1e-7).
#pragma once

#include "kernels/dispatch.h"

namespace caf {

inline constexpr int kMaxGaussianWindow = 31;

template <class T>
struct GaussianWindow {
  int k;
  T g[kMaxGaussianWindow];
};

// The normalised 1-D window exp(-(i - k/2)^2 / (2 sigma^2)) / sum, computed in double.
template <class T>
GaussianWindow<T> gaussian_window(int k, double sigma);

// One 1-D pass along rows (horizontal) or columns, reading src and writing (or adding to) dst.
// flip correlates with the mirrored window (the backward pass).
template <class T>
struct GaussianPass {
  const T* src;
  T* dst;
  Shape4 s;
  GaussianWindow<T> win;
  bool horizontal, flip, accumulate;
  CAF_HD void operator()(int64_t idx) const {
    int64_t c = idx % s.w, r = (idx / s.w) % s.h, nc = idx / s.hw();
    const int half = win.k / 2;
    const T* p = src + nc * s.hw();
    T acc = 0;
    for (int a = 0; a < win.k; ++a) {
      const int64_t off = flip ? half - a : a - half;
      const int64_t y = horizontal ? r : r + off, x = horizontal ? c + off : c;
      if (y < 0 || y >= s.h || x < 0 || x >= s.w) continue;
      acc += win.g[a] * p[y * s.w + x];
    }
    dst[idx] = accumulate ? dst[idx] + acc : acc;
  }
};

namespace cpu {
template <class T> void gaussian_blur_forward(const T* x, Shape4 s, int k, double sigma, T* y);
template <class T> void gaussian_blur_backward(const T* gy, Shape4 s, int k, double sigma, T* gx);
}  // namespace cpu
namespace cuda {
void gaussian_blur_forward(const float* x, Shape4 s, int k, double sigma, float* y);
void gaussian_blur_backward(const float* gy, Shape4 s, int k, double sigma, float* gx);
}  // namespace cuda

template <class T>
void gaussian_blur_forward(Device d, const T* x, Shape4 s, int k, double sigma, T* y) {
  CAF_DISPATCH(T, d, gaussian_blur_forward, x, s, k, sigma, y);
}
template <class T>
void gaussian_blur_backward(Device d, const T* gy, Shape4 s, int k, double sigma, T* gx) {
  CAF_DISPATCH(T, d, gaussian_blur_backward, gy, s, k, sigma, gx);
}

}  // namespace caf
