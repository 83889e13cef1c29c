// bf16 activations (kernels/runtime.h bf16_activations_active()): every op that takes them is, bit
// for bit, its fp32 twin on the widened input with the output rounded to bf16, and its gradients
// are the fp32 twin's; chains of them are bf16 mixed precision with fp32 activations, bit for bit,
// until an upsampling or a pooling tie; networks and training stay within bf16's precision. The
// gpu suite runs the same comparisons on the GPU, and the GPU against the CPU.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/cast.h"
#include "kernels/error.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"
#include "nn/autograd.h"
#include "nn/modules.h"
#include "nn/networks.h"
#include "nn/ops.h"
#include "tests/test_util.h"

using namespace caf;

namespace {

// bf16 mixed precision for one scope, with or without bf16 activations (the fused op on).
struct Bf16Scope : test::RuntimeSwitches {
  explicit Bf16Scope(bool activations, bool channels_last = false, bool recompute = true) {
    set_precision(Precision::bf16);
    set_bf16_activations(activations);
    set_channels_last_convs(channels_last);
    set_recompute_activations(recompute);
    set_fused_bn_relu(true);
  }
};

using test::round16;
using test::widened;

std::vector<uint16_t> bits(const Tensor& x16) {
  const Tensor h = x16.to(Device::cpu);
  const uint16_t* p = h.data<uint16_t>();
  return {p, p + h.numel()};
}
std::vector<float> grad_of(const Tensor& t) { return t.grad().to_vector(); }

// A bf16 tensor of random values (their fp32 draws rounded), as a leaf that may take a gradient.
Tensor random16(const Dims& shape, uint64_t seed, Device d, float stddev = 1.f) {
  return round16(Tensor::randn(shape, seed, 0.f, stddev, d));
}

// loss = sum(to_float32(y) * proj), so the gradient reaching y is proj in both precisions.
void backward_through(const Tensor& y, uint64_t seed) {
  const Tensor proj = Tensor::randn(y.shape(), seed, 0.f, 1.f, y.device());
  sum(mul(to_float32(y), proj)).backward();
}

// The fused batch norm + ReLU in training mode on a bf16 x with a pending bias against the fp32
// op on float(x) + bias: y rounded, every gradient, the statistics, bit for bit.
void check_batchnorm_relu(Device d, const Dims& shape, bool with_bias) {
  Bf16Scope scope(true);
  const int64_t c = shape[1];
  Tensor x16 = random16(shape, 11, d, 2.f).set_requires_grad(true);
  const Tensor bias = with_bias ? Tensor::uniform({c}, 12, -0.5f, 0.5f, d) : Tensor();
  Tensor x32 = widened(x16, bias).set_requires_grad(true);
  Tensor g16 = Tensor::uniform({c}, 13, 0.5f, 1.5f, d).set_requires_grad(true);
  Tensor b16 = Tensor::uniform({c}, 14, -0.5f, 0.5f, d).set_requires_grad(true);
  Tensor g32 = g16.clone().set_requires_grad(true), b32 = b16.clone().set_requires_grad(true);
  BatchNormState s16{Tensor::zeros({c}, DType::f32, d), Tensor::full({c}, 1.f, d)};
  BatchNormState s32{Tensor::zeros({c}, DType::f32, d), Tensor::full({c}, 1.f, d)};
  const Tensor y16 = batchnorm_relu2d(x16, g16, b16, s16, bias);
  const Tensor y32 = batchnorm_relu2d(x32, g32, b32, s32);
  REQUIRE(y16.dtype() == DType::bf16);
  CHECK(bits(y16) == bits(round16(y32)));
  CHECK(s16.running_mean.to_vector() == s32.running_mean.to_vector());
  CHECK(s16.running_var.to_vector() == s32.running_var.to_vector());
  backward_through(y16, 15);
  backward_through(y32, 15);
  CHECK(grad_of(x16) == grad_of(x32));
  CHECK(grad_of(g16) == grad_of(g32));
  CHECK(grad_of(b16) == grad_of(b32));
  // Inference mode, nothing recorded: one pass, the rounding of the fp32 one.
  NoGradGuard no_grad;
  CHECK(bits(batchnorm_relu2d_eval(x16, g16, b16, s16, bias)) == bits(round16(batchnorm_relu2d_eval(x32, g32, b32, s32))));
}

// A bf16 tensor's channels-last copy (the same values), as a leaf that may take a gradient.
Tensor channels_last_copy(const Tensor& x16) {
  const Shape4 s = x16.shape4();
  Tensor t = Tensor::empty(x16.shape(), DType::bf16, x16.device());
  transpose_bf16_to_nhwc(x16.device(), x16.data<uint16_t>(), t.data<uint16_t>(), s.n, s.c, s.hw());
  return t.set_channels_last(true);
}
// A channels-last tensor's gradient (channels-last storage) in planar order.
std::vector<float> planar_grad(const Tensor& t) {
  const Shape4 s = t.shape4();
  const std::vector<float> g = grad_of(t);
  std::vector<float> out(g.size());
  const BcpLayout l{s.c, s.hw()};
  for (int64_t b = 0; b < s.n; ++b)
    for (int64_t c = 0; c < s.c; ++c)
      for (int64_t p = 0; p < s.hw(); ++p) out[size_t(l.planar(b, c, p))] = g[size_t(l.last(b, c, p))];
  return out;
}

// The fused batch norm + ReLU on a channels-last bf16 x against the planar op: y (transposed
// back), running statistics, every gradient and the inference-mode pass, bit for bit (on the GPU
// the statistics are summed in another order, in double: equal unless a sum falls within double
// rounding of a float boundary).
void check_batchnorm_relu_last(Device d, const Dims& shape, bool with_bias) {
  Bf16Scope scope(true, true);
  const int64_t c = shape[1];
  Tensor xp = random16(shape, 11, d, 2.f).set_requires_grad(true);
  Tensor xl = channels_last_copy(xp).set_requires_grad(true);
  const Tensor bias = with_bias ? Tensor::uniform({c}, 12, -0.5f, 0.5f, d) : Tensor();
  Tensor gp = Tensor::uniform({c}, 13, 0.5f, 1.5f, d).set_requires_grad(true);
  Tensor bp = Tensor::uniform({c}, 14, -0.5f, 0.5f, d).set_requires_grad(true);
  Tensor gl = gp.clone().set_requires_grad(true), bl = bp.clone().set_requires_grad(true);
  BatchNormState sp{Tensor::zeros({c}, DType::f32, d), Tensor::full({c}, 1.f, d)};
  BatchNormState sl{Tensor::zeros({c}, DType::f32, d), Tensor::full({c}, 1.f, d)};
  const Tensor yp = batchnorm_relu2d(xp, gp, bp, sp, bias);
  const Tensor yl = batchnorm_relu2d(xl, gl, bl, sl, bias);
  REQUIRE(yl.channels_last());
  CHECK(bits(to_planar(yl)) == bits(yp));
  CHECK(sl.running_mean.to_vector() == sp.running_mean.to_vector());
  CHECK(sl.running_var.to_vector() == sp.running_var.to_vector());
  backward_through(yp, 15);
  backward_through(yl, 15);  // to_float32 of a channels-last y is planar: the same projection
  CHECK(planar_grad(xl) == grad_of(xp));
  CHECK(grad_of(gl) == grad_of(gp));
  CHECK(grad_of(bl) == grad_of(bp));
  NoGradGuard no_grad;
  const Tensor el = batchnorm_relu2d_eval(xl, gl, bl, sl, bias);
  REQUIRE(el.channels_last());
  CHECK(bits(to_planar(el)) == bits(batchnorm_relu2d_eval(xp, gp, bp, sp, bias)));
}

// op on a channels-last x16 against op on the planar x16: the output (transposed back) and the
// input gradient, bit for bit, and the output channels-last.
void check_moving_op_last(Device d, const Dims& shape, const std::function<Tensor(const Tensor&)>& op) {
  Bf16Scope scope(true, true);
  Tensor xp = random16(shape, 21, d).set_requires_grad(true);
  Tensor xl = channels_last_copy(xp).set_requires_grad(true);
  const Tensor yp = op(xp), yl = op(xl);
  REQUIRE(yl.channels_last());
  CHECK(bits(to_planar(yl)) == bits(yp));
  backward_through(yp, 22);
  backward_through(yl, 22);
  CHECK(planar_grad(xl) == grad_of(xp));
  NoGradGuard no_grad;
  CHECK(bits(op(xl)) == bits(yl));  // the unrecorded forward writes the same
}

// op(bf16 x) against op(float(x)): output rounded and input gradient, bit for bit.
void check_moving_op(Device d, const Dims& shape, const std::function<Tensor(const Tensor&)>& op) {
  Bf16Scope scope(true);
  Tensor x16 = random16(shape, 21, d).set_requires_grad(true);
  Tensor x32 = widened(x16).set_requires_grad(true);
  const Tensor y16 = op(x16), y32 = op(x32);
  REQUIRE(y16.dtype() == DType::bf16);
  CHECK(bits(y16) == bits(round16(y32)));
  backward_through(y16, 22);
  backward_through(y32, 22);
  CHECK(grad_of(x16) == grad_of(x32));
  NoGradGuard no_grad;
  CHECK(bits(op(x16)) == bits(y16));  // the unrecorded forward writes the same
}

struct ConvGrads {
  std::vector<float> y, gx, gw, gb;
};
// The bias gradient of a raw output (conv2d_prebias): the per-channel sums, in double, of the
// output gradient rounded to bf16, the operand its convolution uses (nn/ops.cpp: that bias feeds
// only a training-mode batch norm, so its gradient is zero but for rounding either way).
std::vector<float> rounded_bias_sums(const Tensor& gy) {
  const std::vector<float> g = widened(round16(gy)).to_vector();
  const Shape4 s = gy.shape4();
  std::vector<float> gb(size_t(s.c));
  for (int64_t c = 0; c < s.c; ++c) {
    double sum = 0;
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t i = 0; i < s.hw(); ++i) sum += g[size_t((n * s.c + c) * s.hw() + i)];
    gb[size_t(c)] = float(sum);
  }
  return gb;
}
// conv2d on a bf16 x (or conv2d_prebias, whose raw output plus the bias is conv2d's y) against
// conv2d on float(x): the same bf16 operands, so the same bits.
ConvGrads run_conv(Device d, bool x_bf16, bool prebias, bool channels_last) {
  Bf16Scope scope(true, channels_last);
  Tensor x16 = random16({2, 8, 9, 7}, 31, d);
  Tensor x = (x_bf16 ? x16 : widened(x16)).set_requires_grad(true);
  Tensor w = Tensor::randn({8, 8, 3, 3}, 32, 0, 0.3f, d).set_requires_grad(true);
  Tensor b = Tensor::uniform({8}, 33, -0.5f, 0.5f, d).set_requires_grad(true);
  const Tensor y = prebias ? conv2d_prebias(x, w, b) : conv2d(x, w, b);
  const Tensor yv = prebias ? widened(y, b) : y;
  backward_through(y, 34);
  return {yv.to_vector(), grad_of(x), grad_of(w), grad_of(b)};
}
void check_convs(Device d) {
  for (bool last : {false, true}) {
    CAPTURE(last);
    const ConvGrads ref = run_conv(d, false, false, last);
    for (const auto& mode : {std::pair{true, false}, {false, true}, {true, true}}) {
      const bool x_bf16 = mode.first, prebias = mode.second;  // (named: lambdas cannot capture bindings)
      CAPTURE(x_bf16);
      CAPTURE(prebias);
      const ConvGrads r = run_conv(d, x_bf16, prebias, last);
      CHECK(r.y == ref.y);
      CHECK(r.gx == ref.gx);
      CHECK(r.gw == ref.gw);
      CHECK(r.gb == (prebias ? rounded_bias_sums(Tensor::randn({2, 8, 9, 7}, 34, 0.f, 1.f, d)) : ref.gb));
    }
  }
}

