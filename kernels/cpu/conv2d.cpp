// kernels/cpu/conv2d.cpp: convolution as im2col + GEMM, one image at a time.
//
// col has C*k*k rows (one per filter tap) and H*W columns; then y[n] = W (K x Ckk) * col and the
// backward passes are the two transposed products plus col2im. The GEMM parallelises inside.
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cpu/gemm.h"

namespace caf::cpu {

namespace {

template <class T>
void im2col(const T* x, const Conv2dShape& s, T* col) {
  const int64_t C = s.x.c, H = s.x.h, W = s.x.w, k = s.k, half = k / 2;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < C * k * k; ++row) {
    int64_t c = row / (k * k), ky = (row / k) % k, kx = row % k;
    T* out = col + row * H * W;
    for (int64_t h = 0; h < H; ++h) {
      int64_t sy = h + ky - half;
      for (int64_t w = 0; w < W; ++w) {
        int64_t sx = w + kx - half;
        out[h * W + w] = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? x[(c * H + sy) * W + sx] : T(0);
      }
    }
  }
}

// gx += col2im(col): each channel gathers from its own k*k rows, so channels run in parallel.
template <class T>
void col2im_add(const T* col, const Conv2dShape& s, T* gx) {
  const int64_t C = s.x.c, H = s.x.h, W = s.x.w, k = s.k, half = k / 2;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < k * k; ++t) {
      int64_t ky = t / k, kx = t % k;
      const T* in = col + (c * k * k + t) * H * W;
      for (int64_t h = 0; h < H; ++h) {
        int64_t sy = h + ky - half;
        if (sy < 0 || sy >= H) continue;
        for (int64_t w = 0; w < W; ++w) {
          int64_t sx = w + kx - half;
          if (sx >= 0 && sx < W) gx[(c * H + sy) * W + sx] += in[h * W + w];
        }
      }
    }
}

}  // namespace

template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s) {
  const int64_t HW = s.x.hw(), Ckk = s.x.c * s.k * s.k, K = s.k_out;
  std::vector<T> col(Ckk * HW);
  for (int64_t n = 0; n < s.x.n; ++n) {
    im2col(x + n * s.x.c * HW, s, col.data());
    T* yn = y + n * K * HW;
    if (b) {
      for (int64_t o = 0; o < K; ++o)
        for (int64_t i = 0; i < HW; ++i) yn[o * HW + i] = b[o];
    }
    gemm<T>(false, false, K, HW, Ckk, T(1), w, Ckk, col.data(), HW, b ? T(1) : T(0), yn, HW);
  }
}

template <class T>
void conv2d_backward_data(const T* w, const T* gy, T* gx, const Conv2dShape& s) {
  const int64_t HW = s.x.hw(), Ckk = s.x.c * s.k * s.k, K = s.k_out;
  std::vector<T> col(Ckk * HW);
  for (int64_t n = 0; n < s.x.n; ++n) {
    gemm<T>(true, false, Ckk, HW, K, T(1), w, Ckk, gy + n * K * HW, HW, T(0), col.data(), HW);
    col2im_add(col.data(), s, gx + n * s.x.c * HW);
  }
}

template <class T>
void conv2d_backward_filter(const T* x, const T* gy, T* gw, const Conv2dShape& s) {
  const int64_t HW = s.x.hw(), Ckk = s.x.c * s.k * s.k, K = s.k_out;
  std::vector<T> col(Ckk * HW);
  for (int64_t n = 0; n < s.x.n; ++n) {
    im2col(x + n * s.x.c * HW, s, col.data());
    gemm<T>(false, true, K, Ckk, HW, T(1), gy + n * K * HW, HW, col.data(), HW, T(1), gw, Ckk);
  }
}

template <class T>
void conv2d_backward_bias(const T* gy, T* gb, const Conv2dShape& s) {
  const int64_t HW = s.x.hw(), K = s.k_out;
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < K; ++o) {
    acc_t<T> acc = 0;
    for (int64_t n = 0; n < s.x.n; ++n)
      for (int64_t i = 0; i < HW; ++i) acc += gy[(n * K + o) * HW + i];
    gb[o] += T(acc);
  }
}

#define CAF_INSTANTIATE(T)                                                               \
  template void conv2d_forward<T>(const T*, const T*, const T*, T*, const Conv2dShape&); \
  template void conv2d_backward_data<T>(const T*, const T*, T*, const Conv2dShape&);     \
  template void conv2d_backward_filter<T>(const T*, const T*, T*, const Conv2dShape&);   \
  template void conv2d_backward_bias<T>(const T*, T*, const Conv2dShape&);
CAF_INSTANTIATE(float)
CAF_INSTANTIATE(double)

}  // namespace caf::cpu
