// Mixed precision (Precision::bf16): the bf16 rounding, and bf16 convolutions against fp32 ones
// on the CPU; the GPU's cuDNN bf16 convolutions against the CPU reference (gpu suite).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "kernels/cast.h"
#include "kernels/conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/pool.h"
#include "kernels/runtime.h"
#include "nn/autograd.h"
#include "nn/ops.h"
#include "tests/test_util.h"

using namespace caf;

namespace {

// Sets the precision for one scope (the library's default is fp32).
struct PrecisionScope {
  Precision old = precision();
  explicit PrecisionScope(Precision p) { set_precision(p); }
  ~PrecisionScope() { set_precision(old); }
};

float bits_to_float(uint32_t u) { return bits_float(u); }

struct ConvRun {
  std::vector<float> y, gx, gw, gb;
};

// Sets channels_last_convs() for one scope.
struct ChannelsLastScope {
  bool old = channels_last_convs();
  explicit ChannelsLastScope(bool on) { set_channels_last_convs(on); }
  ~ChannelsLastScope() { set_channels_last_convs(old); }
};

// conv2d -> a fixed random projection -> sum: the output and the three gradients.
ConvRun run_conv(Precision p, Device d, bool channels_last = false) {
  PrecisionScope scope(p);
  ChannelsLastScope layout(channels_last);
  // 8 channels in and out: channels-last applies (cuDNN's NHWC kernels want multiples of 8).
  Tensor x = Tensor::randn({2, 8, 9, 7}, 1, 0, 1, d).set_requires_grad(true);
  Tensor w = Tensor::randn({8, 8, 3, 3}, 2, 0, 0.3f, d).set_requires_grad(true);
  Tensor b = Tensor::uniform({8}, 3, -0.5f, 0.5f, d).set_requires_grad(true);
  Tensor proj = Tensor::randn({2, 8, 9, 7}, 4, 0, 1, d);
  Tensor y = conv2d(x, w, b);
  sum(mul(y, proj)).backward();
  return {y.to_vector(), x.grad().to_vector(), w.grad().to_vector(), b.grad().to_vector()};
}

// An op that keeps bytes for its backward (a mask, positions): output, input gradient, kept bytes.
struct KeptRun {
  std::vector<float> out, grad;
  std::vector<uint8_t> kept;
};
// f(device) on the CPU and on the GPU must agree bit for bit (pure comparisons and copies).
template <class F>
void check_same_on_cpu_and_gpu(F f) {
  const KeptRun c = f(Device::cpu), g = f(Device::cuda);
  CHECK(g.out == c.out);
  CHECK(g.grad == c.grad);
  CHECK(g.kept == c.kept);
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float f : v) m = std::max(m, double(std::fabs(f)));
  return m;
}
double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

}  // namespace

TEST_SUITE("nn") {
TEST_CASE("bf16: round to nearest even, special values") {
  CHECK(f32_to_bf16(1.f) == 0x3F80);
  CHECK(f32_to_bf16(-0.f) == 0x8000);
  CHECK(f32_to_bf16(bits_to_float(0x3F808000u)) == 0x3F80);  // tie: to even (down)
  CHECK(f32_to_bf16(bits_to_float(0x3F818000u)) == 0x3F82);  // tie: to even (up)
  CHECK(f32_to_bf16(bits_to_float(0x3F808001u)) == 0x3F81);  // above the tie: up
  CHECK(f32_to_bf16(bits_to_float(0x3F807FFFu)) == 0x3F80);  // below: down
  CHECK(f32_to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
  CHECK(f32_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);  // rounds up to infinity
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(bits_to_float(0x7F800001u)))));  // a NaN that rounding would make inf
  CHECK(bf16_to_f32(0x4049) == 3.140625f);
  // The dispatching kernels: cast, widen with a per-channel bias, accumulate.
  std::vector<float> x{1.f, 2.5f, -3.f, 1e-3f}, y(4), g{1.f, 1.f, 1.f, 1.f};
  std::vector<uint16_t> h(4);
  cast_to_bf16(Device::cpu, x.data(), h.data(), 4);
  const float bias[2] = {10.f, 20.f};
  cast_from_bf16(Device::cpu, h.data(), bias, 2, 2, y.data(), 4);
  CHECK(y[0] == 11.f);
  CHECK(y[1] == 12.5f);
  CHECK(y[2] == 17.f);
  CHECK(y[3] == 20.f + bf16_to_f32(f32_to_bf16(1e-3f)));
  accumulate_bf16(Device::cpu, h.data(), g.data(), 4);
  CHECK(g[1] == 3.5f);
}

