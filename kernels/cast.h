// kernels/cast.h: bfloat16 storage for mixed precision (Precision::bf16, kernels/runtime.h).
//
//   cast_to_bf16        y16 = bf16(x)                   round to nearest even, NaN stays NaN   (=)
//   cast_from_bf16      y = float(y16) + b[channel]     b may be null; exact widening           (=)
//   accumulate_bf16     g += float(g16)                                                      (+=)
// The same with a change of layout, for channels-last bf16 convolutions (Conv2dShape::nhwc): a
// batched transpose of [B][C][P] (NCHW: P = H*W; weights: B = K, P = k*k) and [B][P][C]:
//   cast_to_bf16_nhwc      y16[b][p][c] = bf16(x[b][c][p])                                (=)
//   cast_from_bf16_nhwc    y[b][c][p] = float(x16[b][p][c]) + bias[c]    bias may be null   (=)
//   accumulate_bf16_nhwc   g[b][c][p] += float(x16[b][p][c])                              (+=)
// Per element the same arithmetic as the plain casts, so results are the same bits, permuted.
// bf16 activations (bf16_activations(), kernels/runtime.h) are already bf16, so for them the layout
// change alone:
//   transpose_bf16_to_nhwc    y16[b][p][c] = x16[b][c][p]                                  (=)
//   transpose_bf16_from_nhwc  y16[b][c][p] = x16[b][p][c]                                  (=)
// and, for the fp32 gradients of channels-last activations (nn/ops.cpp to_planar, to_float32):
//   transpose_f32_to_nhwc     y[b][p][c] = x[b][c][p]          (=, or += with accumulate)
//   transpose_f32_from_nhwc   y[b][c][p] = x[b][p][c]          (=, or += with accumulate)
// bf16 is fp32's upper 16 bits (8 exponent bits, 7 mantissa bits), held as uint16_t. The rounding
// is __float2bfloat16_rn's (and PyTorch's), written once as CAF_HD code so the CPU reference and
// the GPU produce the same bits.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/dispatch.h"

namespace caf {

CAF_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}
CAF_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

CAF_HD uint16_t f32_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // NaN: keep it a (quiet) NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even (overflow rounds to infinity)
  return uint16_t(u >> 16);
}
CAF_HD float bf16_to_f32(uint16_t h) { return bits_float(uint32_t(h) << 16); }

// Storage-generic access for kernels that read and write either precision's activations with the
// same arithmetic: widen(v) is the value a stored element stands for (bf16 widened exactly, other
// types as they are); Narrow<S>::from(v) stores a computed value (bf16: rounded to nearest even).
template <class S>
CAF_HD S widen(S v) {
  return v;
}
CAF_HD float widen(uint16_t h) { return bf16_to_f32(h); }
template <class S>
struct Narrow {
  template <class T>
  CAF_HD static S from(T v) {
    return S(v);
  }
};
template <>
struct Narrow<uint16_t> {
  CAF_HD static uint16_t from(float v) { return f32_to_bf16(v); }
};

struct CastToBf16 {
  const float* x;
  uint16_t* y;
  CAF_HD void operator()(int64_t i) const { y[i] = f32_to_bf16(x[i]); }
};
struct CastFromBf16 {
  const uint16_t* x;
  const float* bias;  // per channel, or null
  int64_t hw, c;
  float* y;
  CAF_HD void operator()(int64_t i) const {
    const float v = bf16_to_f32(x[i]);
    y[i] = bias ? v + bias[(i / hw) % c] : v;
  }
};
struct AccumulateBf16 {
  const uint16_t* x;
  float* g;
  CAF_HD void operator()(int64_t i) const { g[i] += bf16_to_f32(x[i]); }
};

// Index maps of the layout change: element (b, c, p) at planar and at channels-last offsets.
struct BcpLayout {
  int64_t c, p;  // channels, positions per channel
  CAF_HD int64_t planar(int64_t b, int64_t ch, int64_t pos) const { return (b * c + ch) * p + pos; }
  CAF_HD int64_t last(int64_t b, int64_t ch, int64_t pos) const { return (b * p + pos) * c + ch; }
};
// One element of each op, given (b, c, p).
struct CastToBf16Nhwc {
  const float* x;
  uint16_t* y;
  BcpLayout l;
  CAF_HD void operator()(int64_t b, int64_t c, int64_t p) const { y[l.last(b, c, p)] = f32_to_bf16(x[l.planar(b, c, p)]); }
};
struct CastFromBf16Nhwc {
  const uint16_t* x;
  const float* bias;
  float* y;
  BcpLayout l;
  CAF_HD void operator()(int64_t b, int64_t c, int64_t p) const {
    const float v = bf16_to_f32(x[l.last(b, c, p)]);
    y[l.planar(b, c, p)] = bias ? v + bias[c] : v;
  }
};
struct AccumulateBf16Nhwc {
  const uint16_t* x;
  float* g;
  BcpLayout l;
  CAF_HD void operator()(int64_t b, int64_t c, int64_t p) const { g[l.planar(b, c, p)] += bf16_to_f32(x[l.last(b, c, p)]); }
};

struct TransposeBf16ToNhwc {
  const uint16_t* x;
  uint16_t* y;
  BcpLayout l;
  CAF_HD void operator()(int64_t b, int64_t c, int64_t p) const { y[l.last(b, c, p)] = x[l.planar(b, c, p)]; }
};
struct TransposeBf16FromNhwc {
  const uint16_t* x;
  uint16_t* y;
  BcpLayout l;
  CAF_HD void operator()(int64_t b, int64_t c, int64_t p) const { y[l.planar(b, c, p)] = x[l.last(b, c, p)]; }
};