// A U-Net fragment without upsampling or pooling: two ConvBnRelu in a row, a skip concatenated,
// an output convolution. With and without bf16 activations: the same output and gradients.
struct ChainRun {
  std::vector<float> out;
  std::vector<float> grads;       // every parameter's but the biases of raw outputs
  std::vector<float> raw_biases;  // those (the two convolutions of block, side's)
};
ChainRun run_chain(Device d, bool activations, bool channels_last, bool recompute) {
  Bf16Scope scope(activations, channels_last, recompute);
  ParamStore store;
  DoubleBlock block(store, "block", 3, 8, 8);
  ConvBnRelu side(store, "side.0", "side.1", 8, 8);
  Conv2d out(store, "out", 16, 3);
  store.finalize(d, 41);
  const Tensor x = Tensor::uniform({2, 3, 16, 12}, 42, 0.f, 1.f, d);
  const Tensor h = block(store, x, true);
  if (activations) REQUIRE(h.dtype() == DType::bf16);
  REQUIRE(h.channels_last() == (activations && channels_last));  // block's second convolution: 8 -> 8
  const Tensor y = out(store, concat_channels(side(store, h, true), h));
  REQUIRE(y.dtype() == DType::f32);
  backward_through(y, 43);
  ChainRun r{y.to_vector(), {}, {}};
  // A convolution's bias follows its 4-D weight; out's output is fp32, not raw.
  const auto& names = store.param_names();
  for (size_t i = 0; i < names.size(); ++i) {
    const std::vector<float> g = store.param(int(i)).grad().to_vector();
    const bool raw_bias = i > 0 && store.param(int(i) - 1).ndim() == 4 && names[i] != "out.bias";
    std::vector<float>& to = raw_bias ? r.raw_biases : r.grads;
    to.insert(to.end(), g.begin(), g.end());
  }
  REQUIRE(r.raw_biases.size() == 3 * 8);
  return r;
}

