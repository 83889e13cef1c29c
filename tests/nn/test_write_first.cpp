// Write-first gradients (kernels/runtime.h write_first_gradients(), nn/autograd.h fresh_gradient):
// with fresh buffers poisoned with NaN, every op that overwrites must write every element, and the
// gradients must equal zero-fill-and-add's. The gpu suite repeats it on the GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <functional>
#include <limits>

#include "kernels/batchnorm.h"
#include "kernels/cast.h"
#include "kernels/channels.h"
#include "kernels/conv2d.h"
#include "kernels/pool.h"
#include "kernels/runtime.h"
#include "kernels/upsample.h"
#include "nn/autograd.h"
#include "nn/networks.h"
#include "nn/ops.h"
#include "tests/test_util.h"

using namespace caf;

namespace {

// The switches for one scope (the others pinned to their defaults, whatever the environment says);
// fresh buffers NaN-poisoned while write-first is on.
struct WriteFirstScope : test::RuntimeSwitches {
  WriteFirstScope(bool write_first, Precision p, bool bf16_act, bool channels_last = false) {
    set_write_first_gradients(write_first);
    set_poison_fresh_gradients(write_first);
    set_precision(p);
    set_bf16_activations(bf16_act);
    set_channels_last_convs(channels_last);
    set_fused_bn_relu(true);
    set_recompute_activations(true);
  }
  ~WriteFirstScope() { set_poison_fresh_gradients(false); }
};

// One configuration of the arithmetic: precision, bf16 activations, channels-last convolutions.
struct Mode {
  Precision p;
  bool act, last;
};
const Mode kModes[] = {{Precision::fp32, false, false},
                       {Precision::bf16, false, false},
                       {Precision::bf16, true, false},
                       {Precision::bf16, true, true}};

std::vector<float> cat(std::vector<float> a, const std::vector<float>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Every overwriting op, in the situations that matter: a tensor with two consumers (max pooling
// and concatenation: the first to run writes, the second adds), max pooling of odd sizes (its
// uncovered last row and column must be written 0), upsampling, convolutions' input gradients,
// the fused batch norm + ReLU's; the gradients of the input and of every parameter.
std::vector<float> run_ops(Device d, bool write_first, const Mode& m) {
  WriteFirstScope scope(write_first, m.p, m.act, m.last);
  ParamStore store;
  ConvBnRelu a(store, "a.0", "a.1", 3, 8), b(store, "b.0", "b.1", 8, 8), c(store, "c.0", "c.1", 16, 8);
  Conv2d out(store, "out", 8, 2);
  store.finalize(d, 71);
  Tensor x = Tensor::uniform({2, 3, 10, 14}, 72, 0.f, 1.f, d).set_requires_grad(true);
  const Tensor s = a(store, x, true);                               // 10 x 14, two consumers
  const Tensor odd = b(store, maxpool2d(s), true);                  // 5 x 7
  const Tensor pooled = to_float32(maxpool2d(odd));                 // 2 x 3: last row, column uncovered
  const Tensor up = upsample_bilinear2x(maxpool2d(s));              // 10 x 14 again
  const Tensor y = out(store, c(store, concat_channels(up, s), true));
  const Tensor loss = add(mean(square(y)), mean(mul(pooled, pooled)));
  loss.backward();
  return cat(x.grad().to_vector(), store.grads_flat().to_vector());
}

// run(write_first) with write-first on (fresh buffers NaN-poisoned) against off: the same
// gradients, all finite. Returns how many fresh buffers the run with it on was handed.
int64_t check_against_zero_fill(const std::function<std::vector<float>(bool)>& run) {
  const std::vector<float> add = run(false);
  const int64_t before = fresh_gradients_given();
  const std::vector<float> write = run(true);
  CHECK(test::all_finite(write));
  CHECK(write == add);
  return fresh_gradients_given() - before;
}

void check_ops(Device d) {
  for (const Mode& m : kModes) {
    CAPTURE(precision_name(m.p));
    CAPTURE(m.act);
    CAPTURE(m.last);
    // Fresh: the inputs of out, c's convolution (the concatenation), the three batch norms, the
    // concatenation's up, the upsampling's, b's convolution's (a pooling), the odd pooling's (b's
    // output), and s once for its three consumers: 10. (The square, mul and to_float32 add.)
    // Channels-last activations add 1: out's input is c's channels-last output transposed to
    // planar (to_planar; out has 2 output channels, so it stays planar).
    CHECK(check_against_zero_fill([&](bool write_first) { return run_ops(d, write_first, m); }) ==
          (m.act && m.last ? 11 : 10));
  }
}

// Both networks, forward and backward, every parameter's gradient.
std::vector<float> run_networks(Device d, bool write_first, const Mode& m) {
  WriteFirstScope scope(write_first, m.p, m.act, m.last);
  const test::SmallNets n(d, 2, 81);
  add(mean(square(sub(n.rec, n.x))), mean(mul(n.logits, Tensor::randn(n.logits.shape(), 84, 0, 1, d)))).backward();
  return cat(n.r.params().grads_flat().to_vector(), n.s.params().grads_flat().to_vector());
}

void check_networks(Device d) {
  for (const Mode& m : {kModes[0], kModes[3]}) {
    CAPTURE(precision_name(m.p));
    CAPTURE(m.act);
    CAPTURE(m.last);
    // 123 of R's and S's activation gradients (CPU)
    CHECK(check_against_zero_fill([&](bool write_first) { return run_networks(d, write_first, m); }) >= 100);
  }
}

// One kernel's overwrite mode: into a NaN-filled buffer it must write every element, and the same
// values as its accumulate mode into zeros.
void check_writes_all(Device d, const Dims& shape, const std::function<void(float* g, bool write)>& run) {
  const Tensor poisoned = Tensor::full(shape, std::numeric_limits<float>::quiet_NaN(), d);
  const Tensor zeroed = Tensor::zeros(shape, DType::f32, d);
  run(poisoned.data<float>(), true);
  run(zeroed.data<float>(), false);
  const std::vector<float> w = poisoned.to_vector(), a = zeroed.to_vector();
  CHECK(test::all_finite(w));
  CHECK(w == a);
}

void check_kernels(Device d) {
  // Max pooling, every parity of H and W (odd sizes leave a row or a column outside every window).
  for (const Dims& xs : {Dims{2, 3, 6, 8}, Dims{2, 3, 7, 8}, Dims{2, 3, 6, 9}, Dims{2, 3, 7, 9}}) {
    CAPTURE(dims_str(xs));
    const Shape4 s{xs[0], xs[1], xs[2], xs[3]};
    const Tensor x = Tensor::randn(xs, 101, 0, 1, d), y = Tensor::empty({s.n, s.c, s.h / 2, s.w / 2}, DType::f32, d);
    const Tensor idx = Tensor::empty(y.shape(), DType::u8, d), gy = Tensor::randn(y.shape(), 102, 0, 1, d);
    maxpool2d_forward_index(d, x.data<float>(), s, y.data<float>(), idx.data<uint8_t>());
    check_writes_all(d, xs, [&](float* g, bool write) {
      maxpool2d_backward_index(d, idx.data<uint8_t>(), gy.data<float>(), s, g, write);
    });
  }
  {  // Upsampling.
    const Shape4 s{2, 3, 5, 4};
    const Tensor gy = Tensor::randn({2, 3, 10, 8}, 103, 0, 1, d);
    check_writes_all(d, {2, 3, 5, 4}, [&](float* g, bool write) {
      upsample_bilinear2x_backward<float>(d, gy.data<float>(), s, g, !write);
    });
  }
  {  // Concatenation: either part alone (the other null), each written.
    const Tensor gy = Tensor::randn({2, 5, 3, 4}, 104, 0, 1, d);
    check_writes_all(d, {2, 3, 3, 4}, [&](float* g, bool write) {
      concat_channels_backward<float>(d, gy.data<float>(), 3, 2, 2, 12, g, nullptr, write, false);
    });
    check_writes_all(d, {2, 2, 3, 4}, [&](float* g, bool write) {
      concat_channels_backward<float>(d, gy.data<float>(), 3, 2, 2, 12, nullptr, g, false, write);
    });
  }
  {  // The fused batch norm + ReLU's input gradient, fp32 and bf16 activations (H*W odd: scalar loads).
    for (const Dims& xs : {Dims{2, 3, 5, 7}, Dims{2, 4, 8, 8}}) {
      CAPTURE(dims_str(xs));
      const Shape4 s{xs[0], xs[1], xs[2], xs[3]};
      const Tensor x = Tensor::randn(xs, 105, 0, 2, d), gy = Tensor::randn(xs, 106, 0, 1, d);
      const Tensor gamma = Tensor::uniform({s.c}, 107, 0.5f, 1.5f, d), beta = Tensor::uniform({s.c}, 108, -0.5f, 0.5f, d);
      const Tensor y = Tensor::empty(xs, DType::f32, d), mean = Tensor::empty({s.c}, DType::f32, d),
                   invstd = Tensor::empty({s.c}, DType::f32, d);
      BatchNormArgs a{s, 1e-5, 0.1};
      batchnorm_relu_train_forward<float>(d, x.data<float>(), gamma.data<float>(), beta.data<float>(), y.data<float>(),
                                          mean.data<float>(), invstd.data<float>(), nullptr, nullptr, a);
      const Tensor x16 = Tensor::empty(xs, DType::bf16, d), pending_bias = Tensor::uniform({s.c}, 111, -1.f, 1.f, d);
      cast_to_bf16(d, x.data<float>(), x16.data<uint16_t>(), x.numel());
      check_writes_all(d, xs, [&](float* g, bool write) {
        BatchNormArgs aw = a;
        aw.overwrite_gx = write;
        batchnorm_relu_train_backward<float>(d, x.data<float>(), gamma.data<float>(), beta.data<float>(),
                                             gy.data<float>(), mean.data<float>(), invstd.data<float>(), g, nullptr,
                                             nullptr, aw);
      });
      check_writes_all(d, xs, [&](float* g, bool write) {
        BatchNormArgs aw = a;
        aw.overwrite_gx = write;
        batchnorm_relu_train_backward_bf16(d, x16.data<uint16_t>(), pending_bias.data<float>(), gamma.data<float>(),
                                           beta.data<float>(), gy.data<float>(), mean.data<float>(),
                                           invstd.data<float>(), g, nullptr, nullptr, aw);
      });
    }
  }
  {  // A convolution's input gradient (exact fp32: cuDNN with beta 0 against beta 1 over zeros).
    const Precision old = precision();
    set_precision(Precision::fp32);
    const Conv2dShape cs{{2, 5, 6, 7}, 4, 3};
    const Tensor w = Tensor::randn({4, 5, 3, 3}, 109, 0, 0.3f, d), gy = Tensor::randn({2, 4, 6, 7}, 110, 0, 1, d);
    check_writes_all(d, {2, 5, 6, 7}, [&](float* g, bool write) {
      conv2d_backward_data<float>(d, w.data<float>(), gy.data<float>(), g, cs, !write);
    });
    set_precision(old);
  }
}

}  // namespace

TEST_SUITE("nn") {
TEST_CASE("write-first gradients: each kernel's overwrite mode writes every element, as accumulating into zeros") {
  check_kernels(Device::cpu);
}

TEST_CASE("write-first gradients: every overwriting op writes every element; the same gradients") {
  check_ops(Device::cpu);
}

TEST_CASE("write-first gradients: both networks' gradients are zero-fill-and-add's, bit for bit") {
  check_networks(Device::cpu);
}

TEST_CASE("write-first gradients: only a result's first contribution is fresh, once per backward") {
  WriteFirstScope scope(true, Precision::fp32, false);
  // x feeds one upsampling twice through concatenation with itself: the two contributions share a
  // buffer, so neither may be fresh (the autograd refuses), and the gradient is twice one's.
  Tensor x = Tensor::uniform({1, 2, 3, 3}, 91, 0.f, 1.f).set_requires_grad(true);
  const Tensor h = add_scalar(x, 0.f);  // a result, so its gradient could be fresh
  sum(upsample_bilinear2x(concat_channels(h, h))).backward();
  const std::vector<float> g = x.grad().to_vector();
  Tensor x1 = Tensor::uniform({1, 2, 3, 3}, 91, 0.f, 1.f).set_requires_grad(true);
  sum(upsample_bilinear2x(add_scalar(x1, 0.f))).backward();
  const std::vector<float> g1 = x1.grad().to_vector();
  REQUIRE(g.size() == g1.size());
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == 2 * g1[i]);
  CHECK(!fresh_gradient(0));  // outside a backward: never
}
}

TEST_SUITE("gpu") {
TEST_CASE("gpu: write-first gradients write every element and equal zero-fill-and-add's") {
  CAF_NEED_GPU();
  check_kernels(Device::cuda);
  check_ops(Device::cuda);
  check_networks(Device::cuda);
}
}
