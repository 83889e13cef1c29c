// tests/test_util.h: helpers shared by the doctest suites.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cast.h"
#include "kernels/runtime.h"
#include "nn/networks.h"
#include "nn/ops.h"

// GPU tests call this first: on a machine without a usable GPU they pass with a message.
#define CAF_NEED_GPU()                                            \
  do {                                                            \
    if (!::caf::cuda_available()) {                               \
      MESSAGE("skipped: no usable GPU on this machine");          \
      return;                                                     \
    }                                                             \
  } while (0)

namespace caf::test {

inline bool all_finite(const std::vector<float>& v) {
  for (float e : v)
    if (!std::isfinite(e)) return false;
  return true;
}

// A float tensor rounded to bf16 (cast_to_bf16: to nearest even), in its layout.
inline Tensor round16(const Tensor& f) {
  Tensor h = Tensor::empty(f.shape(), DType::bf16, f.device());
  cast_to_bf16(f.device(), f.data<float>(), h.data<uint16_t>(), f.numel());
  return h;
}
// float(x16) + bias[c] (bias may be undefined; then any shape): what a bf16 activation with a
// pending bias means. A channels-last x16 gives the planar values.
inline Tensor widened(const Tensor& x16, const Tensor& bias = Tensor()) {
  Tensor f = Tensor::empty(x16.shape(), DType::f32, x16.device());
  const float* b = bias.defined() ? bias.data<float>() : nullptr;
  if (x16.channels_last()) {
    const Shape4 s = x16.shape4();
    cast_from_bf16_nhwc(x16.device(), x16.data<uint16_t>(), b, f.data<float>(), s.n, s.c, s.hw());
  } else if (b) {
    const Shape4 s = x16.shape4();
    cast_from_bf16(x16.device(), x16.data<uint16_t>(), b, s.hw(), s.c, f.data<float>(), f.numel());
  } else {
    cast_from_bf16(x16.device(), x16.data<uint16_t>(), nullptr, 1, 1, f.data<float>(), f.numel());
  }
  return f;
}

// The same float bits (so -0 and +0 differ, and NaN equals a NaN of the same bits).
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// Both networks at width 8 (R: 3 -> 3, S: 6 -> 2), initialised from seed and seed + 1, run forward
// in training mode on batch x 3 x 32 x 32 random images (seed + 2), S on the image and R's output:
// what tests compare across the arithmetic switches.
struct SmallNets {
  ReconstructiveNet r{3, 3, 8};
  DiscriminativeNet s{6, 2, 8};
  Tensor x, rec, logits;
  SmallNets(Device d, int64_t batch, uint64_t seed) {
    r.params().finalize(d, seed);
    s.params().finalize(d, seed + 1);
    x = Tensor::uniform({batch, 3, 32, 32}, seed + 2, 0.f, 1.f, d);
    rec = r.forward(x, true);
    logits = s.forward(concat_channels(x, rec), true);
  }
};

// Every process-wide arithmetic switch of kernels/runtime.h, restored when the scope ends however
// it ends; a test sets what it needs after constructing one.
struct RuntimeSwitches {
  Precision precision_ = precision();
  bool act_ = bf16_activations(), last_ = channels_last_convs(), fuse_ = fused_bn_relu(),
       recompute_ = recompute_activations(), write_first_ = write_first_gradients(),
       bf16_grads_ = bf16_gradients();
  RuntimeSwitches() = default;
  RuntimeSwitches(const RuntimeSwitches&) = delete;
  RuntimeSwitches& operator=(const RuntimeSwitches&) = delete;
  ~RuntimeSwitches() {
    set_precision(precision_);
    set_bf16_activations(act_);
    set_channels_last_convs(last_);
    set_fused_bn_relu(fuse_);
    set_recompute_activations(recompute_);
    set_write_first_gradients(write_first_);
    set_bf16_gradients(bf16_grads_);
  }
};

inline double nmse(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += double(a[i] - ref[i]) * double(a[i] - ref[i]);
    den += double(ref[i]) * double(ref[i]);
  }
  return den > 0 ? num / den : num;
}

}  // namespace caf::test