// fp32 layout change, written or added.
struct TransposeF32 {
  const float* x;
  float* y;
  BcpLayout l;
  bool to_nhwc, accumulate;
  CAF_HD void operator()(int64_t b, int64_t c, int64_t p) const {
    const int64_t src = to_nhwc ? l.planar(b, c, p) : l.last(b, c, p), dst = to_nhwc ? l.last(b, c, p) : l.planar(b, c, p);
    y[dst] = accumulate ? y[dst] + x[src] : x[src];
  }
};

namespace cpu {
void transpose_f32_to_nhwc(const float* x, float* y, int64_t b, int64_t c, int64_t p, bool accumulate);
void transpose_f32_from_nhwc(const float* x, float* y, int64_t b, int64_t c, int64_t p, bool accumulate);
void transpose_bf16_to_nhwc(const uint16_t* x, uint16_t* y, int64_t b, int64_t c, int64_t p);
void transpose_bf16_from_nhwc(const uint16_t* x, uint16_t* y, int64_t b, int64_t c, int64_t p);
void cast_to_bf16_nhwc(const float* x, uint16_t* y, int64_t b, int64_t c, int64_t p);
void cast_from_bf16_nhwc(const uint16_t* x, const float* bias, float* y, int64_t b, int64_t c, int64_t p);
void accumulate_bf16_nhwc(const uint16_t* x, float* g, int64_t b, int64_t c, int64_t p);
void cast_to_bf16(const float* x, uint16_t* y, int64_t n);
void cast_from_bf16(const uint16_t* x, const float* bias, int64_t hw, int64_t c, float* y, int64_t n);
void accumulate_bf16(const uint16_t* x, float* g, int64_t n);
}  // namespace cpu
namespace cuda {
void transpose_f32_to_nhwc(const float* x, float* y, int64_t b, int64_t c, int64_t p, bool accumulate);
void transpose_f32_from_nhwc(const float* x, float* y, int64_t b, int64_t c, int64_t p, bool accumulate);
void transpose_bf16_to_nhwc(const uint16_t* x, uint16_t* y, int64_t b, int64_t c, int64_t p);
void transpose_bf16_from_nhwc(const uint16_t* x, uint16_t* y, int64_t b, int64_t c, int64_t p);
void cast_to_bf16_nhwc(const float* x, uint16_t* y, int64_t b, int64_t c, int64_t p);
void cast_from_bf16_nhwc(const uint16_t* x, const float* bias, float* y, int64_t b, int64_t c, int64_t p);
void accumulate_bf16_nhwc(const uint16_t* x, float* g, int64_t b, int64_t c, int64_t p);
void cast_to_bf16(const float* x, uint16_t* y, int64_t n);
void cast_from_bf16(const uint16_t* x, const float* bias, int64_t hw, int64_t c, float* y, int64_t n);
void accumulate_bf16(const uint16_t* x, float* g, int64_t n);
}  // namespace cuda


inline void cast_to_bf16(Device d, const float* x, uint16_t* y, int64_t n) {
  CAF_DISPATCH_PLAIN(d, cast_to_bf16, x, y, n);
}
// x: [N, C, hw] flattened (n elements); bias: C values or null.
inline void cast_from_bf16(Device d, const uint16_t* x, const float* bias, int64_t hw, int64_t c, float* y,
                           int64_t n) {
  CAF_DISPATCH_PLAIN(d, cast_from_bf16, x, bias, hw, c, y, n);
}
inline void accumulate_bf16(Device d, const uint16_t* x, float* g, int64_t n) {
  CAF_DISPATCH_PLAIN(d, accumulate_bf16, x, g, n);
}
inline void cast_to_bf16_nhwc(Device d, const float* x, uint16_t* y, int64_t b, int64_t c, int64_t p) {
  CAF_DISPATCH_PLAIN(d, cast_to_bf16_nhwc, x, y, b, c, p);
}
inline void cast_from_bf16_nhwc(Device d, const uint16_t* x, const float* bias, float* y, int64_t b, int64_t c,
                                int64_t p) {
  CAF_DISPATCH_PLAIN(d, cast_from_bf16_nhwc, x, bias, y, b, c, p);
}
inline void accumulate_bf16_nhwc(Device d, const uint16_t* x, float* g, int64_t b, int64_t c, int64_t p) {
  CAF_DISPATCH_PLAIN(d, accumulate_bf16_nhwc, x, g, b, c, p);
}
inline void transpose_bf16_to_nhwc(Device d, const uint16_t* x, uint16_t* y, int64_t b, int64_t c, int64_t p) {
  CAF_DISPATCH_PLAIN(d, transpose_bf16_to_nhwc, x, y, b, c, p);
}
inline void transpose_bf16_from_nhwc(Device d, const uint16_t* x, uint16_t* y, int64_t b, int64_t c, int64_t p) {
  CAF_DISPATCH_PLAIN(d, transpose_bf16_from_nhwc, x, y, b, c, p);
}
inline void transpose_f32_to_nhwc(Device d, const float* x, float* y, int64_t b, int64_t c, int64_t p,
                                  bool accumulate) {
  CAF_DISPATCH_PLAIN(d, transpose_f32_to_nhwc, x, y, b, c, p, accumulate);
}
inline void transpose_f32_from_nhwc(Device d, const float* x, float* y, int64_t b, int64_t c, int64_t p,
                                    bool accumulate) {
  CAF_DISPATCH_PLAIN(d, transpose_f32_from_nhwc, x, y, b, c, p, accumulate);
}

}  // namespace caf
