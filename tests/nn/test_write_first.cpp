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
#include "kernels/error.h"
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
  WriteFirstScope(bool write_first, Precision p, bool bf16_act, bool channels_last = false, bool bf16_grads = true) {
    set_write_first_gradients(write_first);
    set_bf16_gradients(bf16_grads);
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
  bool grads16 = true;  // bf16 gradients (their default), where bf16 activations allow them
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
  WriteFirstScope scope(write_first, m.p, m.act, m.last, m.grads16);
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
  WriteFirstScope scope(write_first, m.p, m.act, m.last, m.grads16);
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

// bf16 gradients (kernels/runtime.h bf16_gradients()), their kernels: the fused batch norm's
// backward with a bf16 gy is its backward on the widened gy (exact), with a bf16 gx its fp32 gx
// rounded, every element of a NaN-filled bf16 gx written, the parameter gradients unchanged; a
// convolution's bias gradient from a bf16 gy is the one from the widened gy. Planar and
// channels-last, vector and scalar paths (C % 4, H*W % 4).
void check_bf16_gradient_kernels(Device d) {
  // A concatenation's backward of a bf16 gy into a float part: the float copy of the widened gy,
  // written or added (channel_copy_widen), either layout.
  for (bool last : {false, true})
    for (bool write : {true, false}) {
      CAPTURE(last);
      CAPTURE(write);
      const Tensor gy16 = test::round16(Tensor::randn({2, 5, 3, 4}, 171, 0, 1, d)), gy = test::widened(gy16);
      const Tensor start = Tensor::randn({2, 2, 3, 4}, 172, 0, 1, d);
      const float nan = std::numeric_limits<float>::quiet_NaN();
      const Tensor a = write ? Tensor::full({2, 2, 3, 4}, nan, d) : start.clone();
      const Tensor b = write ? Tensor::full({2, 2, 3, 4}, nan, d) : start.clone();
      const ChannelCopyArgs part{2, 12, 5, 3, 2, 0, 2, last};  // gy's channels 3 and 4
      channel_copy(d, gy.data<float>(), a.data<float>(), part, !write);
      channel_copy_widen(d, gy16.data<uint16_t>(), b.data<float>(), part, !write);
      CHECK(test::all_finite(b.to_vector()));
      CHECK(test::same_bits(b.to_vector(), a.to_vector()));
    }
  // Max pooling's indexed backward of a bf16 gy: into a bf16 gx (written, every element, odd sizes
  // included) and into a float gx (written or added), the float backward's values.
  for (const Dims& xs : {Dims{2, 3, 6, 8}, Dims{2, 3, 7, 9}})
    for (bool last : {false, true}) {
      CAPTURE(dims_str(xs));
      CAPTURE(last);
      const Shape4 s{xs[0], xs[1], xs[2], xs[3]};
      const Dims ys{s.n, s.c, s.h / 2, s.w / 2};
      const Tensor x16 = test::round16(Tensor::randn(xs, 128, 0, 1, d)), y16 = Tensor::empty(ys, DType::bf16, d);
      const Tensor idx = Tensor::empty(ys, DType::u8, d);
      maxpool2d_forward_index_bf16(d, x16.data<uint16_t>(), s, y16.data<uint16_t>(), idx.data<uint8_t>(), last);
      const Tensor gy16 = test::round16(Tensor::randn(ys, 129, 0, 1, d)), gy = test::widened(gy16);
      const float nan = std::numeric_limits<float>::quiet_NaN();
      const Tensor ref = Tensor::full(xs, nan, d), g16 = test::round16(Tensor::full(xs, nan, d));
      maxpool2d_backward_index(d, idx.data<uint8_t>(), gy.data<float>(), s, ref.data<float>(), true, last);
      maxpool2d_backward_index(d, idx.data<uint8_t>(), gy16.data<uint16_t>(), s, g16.data<uint16_t>(), true, last);
      CHECK(test::all_finite(test::widened(g16).to_vector()));
      CHECK(test::widened(g16).to_vector() == ref.to_vector());
      for (bool write : {true, false}) {
        const Tensor start = Tensor::randn(xs, 130, 0, 1, d);
        const Tensor a = write ? Tensor::full(xs, nan, d) : start.clone(), b = write ? Tensor::full(xs, nan, d) : start.clone();
        maxpool2d_backward_index(d, idx.data<uint8_t>(), gy.data<float>(), s, a.data<float>(), write, last);
        maxpool2d_backward_index(d, idx.data<uint8_t>(), gy16.data<uint16_t>(), s, b.data<float>(), write, last);
        CHECK(test::all_finite(b.to_vector()));
        CHECK(b.to_vector() == a.to_vector());
      }
      CHECK_THROWS_AS(maxpool2d_backward_index(d, idx.data<uint8_t>(), gy16.data<uint16_t>(), s, g16.data<uint16_t>(),
                                               false, last),
                      Error);
    }
  // Upsampling's backward of a bf16 gy: the fp32 backward of the widened gy, written or added.
  for (bool last : {false, true})
    for (bool write : {true, false}) {
      CAPTURE(last);
      CAPTURE(write);
      const Shape4 s{2, 3, 5, 4};
      const Tensor gy16 = test::round16(Tensor::randn({2, 3, 10, 8}, 126, 0, 1, d)), gy = test::widened(gy16);
      const Tensor start = Tensor::randn({2, 3, 5, 4}, 127, 0, 1, d);
      const Tensor g16 = write ? Tensor::full({2, 3, 5, 4}, std::numeric_limits<float>::quiet_NaN(), d) : start.clone();
      const Tensor g32 = write ? Tensor::full({2, 3, 5, 4}, std::numeric_limits<float>::quiet_NaN(), d) : start.clone();
      upsample_bilinear2x_backward_bf16(d, gy16.data<uint16_t>(), s, g16.data<float>(), !write, last);
      upsample_bilinear2x_backward<float>(d, gy.data<float>(), s, g32.data<float>(), !write, last);
      CHECK(test::all_finite(g16.to_vector()));
      CHECK(g16.to_vector() == g32.to_vector());
    }
  for (const Dims& xs : {Dims{2, 3, 5, 7}, Dims{2, 8, 4, 4}, Dims{3, 6, 3, 5}, Dims{2, 40, 9, 8}})
    for (bool nhwc : {false, true}) {
      CAPTURE(dims_str(xs));
      CAPTURE(nhwc);
      const Shape4 s{xs[0], xs[1], xs[2], xs[3]};
      const Tensor x16 = test::round16(Tensor::randn(xs, 121, 0, 2, d)), bias = Tensor::uniform({s.c}, 122, -1.f, 1.f, d);
      const Tensor gamma = Tensor::uniform({s.c}, 123, 0.5f, 1.5f, d), beta = Tensor::uniform({s.c}, 124, -0.5f, 0.5f, d);
      const Tensor y16 = Tensor::empty(xs, DType::bf16, d), mean = Tensor::empty({s.c}, DType::f32, d),
                   invstd = Tensor::empty({s.c}, DType::f32, d);
      BatchNormArgs a{s, 1e-5, 0.1};
      a.nhwc = nhwc;
      batchnorm_relu_train_forward_bf16(d, x16.data<uint16_t>(), bias.data<float>(), gamma.data<float>(),
                                        beta.data<float>(), y16.data<uint16_t>(), mean.data<float>(),
                                        invstd.data<float>(), nullptr, nullptr, a);
      const Tensor gy16 = test::round16(Tensor::randn(xs, 125, 0, 1, d)), gy = test::widened(gy16);
      // gx (float or bf16, NaN-filled) and the parameter gradients (accumulated into zeros).
      struct Out {
        std::vector<float> gx, gg, gb;
      };
      const auto run = [&](bool gy_bf16, bool gx_bf16) {
        const Tensor nan = Tensor::full(xs, std::numeric_limits<float>::quiet_NaN(), d);
        const Tensor gx = gx_bf16 ? test::round16(nan) : nan;
        const Tensor gg = Tensor::zeros({s.c}, DType::f32, d), gb = Tensor::zeros({s.c}, DType::f32, d);
        BatchNormArgs ab = a;
        ab.overwrite_gx = true;
        ab.gy_bf16 = gy_bf16;
        ab.gx_bf16 = gx_bf16;
        batchnorm_relu_train_backward_bf16(
            d, x16.data<uint16_t>(), bias.data<float>(), gamma.data<float>(), beta.data<float>(),
            gy_bf16 ? static_cast<const void*>(gy16.data<uint16_t>()) : static_cast<const void*>(gy.data<float>()),
            mean.data<float>(), invstd.data<float>(),
            gx_bf16 ? static_cast<void*>(gx.data<uint16_t>()) : static_cast<void*>(gx.data<float>()), gg.data<float>(),
            gb.data<float>(), ab);
        return Out{(gx_bf16 ? test::widened(gx) : gx).to_vector(), gg.to_vector(), gb.to_vector()};
      };
      const Out ref = run(false, false);
      REQUIRE(test::all_finite(ref.gx));
      const std::vector<float> ref_rounded =
          test::widened(test::round16(Tensor::from_vector(xs, ref.gx, d))).to_vector();
      for (const auto& mode : {std::pair{true, false}, {false, true}, {true, true}}) {
        const bool gy_bf16 = mode.first, gx_bf16 = mode.second;
        CAPTURE(gy_bf16);
        CAPTURE(gx_bf16);
        const Out r = run(gy_bf16, gx_bf16);
        CHECK(test::all_finite(r.gx));
        CHECK(r.gx == (gx_bf16 ? ref_rounded : ref.gx));
        CHECK(r.gg == ref.gg);
        CHECK(r.gb == ref.gb);
      }
      // A bf16 gx is only ever written: accumulating into one is refused.
      BatchNormArgs acc = a;
      acc.gx_bf16 = true;
      const Tensor g16 = Tensor::empty(xs, DType::bf16, d);
      CHECK_THROWS_AS(batchnorm_relu_train_backward_bf16(d, x16.data<uint16_t>(), bias.data<float>(),
                                                         gamma.data<float>(), beta.data<float>(), gy.data<float>(),
                                                         mean.data<float>(), invstd.data<float>(),
                                                         g16.data<uint16_t>(), nullptr, nullptr, acc),
                      Error);
      // The bias gradient of a convolution with this output (s: the output's shape).
      Conv2dShape cs{{s.n, 5, s.h, s.w}, s.c, 3};
      cs.nhwc = nhwc;
      const Tensor gb16 = Tensor::full({s.c}, 0.25f, d), gb32 = Tensor::full({s.c}, 0.25f, d);
      conv2d_backward_bias_bf16(d, gy16.data<uint16_t>(), gb16.data<float>(), cs);
      {
        const Precision old = precision();
        set_precision(Precision::fp32);  // cuDNN's fp32 sum for the planar reference
        conv2d_backward_bias<float>(d, gy.data<float>(), gb32.data<float>(), cs);
        set_precision(old);
      }
      if (d == Device::cpu || nhwc) {
        CHECK(gb16.to_vector() == gb32.to_vector());  // the same sums in the same order
      } else {  // caf's planar sums against cuDNN's: the same values summed in another order
        const std::vector<float> u = gb16.to_vector(), v = gb32.to_vector();
        for (size_t i = 0; i < u.size(); ++i) CHECK(u[i] == doctest::Approx(v[i]).epsilon(1e-5).scale(double(s.n * s.hw())));
      }
    }
}

// bf16 gradients against fp32 gradient buffers (write-first on, fresh buffers NaN-poisoned in
// both): the same gradients, bit for bit. Returns how many bf16 buffers the run with them got.
int64_t check_against_fp32_gradients(const std::function<std::vector<float>(bool)>& run) {
  const std::vector<float> f32 = run(false);
  const int64_t before = bf16_gradients_given();
  const std::vector<float> b16 = run(true);
  CHECK(test::all_finite(b16));
  CHECK(test::same_bits(b16, f32));
  return bf16_gradients_given() - before;
}
// conv2d_prebias -> batchnorm_relu2d called directly, every switch combination of precision bf16:
// a channels-last convolution's raw output made planar (channels-last convolutions without bf16
// activations) must not take a bf16 gradient in the convolution's layout (a second reader's
// find: its weight and input gradients came out wrong). Gradients of x, w, b, gamma, beta.
std::vector<float> run_prebias(Device d, bool act, bool last, bool grads16) {
  WriteFirstScope scope(true, Precision::bf16, act, last, grads16);
  Tensor x = Tensor::randn({2, 8, 6, 6}, 131, 0, 1, d).set_requires_grad(true);
  Tensor w = Tensor::randn({8, 8, 3, 3}, 132, 0, 0.3f, d).set_requires_grad(true);
  Tensor b = Tensor::uniform({8}, 133, -0.5f, 0.5f, d).set_requires_grad(true);
  Tensor gamma = Tensor::uniform({8}, 134, 0.5f, 1.5f, d).set_requires_grad(true);
  Tensor beta = Tensor::uniform({8}, 135, -0.5f, 0.5f, d).set_requires_grad(true);
  BatchNormState st{Tensor::zeros({8}, DType::f32, d), Tensor::full({8}, 1.f, d)};
  const Tensor z = batchnorm_relu2d(conv2d_prebias(x, w, b), gamma, beta, st, b);
  sum(mul(to_float32(z), Tensor::randn(z.shape(), 136, 0, 1, d))).backward();
  std::vector<float> g = x.grad().to_vector();
  for (const Tensor* t : {&w, &b, &gamma, &beta}) g = cat(g, t->grad().to_vector());
  return g;
}

// Every path a bf16 gradient can take between the ops of a ConvBnRelu chain, the image having 8
// channels so that every convolution can run channels-last: a -> pooling -> b -> upsampling -> c
// -> out (fp32 output), each activation with one consumer.
std::vector<float> run_paths(Device d, bool last, bool grads16) {
  WriteFirstScope scope(true, Precision::bf16, true, last, grads16);
  ParamStore store;
  ConvBnRelu a(store, "a.0", "a.1", 8, 8), b(store, "b.0", "b.1", 8, 8), c(store, "c.0", "c.1", 8, 8);
  Conv2d out(store, "out", 8, 8);
  store.finalize(d, 141);
  Tensor x = Tensor::uniform({2, 8, 8, 12}, 142, 0.f, 1.f, d).set_requires_grad(true);
  const Tensor y = out(store, c(store, upsample_bilinear2x(b(store, maxpool2d(a(store, x, true)), true)), true));
  mean(mul(y, Tensor::randn(y.shape(), 143, 0, 1, d))).backward();
  return cat(x.grad().to_vector(), store.grads_flat().to_vector());
}

// A batch norm reading what is not a convolution's raw output (a pooling's, an upsampling's,
// another batch norm's) must not hand it its rounded gradient: those ops use their gradient
// exactly (a second reader's find; 364-449 of 840 gradients differed).
std::vector<float> run_bn_after(Device d, int mid, bool last, bool grads16) {
  WriteFirstScope scope(true, Precision::bf16, true, last, grads16);
  ParamStore store;
  ConvBnRelu a(store, "a.0", "a.1", 8, 8);
  BatchNorm2d bn(store, "bn", 8);
  store.finalize(d, 151);
  Tensor x = Tensor::uniform({2, 8, 8, 8}, 152, 0.f, 1.f, d).set_requires_grad(true);
  Tensor h = a(store, x, true);
  h = mid == 0 ? maxpool2d(h) : mid == 1 ? upsample_bilinear2x(h) : h;
  const Tensor z = bn.with_relu(store, h, true);
  sum(mul(to_float32(z), Tensor::randn(z.shape(), 153, 0, 1, d))).backward();
  return cat(x.grad().to_vector(), store.grads_flat().to_vector());
}

// to_planar of a channels-last leaf read by a planar convolution (2 output channels): the
// convolution's bf16 input gradient reaches to_planar, which adds it, widened and transposed,
// into the leaf's float gradient (leaves never get fresh or bf16 buffers).
std::vector<float> run_to_planar_leaf(Device d, bool grads16) {
  WriteFirstScope scope(true, Precision::bf16, true, true, grads16);
  const Tensor planar = test::round16(Tensor::randn({2, 8, 6, 5}, 161, 0, 1, d));
  Tensor x = Tensor::empty(planar.shape(), DType::bf16, d);
  transpose_bf16_to_nhwc(d, planar.data<uint16_t>(), x.data<uint16_t>(), 2, 8, 30);
  x.set_channels_last(true).set_requires_grad(true);
  const Tensor w = Tensor::randn({2, 8, 3, 3}, 162, 0, 0.3f, d), b = Tensor::zeros({2}, DType::f32, d);
  const Tensor y = conv2d(to_planar(x), w, b);
  sum(mul(y, Tensor::randn(y.shape(), 163, 0, 1, d))).backward();
  return x.grad().to_vector();
}

// The fallbacks of the ops that move values (a third reader's cases), channels-last activations:
//   0: a channels-last h read by two planar 2-channel convolutions: two to_planar nodes, so h's
//      gradient is float, written by the first and added to by the second (each widening);
//   1: concat of two single-consumer blocks into a block: both parts copied bf16;
//   2: concat(h, h): one buffer for both parts, widened and added;
//   3: concat of a channels-last and a planar block: both made planar, read by a channels-last
//      convolution that transposes them, so the concatenation and to_planar get float gradients.
std::vector<float> run_moves(Device d, int variant, bool grads16) {
  WriteFirstScope scope(true, Precision::bf16, true, true, grads16);
  ParamStore store;
  ConvBnRelu a(store, "a.0", "a.1", 8, 8), b(store, "b.0", "b.1", 8, 8), p(store, "p.0", "p.1", 3, 8),
      c(store, "c.0", "c.1", 16, 8);
  Conv2d o1(store, "o1", 8, 2), o2(store, "o2", 8, 2);
  store.finalize(d, 181);
  const Tensor x = Tensor::uniform({2, 8, 6, 8}, 182, 0.f, 1.f, d), x3 = Tensor::uniform({2, 3, 6, 8}, 183, 0.f, 1.f, d);
  const Tensor h = a(store, x, true);
  Tensor y;
  if (variant == 0) y = add(o1(store, h), o2(store, h));
  else if (variant == 1) y = to_float32(c(store, concat_channels(h, b(store, x, true)), true));
  else if (variant == 2) y = to_float32(c(store, concat_channels(h, h), true));
  else y = to_float32(c(store, concat_channels(h, p(store, x3, true)), true));
  sum(mul(y, Tensor::randn(y.shape(), 184, 0, 1, d))).backward();
  return store.grads_flat().to_vector();
}

void check_bf16_gradients(Device d) {
  CHECK(check_against_fp32_gradients([&](bool on) { return run_to_planar_leaf(d, on); }) == 1);
  for (int variant : {0, 1, 2, 3}) {
    CAPTURE(variant);
    const int64_t n = check_against_fp32_gradients([&](bool on) { return run_moves(d, variant, on); });
    // Each block's batch norm into its raw output (0: a; 1: a, b, c; 2: a, c; 3: a, p, c); the two
    // convolutions' into the two to_planar nodes (0: 2); c's convolution's into the concatenation
    // and the concatenation's into a's and b's batch norms (1: 3); into the concatenation (2: 1).
    const int64_t expected[] = {3, 6, 3, 3};
    CHECK(n == expected[variant]);
  }
  for (bool last : {false, true}) {
    CAPTURE(last);
    // bf16: out's input gradient into c's batch norm; each batch norm's input gradient into its
    // convolution's raw output (3); c's convolution's into the upsampling; b's convolution's into
    // the pooling, and the pooling's (bf16 from bf16) into a's batch norm: 7.
    CHECK(check_against_fp32_gradients([&](bool on) { return run_paths(d, last, on); }) == 7);
    for (int mid : {0, 1, 2}) {
      CAPTURE(mid);
      // Only a's batch norm's input gradient (into its convolution's raw output) is bf16.
      CHECK(check_against_fp32_gradients([&](bool on) { return run_bn_after(d, mid, last, on); }) == 1);
    }
  }
  for (bool act : {false, true})
    for (bool last : {false, true}) {
      CAPTURE(act);
      CAPTURE(last);
      // bf16 buffers: the convolution's raw output takes one only in its own layout: planar, or
      // channels-last with channels-last activations (act and last).
      CHECK(check_against_fp32_gradients([&](bool on) { return run_prebias(d, act, last, on); }) ==
            (last && !act ? 0 : 1));
    }
  for (const Mode& m : {kModes[2], kModes[3]}) {
    CAPTURE(m.last);
    // run_ops: the input gradients of a's, b's and c's batch norms reach their convolutions' raw
    // outputs as bf16 (3); out's input gradient reaches c's batch norm (its one consumer), planar
    // directly, channels-last through to_planar (out has 2 output channels, so it is planar), which
    // transposes it into c's batch norm's bf16 gradient. Planar, b's convolution's input gradient
    // reaches the pooling that made its input (which then widens it into s's gradient: three
    // contributions); channels-last not: a's convolution reads the 3-channel image, so s and its
    // pooling are planar while b's convolution is channels-last (its input is transposed). Planar,
    // c's convolution's input gradient reaches the concatenation, which copies its up part into
    // the upsampling's bf16 gradient and widens its s part into s's float one (7); channels-last
    // the concatenation of planar tensors is transposed into c's convolution (5).
    CHECK(check_against_fp32_gradients([&](bool on) {
            Mode mm = m;
            mm.grads16 = on;
            return run_ops(d, true, mm);
          }) == (m.last ? 5 : 7));
    // Both networks: every batch norm's input gradient is bf16, and so is a convolution's input
    // gradient into the batch norm, upsampling, pooling, concatenation or to_planar whose output it
    // alone reads, and a concatenation's into S's up blocks (107 in either layout; the count pins
    // which hand-offs happen).
    const int64_t n = check_against_fp32_gradients([&](bool on) {
      Mode mm = m;
      mm.grads16 = on;
      return run_networks(d, true, mm);
    });
    CHECK(n == 107);
  }
}

}  // namespace

TEST_SUITE("nn") {
TEST_CASE("bf16 gradients: every op's and both networks' gradients are fp32 buffers', bit for bit") {
  check_bf16_gradients(Device::cpu);
}

TEST_CASE("bf16 gradients: the batch norm's backward reads a bf16 gy and writes a bf16 gx exactly; bias sums") {
  check_bf16_gradient_kernels(Device::cpu);
}

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
TEST_CASE("gpu: bf16 gradients' kernels: a bf16 gy and a bf16 gx exactly as the fp32 ones; bias sums") {
  CAF_NEED_GPU();
  check_bf16_gradient_kernels(Device::cuda);
  check_bf16_gradients(Device::cuda);
}
}
