// kernels/upsample.h: bilinear upsampling by 2 with align_corners=True (all of DRAEM's decoders).
//
//   upsample_bilinear2x_forward   y (N,C,2H,2W) from x (N,C,H,W)        (=)
//   upsample_bilinear2x_backward  gx += the transpose of the forward    (+=; accumulate = false: =)
//   upsample_bilinear2x_forward_bf16  the forward on bf16 activations: fp32 arithmetic on the
//       widened values, the result rounded to bf16 (=)
//   upsample_bilinear2x_backward_bf16  the backward of a bf16 gy (bf16 gradients, kernels/runtime.h):
//       the fp32 backward on the widened gy (exact), gx fp32 (+=; accumulate = false: =)
// The bf16 forward and the fp32 backward also run channels-last (last: x, y, gy, gx all N,H,W,C).
// With align_corners=True output row o reads input row o*(H-1)/(2H-1). The backward is a gather:
// each input pixel looks at the few output pixels whose source window can touch it and recomputes
// the forward's weights exactly, so it is deterministic and needs no atomics.
#pragma once

#include "kernels/cast.h"
#include "kernels/dispatch.h"

namespace caf {

// Source index pair and weight of output coordinate o along one axis (in -> 2*in samples).
template <class T>
struct LerpTap {
  int64_t i0, i1;
  T w1;  // weight of i1; i0 gets 1 - w1
};

template <class T>
CAF_HD LerpTap<T> upsample_tap(int64_t o, int64_t in) {
  int64_t out = 2 * in;
  T scale = out > 1 ? T(in - 1) / T(out - 1) : T(0);
  T src = scale * T(o);
  int64_t i0 = int64_t(src);
  if (i0 > in - 1) i0 = in - 1;
  int64_t i1 = i0 + 1 < in ? i0 + 1 : in - 1;
  return {i0, i1, src - T(i0)};
}

// An element index of an (N, C, h, w) tensor split into image n, channel ch and pixel p (row-major
// within the plane): planar (the index in (n, c, row, col) order) or channels-last (last; in
// (n, row, col, c) order). plane() is where that channel's plane starts in a tensor of the same
// layout with hw pixels per plane; its pixel q is then at plane() + q * stride().
struct PlaneAt {
  int64_t n, ch, p;
  bool last;
  CAF_HD int64_t plane(int64_t c, int64_t hw) const { return last ? n * hw * c + ch : (n * c + ch) * hw; }
  CAF_HD int64_t stride(int64_t c) const { return last ? c : 1; }
};
CAF_HD PlaneAt plane_at(int64_t k, int64_t c, int64_t hw, bool last) {
  if (!last) return {k / hw / c, (k / hw) % c, k % hw, false};
  return {k / (c * hw), k % c, (k / c) % hw, true};
}

// T: the arithmetic; S: the storage (T itself, or bf16 as uint16_t with T = float). last: x and y
// channels-last (plane_at).
template <class T, class S = T>
struct UpsampleForward {
  const S* x;
  S* y;
  Shape4 s;  // input shape
  bool last = false;
  CAF_HD void operator()(int64_t o) const {
    const int64_t wo = 2 * s.w;
    const PlaneAt at = plane_at(o, s.c, 4 * s.hw(), last);
    const int64_t oc = at.p % wo, orow = at.p / wo;
    LerpTap<T> ty = upsample_tap<T>(orow, s.h), tx = upsample_tap<T>(oc, s.w);
    const S* p = x + at.plane(s.c, s.hw());
    const int64_t st = at.stride(s.c);
    const T a = widen(p[(ty.i0 * s.w + tx.i0) * st]), b = widen(p[(ty.i0 * s.w + tx.i1) * st]);
    const T c = widen(p[(ty.i1 * s.w + tx.i0) * st]), d = widen(p[(ty.i1 * s.w + tx.i1) * st]);
    T top = (T(1) - tx.w1) * a + tx.w1 * b;
    T bot = (T(1) - tx.w1) * c + tx.w1 * d;
    y[o] = Narrow<S>::from((T(1) - ty.w1) * top + ty.w1 * bot);
  }
};

// Weight with which output coordinate o reads input coordinate i along one axis.
template <class T>
CAF_HD T upsample_weight(int64_t o, int64_t i, int64_t in) {
  LerpTap<T> t = upsample_tap<T>(o, in);
  T w = 0;
  if (t.i0 == i) w += T(1) - t.w1;
  if (t.i1 == i) w += t.w1;
  return w;
}

// The weights with which output coordinates 2i - 3 .. 2i + 3 read input coordinate i along one
// axis (every output that can read it: at most 5 do; 0 for the others and outside the output).
// Fixed slots rather than a list, so that once the loops below unroll the arrays live in
// registers (a list filled at a running index put them in local memory: a 288-byte stack frame).
template <class T>
struct AxisWindow {
  int64_t o0;  // the output coordinate of slot 0
  T w[7];
};

template <class T>
CAF_HD AxisWindow<T> upsample_window(int64_t i, int64_t in) {
  AxisWindow<T> t;
  t.o0 = 2 * i - 3;
  const int64_t out = 2 * in;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int q = 0; q < 7; ++q) {
    const int64_t o = t.o0 + q;
    t.w[q] = o >= 0 && o < out ? upsample_weight<T>(o, i, in) : T(0);
  }
  return t;
}