double nmse(const std::vector<float>& a, const std::vector<float>& b) { return test::nmse(a, b); }

// Whole networks at random initialisation: DRAEM's deep BN stacks at N(0, 0.02) weights amplify
// any rounding (bf16 convolutions alone move S's logits by an NMSE of 0.2-0.4 from fp32 at 32-128
// px), so the measure is relative: bf16 activations must move the outputs less than bf16
// precision itself does (measured at batch 4, 32 / 64 / 128 px: R's output 17 / 44 / 65x less, the
// logits 2.4 / 5.6 / 5.0x less).
struct NetRun {
  std::vector<float> rec, logits;
};
NetRun run_networks(Device d, Precision p, bool activations, bool channels_last = false,
                    std::vector<float>* grads = nullptr) {
  Bf16Scope scope(activations, channels_last);
  set_precision(p);
  const test::SmallNets n(d, 4, 51);
  sum(mul(n.logits, Tensor::randn(n.logits.shape(), 54, 0, 1, d))).backward();  // runs: finite, no error
  std::vector<float> g = n.r.params().grads_flat().to_vector(), gs = n.s.params().grads_flat().to_vector();
  CHECK(test::all_finite(g));
  CHECK(test::all_finite(gs));
  g.insert(g.end(), gs.begin(), gs.end());
  if (grads) *grads = g;
  return {n.rec.to_vector(), n.logits.to_vector()};
}

}  // namespace

