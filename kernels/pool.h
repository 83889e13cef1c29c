// kernels/pool.h: 2x2 max pooling (the encoders' downsampling) and k x k mean filtering with
// stride 1 and zero padding k/2 counted in the mean (DRAEM's 21x21 image-score filter).
//
//   maxpool2d_forward    y[n,c,i,j] = max of x[n,c,2i..2i+1,2j..2j+1]   (=; H, W floor-halved)
//   maxpool2d_backward   gx += gy routed to the first maximum in scan order (+=; reads x, y)
//   maxpool2d_forward_index / _backward_index: the same, keeping the winner's position (uint8);
//       the indexed backward can also write (=) the whole gx (write-first gradients)
//   maxpool2d_forward_index_bf16: the indexed forward on bf16 activations (idx may be null); the
//       winner is copied, so y is the bf16 of the fp32 forward on the widened input, bit for bit;
//       it and the indexed backward also run channels-last (last: pool_window below)
//   avg_pool2d_forward   y = (1/k^2) * sum of the k x k window, zeros outside  (=)
//   avg_pool2d_backward  gx += (1/k^2) * sum of gy over the same window       (+=)
// Backward passes write each input element from one thread only (no atomics): deterministic.
#pragma once

#include "kernels/cast.h"
#include "kernels/dispatch.h"
#include "kernels/error.h"

