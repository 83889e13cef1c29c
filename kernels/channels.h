// kernels/channels.h: concatenation and slicing along the channel axis (the U-Net skips).
//
// One primitive, channel_copy, moves `count` channels of every image from src (src_c channels,
// starting at src_c0) into dst (dst_c channels, starting at dst_c0); it writes (=) or
// accumulates (+=). Concat and slice, forward and backward, are four uses of it:
//   concat_channels_forward   y = [a, b]                     (=)
//   concat_channels_backward  ga += gy[:ca], gb += gy[ca:]   (+=; ga or gb may be null; with
//                             write_a / write_b: = for that one, write-first gradients)
//   slice_channels_forward    y = x[:, c0:c1]                (=)
//   slice_channels_backward   gx[:, c0:c1] += gy             (+=)
//   concat_channels_forward_bf16  y = [a, b] on bf16 activations (=)
//   channel_copy_widen        a bf16 src into a float dst, widened exactly (= or +=): the backward
//                             of a bf16 gy into a float gradient (bf16 gradients, kernels/runtime.h)
// ChannelCopyArgs::last: every tensor channels-last (concat of channels-last bf16 activations and
// its fp32 gradients).
#pragma once

#include <type_traits>

#include "kernels/cast.h"
#include "kernels/dispatch.h"

namespace caf {

struct ChannelCopyArgs {
  int64_t n, hw;              // images and pixels per channel
  int64_t src_c, src_c0;      // channels of src and first one read
  int64_t dst_c, dst_c0;      // channels of dst and first one written
  int64_t count;              // channels moved
  bool last = false;          // src and dst channels-last (N, H, W, C; bf16 activations)
};

// S: src's storage, T or bf16 (uint16_t) into a float T (widened exactly).
template <class T, class S = T>
struct ChannelCopy {
  const S* src;
  T* dst;
  ChannelCopyArgs a;
  bool accumulate;
  CAF_HD void operator()(int64_t i) const {  // i over n * count * hw, in the layout's order
    if (a.last) {
      const int64_t c = i % a.count, p = (i / a.count) % a.hw, n = i / (a.hw * a.count);
      const T v = value(src[(n * a.hw + p) * a.src_c + a.src_c0 + c]);
      T& d = dst[(n * a.hw + p) * a.dst_c + a.dst_c0 + c];
      d = accumulate ? d + v : v;
      return;
    }
    int64_t p = i % a.hw, c = (i / a.hw) % a.count, n = i / (a.hw * a.count);
    T v = value(src[(n * a.src_c + a.src_c0 + c) * a.hw + p]);
    T& d = dst[(n * a.dst_c + a.dst_c0 + c) * a.hw + p];
    d = accumulate ? d + v : v;
  }
  CAF_HD static T value(S v) {
    if constexpr (std::is_same_v<T, S>) return v;
    else return T(widen(v));
  }
};

namespace cpu {
template <class T> void channel_copy(const T* src, T* dst, ChannelCopyArgs a, bool accumulate);
void channel_copy_bf16(const uint16_t* src, uint16_t* dst, ChannelCopyArgs a);
void channel_copy_widen(const uint16_t* src, float* dst, ChannelCopyArgs a, bool accumulate);
}
namespace cuda {
void channel_copy(const float* src, float* dst, ChannelCopyArgs a, bool accumulate);
void channel_copy_bf16(const uint16_t* src, uint16_t* dst, ChannelCopyArgs a);
void channel_copy_widen(const uint16_t* src, float* dst, ChannelCopyArgs a, bool accumulate);
}

inline void channel_copy_bf16(Device d, const uint16_t* src, uint16_t* dst, ChannelCopyArgs a) {
  CAF_DISPATCH_PLAIN(d, channel_copy_bf16, src, dst, a);
}
inline void channel_copy_widen(Device d, const uint16_t* src, float* dst, ChannelCopyArgs a, bool accumulate) {
  CAF_DISPATCH_PLAIN(d, channel_copy_widen, src, dst, a, accumulate);
}
inline void concat_channels_forward_bf16(Device d, const uint16_t* a, int64_t ca, const uint16_t* b, int64_t cb,
                                         int64_t n, int64_t hw, uint16_t* y, bool last = false) {
  channel_copy_bf16(d, a, y, {n, hw, ca, 0, ca + cb, 0, ca, last});
  channel_copy_bf16(d, b, y, {n, hw, cb, 0, ca + cb, ca, cb, last});
}

template <class T>
void channel_copy(Device d, const T* src, T* dst, ChannelCopyArgs a, bool accumulate) {
  CAF_DISPATCH(T, d, channel_copy, src, dst, a, accumulate);
}

template <class T>
void concat_channels_forward(Device d, const T* a, int64_t ca, const T* b, int64_t cb, int64_t n,
                             int64_t hw, T* y) {
  channel_copy(d, a, y, {n, hw, ca, 0, ca + cb, 0, ca}, false);
  channel_copy(d, b, y, {n, hw, cb, 0, ca + cb, ca, cb}, false);
}
// The copy of a concatenation's gradient gy (ca + cb channels) into part 0 (ga) or 1 (gb).
inline ChannelCopyArgs concat_part(int part, int64_t ca, int64_t cb, int64_t n, int64_t hw, bool last) {
  return part == 0 ? ChannelCopyArgs{n, hw, ca + cb, 0, ca, 0, ca, last}
                   : ChannelCopyArgs{n, hw, ca + cb, ca, cb, 0, cb, last};
}
template <class T>
void concat_channels_backward(Device d, const T* gy, int64_t ca, int64_t cb, int64_t n, int64_t hw,
                              T* ga, T* gb, bool write_a = false, bool write_b = false, bool last = false) {
  if (ga) channel_copy(d, gy, ga, concat_part(0, ca, cb, n, hw, last), !write_a);
  if (gb) channel_copy(d, gy, gb, concat_part(1, ca, cb, n, hw, last), !write_b);
}
template <class T>
void slice_channels_forward(Device d, const T* x, Shape4 s, int64_t c0, int64_t c1, T* y) {
  channel_copy(d, x, y, {s.n, s.hw(), s.c, c0, c1 - c0, 0, c1 - c0}, false);
}
template <class T>
void slice_channels_backward(Device d, const T* gy, Shape4 s, int64_t c0, int64_t c1, T* gx) {
  channel_copy(d, gy, gx, {s.n, s.hw(), c1 - c0, 0, s.c, c0, c1 - c0}, true);
}

}  // namespace caf