TEST_SUITE("nn") {
TEST_CASE("bf16 activations: the fused batch norm + ReLU is the fp32 op on float(x) + bias, rounded") {
  check_batchnorm_relu(Device::cpu, {2, 3, 5, 7}, true);
  check_batchnorm_relu(Device::cpu, {2, 4, 8, 8}, false);
}

TEST_CASE("channels-last activations: the fused batch norm + ReLU is the planar op, permuted") {
  check_batchnorm_relu_last(Device::cpu, {2, 8, 5, 7}, true);
  check_batchnorm_relu_last(Device::cpu, {2, 16, 4, 4}, false);
}

TEST_CASE("channels-last activations: max pooling, upsampling and concatenation are the planar ops, permuted") {
  check_moving_op_last(Device::cpu, {2, 3, 6, 10}, [](const Tensor& x) { return maxpool2d(x); });
  check_moving_op_last(Device::cpu, {1, 2, 7, 5}, [](const Tensor& x) { return maxpool2d(x); });
  check_moving_op_last(Device::cpu, {2, 3, 5, 4}, [](const Tensor& x) { return upsample_bilinear2x(x); });
  check_moving_op_last(Device::cpu, {2, 3, 4, 4}, [](const Tensor& x) { return concat_channels(x, upsample_bilinear2x(maxpool2d(x))); });
}

TEST_CASE("bf16 activations: max pooling, upsampling and concatenation are their fp32 twins, rounded") {
  check_moving_op(Device::cpu, {2, 3, 6, 10}, [](const Tensor& x) { return maxpool2d(x); });
  check_moving_op(Device::cpu, {2, 3, 5, 4}, [](const Tensor& x) { return upsample_bilinear2x(x); });
  check_moving_op(Device::cpu, {2, 3, 4, 4}, [](const Tensor& x) { return concat_channels(x, upsample_bilinear2x(maxpool2d(x))); });
}

TEST_CASE("bf16 activations: convolutions read bf16 inputs and write raw bf16 outputs, bit for bit") {
  check_convs(Device::cpu);
}

TEST_CASE("bf16 activations: a conv-BN-ReLU chain with a skip is bf16 with fp32 activations, bit for bit") {
  const ChainRun ref = run_chain(Device::cpu, false, false, true);
  for (bool last : {false, true})
    for (bool recompute : {true, false}) {
      CAPTURE(last);
      CAPTURE(recompute);
      const ChainRun r = run_chain(Device::cpu, true, last, recompute);
      CHECK(r.out == ref.out);
      CHECK(r.grads == ref.grads);
      // The biases of raw outputs sum the rounded gradient (rounded_bias_sums): rounding noise
      // around a true zero on both sides, far below the other gradients.
      REQUIRE(ref.raw_biases.size() == r.raw_biases.size());
      double ref_max = 0, diff_max = 0, grad_max = 0;
      for (size_t i = 0; i < r.raw_biases.size(); ++i) {
        ref_max = std::max(ref_max, double(std::fabs(ref.raw_biases[i])));
        diff_max = std::max(diff_max, double(std::fabs(r.raw_biases[i] - ref.raw_biases[i])));
      }
      for (float g : ref.grads) grad_max = std::max(grad_max, double(std::fabs(g)));
      CHECK(diff_max < 1e-2 * grad_max);
      CHECK(ref_max < 1e-2 * grad_max);
    }
}

TEST_CASE("bf16 activations: both networks move less from bf16 with fp32 activations than bf16 moves from fp32") {
  const NetRun f = run_networks(Device::cpu, Precision::fp32, false);
  const NetRun a = run_networks(Device::cpu, Precision::bf16, false);
  const NetRun b = run_networks(Device::cpu, Precision::bf16, true);
  CHECK(b.rec != a.rec);  // the switch took effect (upsampling rounds)
  CHECK(nmse(b.rec, a.rec) < 0.2 * nmse(a.rec, f.rec));
  CHECK(nmse(b.logits, a.logits) < 0.7 * nmse(a.logits, f.logits));
}

TEST_CASE("channels-last activations: both networks as with planar bf16 activations") {
  std::vector<float> gp, gl;
  const NetRun p = run_networks(Device::cpu, Precision::bf16, true, false, &gp);
  const NetRun l = run_networks(Device::cpu, Precision::bf16, true, true, &gl);
  CHECK(l.rec == p.rec);
  CHECK(l.logits == p.logits);
  // The convolutions' bias gradients sum a channels-last gradient in another order (in double);
  // every other gradient is the same bits.
  CHECK(nmse(gl, gp) < 1e-12);
}

TEST_CASE("bf16 activations: bad uses are clear errors") {
  Bf16Scope scope(true);
  const Tensor x16 = random16({1, 2, 4, 4}, 61, Device::cpu);
  const Tensor f = Tensor::randn({1, 2, 4, 4}, 62);
  const Tensor c2 = Tensor::full({2}, 1.f);
  BatchNormState st{Tensor::zeros({2}), Tensor::full({2}, 1.f)};
  CHECK_THROWS_WITH_AS(batchnorm_relu2d(f, c2, c2, st, c2), doctest::Contains("pending bias"), ShapeError);
  CHECK_THROWS_WITH_AS(batchnorm_relu2d(x16, c2, c2, st, Tensor::full({3}, 0.f)), doctest::Contains("bias"), ShapeError);
  CHECK_THROWS_WITH_AS(concat_channels(x16, f), doctest::Contains("differ in dtype"), ShapeError);
  CHECK_THROWS_WITH_AS(batchnorm2d(x16, c2, c2, st, true), doctest::Contains("float32"), ShapeError);
  const Tensor g2 = Tensor::full({2}, 1.f).set_requires_grad(true);  // inference mode that records
  CHECK_THROWS_WITH_AS(batchnorm_relu2d_eval(x16, g2, c2, st), doctest::Contains("no gradient is recorded"), Error);
  CHECK_THROWS_WITH_AS(batchnorm_relu2d_eval(f, g2, c2, st, c2), doctest::Contains("pending bias"), Error);
  // Channels-last tensors: only the ops that take them; the others say so.
  const Tensor xl = channels_last_copy(x16);
  CHECK_THROWS_WITH_AS(xl.reshape({2, 16}), doctest::Contains("to_planar first"), ShapeError);
  CHECK_THROWS_WITH_AS(batchnorm2d(xl, c2, c2, st, true), doctest::Contains("planar float32"), ShapeError);
  CHECK(to_planar(xl).channels_last() == false);
  set_precision(Precision::tf32);
  CHECK_THROWS_WITH_AS(conv2d(x16, Tensor::randn({2, 2, 3, 3}, 63), Tensor()), doctest::Contains("bf16 mixed precision"),
                       ShapeError);
}
}