namespace caf {

template <class T>
struct MaxPoolForward {
  const T* x;
  T* y;
  Shape4 s;  // input shape
  CAF_HD void operator()(int64_t o) const {
    int64_t ho = s.h / 2, wo = s.w / 2;
    int64_t j = o % wo, i = (o / wo) % ho, nc = o / (wo * ho);
    const T* p = x + nc * s.hw() + 2 * i * s.w + 2 * j;
    T m = p[0];
    if (p[1] > m) m = p[1];
    if (p[s.w] > m) m = p[s.w];
    if (p[s.w + 1] > m) m = p[s.w + 1];
    y[o] = m;
  }
};

// One thread per output: its gradient goes to the first maximum of its own window. Windows do
// not overlap (stride 2), so no two threads touch the same input: no atomics, deterministic.
template <class T>
struct MaxPoolBackward {
  const T* x;
  const T* gy;
  T* gx;
  Shape4 s;  // input shape
  CAF_HD void operator()(int64_t o) const {
    int64_t ho = s.h / 2, wo = s.w / 2;
    int64_t j = o % wo, i = (o / wo) % ho, nc = o / (wo * ho);
    const int64_t base = nc * s.hw() + 2 * i * s.w + 2 * j;
    // first maximum in scan order, as PyTorch routes ties
    int64_t best = base;
    T m = x[base];
    if (x[base + 1] > m) { m = x[base + 1]; best = base + 1; }
    if (x[base + s.w] > m) { m = x[base + s.w]; best = base + s.w; }
    if (x[base + s.w + 1] > m) { best = base + s.w + 1; }
    gx[best] += gy[o];
  }
};

// Output o's 2x2 window in x: where it starts, the steps to the right and lower neighbours, and
// the window's row i and column j. Planar: o in (n, c, i, j) order; channels-last (last, bf16
// activations, TensorImpl::channels_last): x, y, idx, gy and gx all (N, H, W, C), o in (n, i, j, c)
// order.
struct PoolWindow {
  int64_t base, dw, dh, i, j;
};
CAF_HD PoolWindow pool_window(const Shape4& s, bool last, int64_t o) {
  const int64_t ho = s.h / 2, wo = s.w / 2;
  PoolWindow p;
  if (!last) {
    p.j = o % wo, p.i = (o / wo) % ho;
    p.base = (o / (wo * ho)) * s.hw() + 2 * p.i * s.w + 2 * p.j;
    p.dw = 1, p.dh = s.w;
  } else {
    const int64_t c = o % s.c;
    p.j = (o / s.c) % wo, p.i = (o / (s.c * wo)) % ho;
    p.base = ((o / (s.c * wo * ho) * s.h + 2 * p.i) * s.w + 2 * p.j) * s.c + c;
    p.dw = s.c, p.dh = s.w * s.c;
  }
  return p;
}

// The same forward keeping, per output, which of its window's four inputs won (0..3 in scan order,
// the backward's tie rule), so the backward needs no copy of x (bf16 mixed precision, nn/ops.cpp).
// S: the storage (float, or bf16 as uint16_t, compared widened); idx may be null.
template <class S = float>
struct MaxPoolForwardIndex {
  const S* x;
  S* y;
  uint8_t* idx;
  Shape4 s;
  bool last = false;  // channels-last (pool_window)
  CAF_HD void operator()(int64_t o) const {
    const PoolWindow w = pool_window(s, last, o);
    const S* p = x + w.base;
    // The winner's stored value travels with its widened value (no indexed array: registers only).
    S best = p[0];
    float m = widen(best);
    uint8_t k = 0;
    const auto visit = [&](S v, uint8_t q) {
      const float f = widen(v);
      if (f > m) { m = f; best = v; k = q; }
    };
    visit(p[w.dw], 1);
    visit(p[w.dh], 2);
    visit(p[w.dh + w.dw], 3);
    y[o] = best;
    if (idx) idx[o] = k;
  }
};
// overwrite (write-first gradients): the window's four gradients are written, gy to the winner
// and 0 to the others (an odd H or W's last row or column, outside every window, is written 0 by
// the thread of the window beside it). Gy, Gx: float, or bf16 (uint16_t: bf16 gradients) --
// a bf16 gy into a float gx is widened (exact), into a bf16 gx copied (overwrite only: bf16
// gradients are never added to), so every combination routes the fp32 path's values.
template <class Gy = float, class Gx = float>
struct MaxPoolBackwardIndex {
  static_assert(std::is_same_v<Gx, float> || std::is_same_v<Gy, uint16_t>,
                "a float gy into a bf16 gx would round it: not a routing");
  const uint8_t* idx;
  const Gy* gy;
  Gx* gx;
  Shape4 s;
  bool overwrite = false;
  bool last = false;  // channels-last (pool_window)
  CAF_HD void operator()(int64_t o) const {
    const PoolWindow w = pool_window(s, last, o);
    const int64_t k = idx[o];
    const int64_t win = w.base + (k & 1) * w.dw + (k >> 1) * w.dh;
    if (!overwrite) {  // never with a bf16 gx: maxpool2d_backward_index refuses it
      if constexpr (std::is_same_v<Gx, float>) gx[win] += widen(gy[o]);
      return;
    }
    // This window's four, plus the uncovered column right of the last window and the uncovered
    // row below the last row of windows (and their corner).
    const bool last_col = w.j == s.w / 2 - 1 && s.w % 2 == 1, last_row = w.i == s.h / 2 - 1 && s.h % 2 == 1;
    for (int64_t r = 0; r < (last_row ? 3 : 2); ++r)
      for (int64_t c = 0; c < (last_col ? 3 : 2); ++c) gx[w.base + r * w.dh + c * w.dw] = Gx(0);  // +0
    if constexpr (std::is_same_v<Gx, Gy>) gx[win] = gy[o];
    else gx[win] = widen(gy[o]);
  }
};

// Window sum over a k x k neighbourhood with zeros outside; the forward and the backward are the
// same gather because the window is symmetric.
template <class T>
struct BoxMean {
  const T* src;
  T* dst;
  Shape4 s;
  int64_t k;
  bool accumulate;
  CAF_HD void operator()(int64_t idx) const {
    int64_t c = idx % s.w, r = (idx / s.w) % s.h, nc = idx / s.hw();
    int64_t half = k / 2;
    const T* p = src + nc * s.hw();
    T acc = 0;
    int64_t r0 = r - half < 0 ? 0 : r - half, r1 = r + half >= s.h ? s.h - 1 : r + half;
    int64_t c0 = c - half < 0 ? 0 : c - half, c1 = c + half >= s.w ? s.w - 1 : c + half;
    for (int64_t y = r0; y <= r1; ++y)
      for (int64_t x = c0; x <= c1; ++x) acc += p[y * s.w + x];
    T v = acc / T(k * k);
    dst[idx] = accumulate ? dst[idx] + v : v;
  }
};

namespace cpu {
template <class T> void maxpool2d_forward(const T* x, Shape4 s, T* y);
void maxpool2d_forward_index(const float* x, Shape4 s, float* y, uint8_t* idx);
void maxpool2d_forward_index_bf16(const uint16_t* x, Shape4 s, uint16_t* y, uint8_t* idx, bool last);
void maxpool2d_backward_index(const uint8_t* idx, const float* gy, Shape4 s, float* gx, bool overwrite, bool last);
void maxpool2d_backward_index(const uint8_t* idx, const uint16_t* gy, Shape4 s, float* gx, bool overwrite, bool last);
void maxpool2d_backward_index(const uint8_t* idx, const uint16_t* gy, Shape4 s, uint16_t* gx, bool overwrite, bool last);
template <class T> void maxpool2d_backward(const T* x, const T* gy, Shape4 s, T* gx);
template <class T> void avg_pool2d_forward(const T* x, Shape4 s, int64_t k, T* y);
template <class T> void avg_pool2d_backward(const T* gy, Shape4 s, int64_t k, T* gx);
}  // namespace cpu
namespace cuda {
void maxpool2d_forward(const float* x, Shape4 s, float* y);
void maxpool2d_forward_index(const float* x, Shape4 s, float* y, uint8_t* idx);
void maxpool2d_forward_index_bf16(const uint16_t* x, Shape4 s, uint16_t* y, uint8_t* idx, bool last);
void maxpool2d_backward_index(const uint8_t* idx, const float* gy, Shape4 s, float* gx, bool overwrite, bool last);
void maxpool2d_backward_index(const uint8_t* idx, const uint16_t* gy, Shape4 s, float* gx, bool overwrite, bool last);
void maxpool2d_backward_index(const uint8_t* idx, const uint16_t* gy, Shape4 s, uint16_t* gx, bool overwrite, bool last);
void maxpool2d_backward(const float* x, const float* gy, Shape4 s, float* gx);
void avg_pool2d_forward(const float* x, Shape4 s, int64_t k, float* y);
void avg_pool2d_backward(const float* gy, Shape4 s, int64_t k, float* gx);
}  // namespace cuda

inline void maxpool2d_forward_index(Device d, const float* x, Shape4 s, float* y, uint8_t* idx) {
  CAF_DISPATCH_PLAIN(d, maxpool2d_forward_index, x, s, y, idx);
}
// last: channels-last x, y, idx (and gy, gx), pool_window.
inline void maxpool2d_forward_index_bf16(Device d, const uint16_t* x, Shape4 s, uint16_t* y, uint8_t* idx,
                                         bool last = false) {
  CAF_DISPATCH_PLAIN(d, maxpool2d_forward_index_bf16, x, s, y, idx, last);
}
inline void maxpool2d_backward_index(Device d, const uint8_t* idx, const float* gy, Shape4 s, float* gx,
                                     bool overwrite = false, bool last = false) {
  CAF_DISPATCH_PLAIN(d, maxpool2d_backward_index, idx, gy, s, gx, overwrite, last);
}
// bf16 gradients (kernels/runtime.h): a bf16 gy routed into a float gx (widened), or into a bf16
// gx (copied; overwrite only).
inline void maxpool2d_backward_index(Device d, const uint8_t* idx, const uint16_t* gy, Shape4 s, float* gx,
                                     bool overwrite, bool last) {
  CAF_DISPATCH_PLAIN(d, maxpool2d_backward_index, idx, gy, s, gx, overwrite, last);
}
inline void maxpool2d_backward_index(Device d, const uint8_t* idx, const uint16_t* gy, Shape4 s, uint16_t* gx,
                                     bool overwrite, bool last) {
  CAF_REQUIRE(overwrite, "maxpool2d_backward_index: a bf16 gx is written, never added to");
  CAF_DISPATCH_PLAIN(d, maxpool2d_backward_index, idx, gy, s, gx, overwrite, last);
}
template <class T>
void maxpool2d_forward(Device d, const T* x, Shape4 s, T* y) {
  CAF_DISPATCH(T, d, maxpool2d_forward, x, s, y);
}
template <class T>
void maxpool2d_backward(Device d, const T* x, const T* gy, Shape4 s, T* gx) {
  CAF_DISPATCH(T, d, maxpool2d_backward, x, gy, s, gx);
}
template <class T>
void avg_pool2d_forward(Device d, const T* x, Shape4 s, int64_t k, T* y) {
  CAF_DISPATCH(T, d, avg_pool2d_forward, x, s, k, y);
}
template <class T>
void avg_pool2d_backward(Device d, const T* gy, Shape4 s, int64_t k, T* gx) {
  CAF_DISPATCH(T, d, avg_pool2d_backward, gy, s, k, gx);
}

}  // namespace caf