TEST_CASE("bf16: ReLU keeps a byte mask, frees its output, and gives the same gradient") {
  auto run = [](Precision p, std::weak_ptr<Storage>* out_storage) {
    PrecisionScope scope(p);
    Tensor x = Tensor::randn({2, 3, 5, 5}, 9).set_requires_grad(true);
    Tensor y = relu(x);
    *out_storage = y.storage();
    Tensor proj = Tensor::randn({2, 3, 5, 5}, 10);
    Tensor loss = sum(mul(relu(scale(x, 1.f)), proj));  // a second relu feeds mul, which saves it
    const std::vector<float> yv = y.to_vector();
    Tensor total = add(loss, sum(y));
    y = Tensor();
    const bool freed = out_storage->expired();
    total.backward();
    std::vector<float> g = x.grad().to_vector();
    g.insert(g.end(), yv.begin(), yv.end());
    return std::make_pair(g, freed);
  };
  std::weak_ptr<Storage> s32, s16;
  const auto [g32, freed32] = run(Precision::fp32, &s32);
  const auto [g16, freed16] = run(Precision::bf16, &s16);
  CHECK(g16 == g32);   // outputs and gradients bit for bit (relu and sum involve no rounding to bf16)
  CHECK(!freed32);     // fp32: relu's backward holds its output
  CHECK(freed16);      // bf16: only the mask is kept
}

TEST_CASE("bf16: max pooling keeps the winners' positions; same output and gradient, ties included") {
  auto run = [](Precision p) {
    PrecisionScope scope(p);
    // Values on a coarse grid, so many windows hold ties (routed to the first maximum).
    std::vector<float> v(2 * 3 * 6 * 8);
    for (size_t i = 0; i < v.size(); ++i) v[i] = float((i * 7919) % 5) - 2.f;
    Tensor x = Tensor::from_vector({2, 3, 6, 8}, v).set_requires_grad(true);
    Tensor y = maxpool2d(x);
    sum(mul(y, Tensor::randn(y.shape(), 3))).backward();
    std::vector<float> out = y.to_vector(), g = x.grad().to_vector();
    out.insert(out.end(), g.begin(), g.end());
    return out;
  };
  CHECK(run(Precision::bf16) == run(Precision::fp32));
}

TEST_CASE("bf16: the channels-last casts are the plain casts, permuted") {
  const int64_t B = 3, C = 5, P = 7;  // [B][C][P] planar, [B][P][C] channels-last
  const Tensor x = Tensor::randn({B, C, P}, 21), bias = Tensor::randn({C}, 22);
  std::vector<uint16_t> plain(size_t(B * C * P)), last(plain.size());
  cast_to_bf16(Device::cpu, x.data<float>(), plain.data(), B * C * P);
  cast_to_bf16_nhwc(Device::cpu, x.data<float>(), last.data(), B, C, P);
  const BcpLayout l{C, P};
  int64_t wrong = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < P; ++p) wrong += plain[size_t(l.planar(b, c, p))] != last[size_t(l.last(b, c, p))];
  CHECK(wrong == 0);
  // Back: widened (with the bias) and accumulated into planar order give the original roundings.
  std::vector<float> back(plain.size()), widened(plain.size()), acc(plain.size(), 1.f);
  cast_from_bf16_nhwc(Device::cpu, last.data(), bias.data<float>(), back.data(), B, C, P);
  cast_from_bf16(Device::cpu, plain.data(), bias.data<float>(), P, C, widened.data(), B * C * P);
  CHECK(back == widened);
  accumulate_bf16_nhwc(Device::cpu, last.data(), acc.data(), B, C, P);
  for (size_t i = 0; i < acc.size(); ++i) wrong += acc[i] != 1.f + bf16_to_f32(plain[i]);
  CHECK(wrong == 0);
}

TEST_CASE("bf16: channels-last convolutions give the planar ones' results, bit for bit (CPU)") {
  const ConvRun a = run_conv(Precision::bf16, Device::cpu), b = run_conv(Precision::bf16, Device::cpu, true);
  CHECK(a.y == b.y);
  CHECK(a.gx == b.gx);
  CHECK(a.gw == b.gw);
  CHECK(a.gb == b.gb);
}

TEST_CASE("bf16: convolutions and their gradients stay within bf16's precision of fp32's") {
  // Each operand rounded to 8 significant bits (relative error <= 2^-9) and the result rounded
  // again: errors of a few 2^-9 of the largest value (measured 0.3-0.5 %), never more than 2^-6 (a bound that
  // still fails for a wrong operand, layout or missing bias: those are O(1)).
  const ConvRun f = run_conv(Precision::fp32, Device::cpu), h = run_conv(Precision::bf16, Device::cpu);
  CHECK(max_diff(f.y, h.y) < max_abs(f.y) / 64);
  CHECK(max_diff(f.gx, h.gx) < max_abs(f.gx) / 64);
  CHECK(max_diff(f.gw, h.gw) < max_abs(f.gw) / 64);
  CHECK(max_diff(f.gb, h.gb) < 1e-4 * max_abs(f.gb));  // the bias gradient stays fp32
  CHECK(max_diff(f.y, h.y) > 0);                         // and bf16 did round something
  MESSAGE("bf16 vs fp32, max error / max value: y " << max_diff(f.y, h.y) / max_abs(f.y) << ", gx "
          << max_diff(f.gx, h.gx) / max_abs(f.gx) << ", gw " << max_diff(f.gw, h.gw) / max_abs(f.gw));
}
}