// Each input pixel gathers from the outputs that read it, in increasing output order, skipping
// zero weights (so the sums are the same, term for term, wherever they are computed). G: how gy is
// stored, T or bf16 (uint16_t, widened exactly as it is read).
template <class T, class G = T>
struct UpsampleBackward {
  const G* gy;
  T* gx;
  Shape4 s;  // input shape
  bool accumulate = true;  // false: write (write-first gradients)
  bool last = false;       // gy and gx channels-last (plane_at)
  CAF_HD void operator()(int64_t k) const {
    const PlaneAt at = plane_at(k, s.c, s.hw(), last);
    const int64_t c = at.p % s.w, r = at.p / s.w, st = at.stride(s.c);
    const int64_t wo = 2 * s.w;
    const AxisWindow<T> ty = upsample_window<T>(r, s.h), tx = upsample_window<T>(c, s.w);
    const G* g = gy + at.plane(s.c, 4 * s.hw());  // the output plane
    T acc = 0;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int a = 0; a < 7; ++a) {
      if (ty.w[a] == T(0)) continue;
      const int64_t base = (ty.o0 + a) * wo + tx.o0;  // only slots with a weight are read
      T row = 0;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
      for (int b = 0; b < 7; ++b)
        if (tx.w[b] != T(0)) row += tx.w[b] * value(g[(base + b) * st]);
      acc += ty.w[a] * row;
    }
    gx[k] = accumulate ? gx[k] + acc : acc;
  }
  CAF_HD static T value(T v) { return v; }
  CAF_HD static T value(uint16_t v) { return T(bf16_to_f32(v)); }
};

namespace cpu {
template <class T> void upsample_bilinear2x_forward(const T* x, Shape4 s, T* y);
template <class T> void upsample_bilinear2x_backward(const T* gy, Shape4 s, T* gx, bool accumulate, bool last);
void upsample_bilinear2x_forward_bf16(const uint16_t* x, Shape4 s, uint16_t* y, bool last);
void upsample_bilinear2x_backward_bf16(const uint16_t* gy, Shape4 s, float* gx, bool accumulate, bool last);
}  // namespace cpu
namespace cuda {
void upsample_bilinear2x_forward(const float* x, Shape4 s, float* y);
void upsample_bilinear2x_forward_bf16(const uint16_t* x, Shape4 s, uint16_t* y, bool last);
void upsample_bilinear2x_backward(const float* gy, Shape4 s, float* gx, bool accumulate, bool last);
void upsample_bilinear2x_backward_bf16(const uint16_t* gy, Shape4 s, float* gx, bool accumulate, bool last);
}  // namespace cuda

template <class T>
void upsample_bilinear2x_forward(Device d, const T* x, Shape4 s, T* y) {
  CAF_DISPATCH(T, d, upsample_bilinear2x_forward, x, s, y);
}
template <class T>
void upsample_bilinear2x_backward(Device d, const T* gy, Shape4 s, T* gx, bool accumulate = true, bool last = false) {
  CAF_DISPATCH(T, d, upsample_bilinear2x_backward, gy, s, gx, accumulate, last);
}
inline void upsample_bilinear2x_forward_bf16(Device d, const uint16_t* x, Shape4 s, uint16_t* y, bool last = false) {
  CAF_DISPATCH_PLAIN(d, upsample_bilinear2x_forward_bf16, x, s, y, last);
}
inline void upsample_bilinear2x_backward_bf16(Device d, const uint16_t* gy, Shape4 s, float* gx, bool accumulate,
                                              bool last) {
  CAF_DISPATCH_PLAIN(d, upsample_bilinear2x_backward_bf16, gy, s, gx, accumulate, last);
}

}  // namespace caf