TEST_SUITE("gpu") {
TEST_CASE("gpu: bf16 activations' ops are their fp32 twins on the GPU, bit for bit") {
  CAF_NEED_GPU();
  check_batchnorm_relu(Device::cuda, {2, 3, 5, 7}, true);    // H*W odd: scalar loads
  check_batchnorm_relu(Device::cuda, {2, 4, 8, 8}, false);   // vector loads, no bias
  check_batchnorm_relu(Device::cuda, {1, 3, 72, 72}, true);  // two chunks per plane
  // Channels-last: one partial channel tile; two channel tiles (the second partial) and six row
  // chunks (the last partial); 6 channels: one element per thread instead of four.
  check_batchnorm_relu_last(Device::cuda, {2, 8, 5, 7}, true);
  check_batchnorm_relu_last(Device::cuda, {2, 6, 5, 7}, true);
  check_batchnorm_relu_last(Device::cuda, {1, 40, 72, 72}, true);
  check_batchnorm_relu_last(Device::cuda, {2, 16, 4, 4}, false);
  check_batchnorm_relu_last(Device::cuda, {2, 5, 6, 7}, true);  // odd C: one channel per thread
  check_moving_op_last(Device::cuda, {2, 3, 6, 10}, [](const Tensor& x) { return maxpool2d(x); });
  check_moving_op_last(Device::cuda, {1, 2, 7, 5}, [](const Tensor& x) { return maxpool2d(x); });
  check_moving_op_last(Device::cuda, {2, 3, 5, 4}, [](const Tensor& x) { return upsample_bilinear2x(x); });
  check_moving_op_last(Device::cuda, {2, 3, 4, 4}, [](const Tensor& x) { return concat_channels(x, upsample_bilinear2x(maxpool2d(x))); });
  check_moving_op(Device::cuda, {2, 3, 6, 10}, [](const Tensor& x) { return maxpool2d(x); });
  check_moving_op(Device::cuda, {2, 3, 5, 4}, [](const Tensor& x) { return upsample_bilinear2x(x); });
  check_moving_op(Device::cuda, {2, 3, 4, 4}, [](const Tensor& x) { return concat_channels(x, upsample_bilinear2x(maxpool2d(x))); });
}

// The forward's channels-last statistics take two neighbouring channels per thread when C is even
// and x is 8-byte aligned (kernels/cuda/batchnorm_relu.cu, stats_partials_last2), else one per
// thread: the same sums in the same order, so the same statistics and y, bit for bit. x placed
// one element into its buffer is only 2-byte aligned, which takes the one-channel kernel.
TEST_CASE("gpu: channels-last statistics, two channels per thread, are one channel per thread's bit for bit") {
  CAF_NEED_GPU();
  // One partial channel tile; two tiles, the second partial, and two row chunks; three tiles.
  for (const Shape4 s : {Shape4{2, 8, 5, 7}, Shape4{1, 66, 40, 40}, Shape4{3, 130, 9, 11}}) {
    CAPTURE(s.c);
    const size_t n = size_t(s.numel()), c = size_t(s.c);
    std::vector<uint16_t> x;  // a convolution's raw bf16 output, channels-last
    for (float v : Tensor::randn({s.n, s.h, s.w, s.c}, 21, 0.f, 2.f, Device::cpu).to_vector()) x.push_back(f32_to_bf16(v));
    const std::vector<float> bias = Tensor::uniform({s.c}, 22, -0.5f, 0.5f, Device::cpu).to_vector();
    const std::vector<float> gamma = Tensor::uniform({s.c}, 23, 0.5f, 1.5f, Device::cpu).to_vector();
    const std::vector<float> beta = Tensor::uniform({s.c}, 24, -0.5f, 0.5f, Device::cpu).to_vector();
    struct Out {
      std::vector<uint16_t> y;
      std::vector<float> mean, invstd, running_mean, running_var;
    };
    const auto run = [&](size_t offset) {
      const auto up = [](const auto& h) {
        Buffer b(Device::cuda, h.size() * sizeof(h[0]));
        copy_bytes(Device::cuda, b.data(), Device::cpu, h.data(), h.size() * sizeof(h[0]));
        return b;
      };
      Buffer xb(Device::cuda, (n + 1) * sizeof(uint16_t)), yb(Device::cuda, n * sizeof(uint16_t));
      uint16_t* xd = static_cast<uint16_t*>(xb.data()) + offset;
      copy_bytes(Device::cuda, xd, Device::cpu, x.data(), n * sizeof(uint16_t));
      Buffer bb = up(bias), gb = up(gamma), eb = up(beta), mb = up(std::vector<float>(c)), ib = up(std::vector<float>(c));
      Buffer rm = up(std::vector<float>(c, 0.f)), rv = up(std::vector<float>(c, 1.f));
      BatchNormArgs a;
      a.s = s;
      a.nhwc = true;
      batchnorm_relu_train_forward_bf16(Device::cuda, xd, static_cast<float*>(bb.data()), static_cast<float*>(gb.data()),
                                        static_cast<float*>(eb.data()), static_cast<uint16_t*>(yb.data()),
                                        static_cast<float*>(mb.data()), static_cast<float*>(ib.data()),
                                        static_cast<float*>(rm.data()), static_cast<float*>(rv.data()), a);
      const auto down = [](const Buffer& b, auto& h) {
        copy_bytes(Device::cpu, h.data(), Device::cuda, b.data(), h.size() * sizeof(h[0]));
      };
      Out o{std::vector<uint16_t>(n), std::vector<float>(c), std::vector<float>(c), std::vector<float>(c),
            std::vector<float>(c)};
      down(yb, o.y), down(mb, o.mean), down(ib, o.invstd), down(rm, o.running_mean), down(rv, o.running_var);
      return o;
    };
    const Out pairs = run(0), single = run(1);
    CHECK(pairs.mean == single.mean);
    CHECK(pairs.invstd == single.invstd);
    CHECK(pairs.running_mean == single.running_mean);
    CHECK(pairs.running_var == single.running_var);
    CHECK(pairs.y == single.y);
  }
}

TEST_CASE("gpu: bf16 activations' convolutions and chains as on the CPU") {
  CAF_NEED_GPU();
  check_convs(Device::cuda);  // cuDNN against itself: the same operands, so the same bits
  const ChainRun cpu = run_chain(Device::cpu, true, false, true);
  const ChainRun ref = run_chain(Device::cuda, false, false, true);
  for (bool last : {false, true}) {
    CAPTURE(last);
    const ChainRun r = run_chain(Device::cuda, true, last, true);
    if (!last) {  // planar: the same cuDNN algorithms as bf16 with fp32 activations
      CHECK(r.out == ref.out);
      CHECK(r.grads == ref.grads);
    }
    // cuDNN's bf16 against the CPU's (fp32 accumulation in another order): bf16 convolution parity.
    CHECK(nmse(r.out, cpu.out) < 1e-5);
    CHECK(nmse(r.grads, cpu.grads) < 1e-4);
  }
}

TEST_CASE("gpu: channels-last activations: both networks as on the CPU") {
  CAF_NEED_GPU();
  // At random initialisation the deep batch-norm stacks amplify any rounding; the GPU's
  // channels-last run (cuDNN's NHWC algorithms, statistics in another order) must stay nearer the
  // CPU's than bf16 convolutions are to fp32 (run_networks above).
  const NetRun f = run_networks(Device::cpu, Precision::fp32, false);
  const NetRun a = run_networks(Device::cpu, Precision::bf16, false);
  const NetRun cpu = run_networks(Device::cpu, Precision::bf16, true, true);
  const NetRun gpu = run_networks(Device::cuda, Precision::bf16, true, true);
  CHECK(nmse(gpu.rec, cpu.rec) < 0.25 * nmse(a.rec, f.rec));
  CHECK(nmse(gpu.logits, cpu.logits) < 0.25 * nmse(a.logits, f.logits));
}
}