TEST_SUITE("gpu") {
TEST_CASE("gpu: the mask-keeping ReLU equals the CPU's") {
  CAF_NEED_GPU();
  const Tensor xc = Tensor::randn({3, 4, 17, 9}, 12), gyc = Tensor::randn({3, 4, 17, 9}, 13);
  check_same_on_cpu_and_gpu([&](Device d) {
    const Tensor x = xc.to(d), gy = gyc.to(d), y = Tensor::empty(x.shape(), DType::f32, d),
                 m = Tensor::empty(x.shape(), DType::u8, d), g = Tensor::zeros(x.shape(), DType::f32, d);
    relu_mask_forward(d, x.data<float>(), y.data<float>(), m.data<uint8_t>(), x.numel());
    relu_mask_backward(d, m.data<uint8_t>(), gy.data<float>(), g.data<float>(), x.numel());
    return KeptRun{y.to_vector(), g.to_vector(), m.to_bytes()};
  });
}

TEST_CASE("gpu: max pooling with kept positions equals the CPU's") {
  CAF_NEED_GPU();
  const Shape4 sh{3, 4, 10, 12};
  std::vector<float> v(size_t(sh.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = float((i * 7919) % 5);  // ties
  const Tensor xc = Tensor::from_vector({3, 4, 10, 12}, v), gyc = Tensor::randn({3, 4, 5, 6}, 14);
  check_same_on_cpu_and_gpu([&](Device d) {
    const Tensor x = xc.to(d), gy = gyc.to(d), y = Tensor::empty({3, 4, 5, 6}, DType::f32, d),
                 id = Tensor::empty({3, 4, 5, 6}, DType::u8, d), g = Tensor::zeros(x.shape(), DType::f32, d);
    maxpool2d_forward_index(d, x.data<float>(), sh, y.data<float>(), id.data<uint8_t>());
    maxpool2d_backward_index(d, id.data<uint8_t>(), gy.data<float>(), sh, g.data<float>());
    return KeptRun{y.to_vector(), g.to_vector(), id.to_bytes()};
  });
}

// cuDNN's bf16 convolution (planar or channels-last) against the CPU's bf16 reference: both sides
// sum the same bf16 products in fp32 in different orders, then round to bf16, so the results
// differ by about one bf16 unit (2^-8 relative) where the sums straddle a rounding edge.
void check_bf16_conv_on_gpu(bool channels_last) {
  const ConvRun c = run_conv(Precision::bf16, Device::cpu),
                g = run_conv(Precision::bf16, Device::cuda, channels_last);
  CHECK(caf::test::nmse(g.y, c.y) < 1e-5);
  CHECK(caf::test::nmse(g.gx, c.gx) < 1e-5);
  CHECK(caf::test::nmse(g.gw, c.gw) < 1e-5);
  CHECK(caf::test::nmse(g.gb, c.gb) < 1e-10);
}

TEST_CASE("gpu: bf16 convolutions (cuDNN) match the CPU's bf16 reference") {
  CAF_NEED_GPU();
  check_bf16_conv_on_gpu(false);
}

TEST_CASE("gpu: channels-last bf16 convolutions (cuDNN NHWC) match the CPU's bf16 reference") {
  CAF_NEED_GPU();
  check_bf16_conv_on_gpu(true);
}

TEST_CASE("gpu: the channels-last casts (tiled transposes) equal the CPU's, bit for bit") {
  CAF_NEED_GPU();
  // 70 positions x 45 channels: partial tiles on both sides; 2 images.
  const int64_t B = 2, C = 45, P = 70;
  const Tensor xc = Tensor::randn({B, C, P}, 31), bc = Tensor::randn({C}, 32);
  auto run = [&](Device d) {
    const Tensor x = xc.to(d), b = bc.to(d), h = Tensor::empty({B, P, C}, DType::bf16, d),
                 y = Tensor::empty({B, C, P}, DType::f32, d), g = Tensor::full({B, C, P}, 0.5f, d);
    cast_to_bf16_nhwc(d, x.data<float>(), h.data<uint16_t>(), B, C, P);
    cast_from_bf16_nhwc(d, h.data<uint16_t>(), b.data<float>(), y.data<float>(), B, C, P);
    accumulate_bf16_nhwc(d, h.data<uint16_t>(), g.data<float>(), B, C, P);
    std::vector<float> out = y.to_vector(), acc = g.to_vector();
    out.insert(out.end(), acc.begin(), acc.end());
    return out;
  };
  CHECK(run(Device::cuda) == run(Device::cpu));
}
}
