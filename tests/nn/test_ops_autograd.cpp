// Every differentiable op of nn/ops.h through autograd, against central differences in float.
// The kernels themselves are checked in double by caf_ops; this suite catches wrapper mistakes
// (arguments routed to the wrong kernel slot, a missing gradient, a wrong shape), which show as
// O(1) errors.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>

#include "kernels/host_rng.h"
#include "nn/autograd.h"
#include "nn/ops.h"

using namespace caf;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

Tensor project(const Tensor& y, const Tensor& r) { return sum(mul(y.reshape({y.numel()}), r)); }

// Relative L2 error of autograd's input gradients against float central differences.
// Tolerance 1e-2: with h = 1e-3 in float, rounding gives ~1e-4 relative error and truncation less;
// a routing mistake gives errors of order 1.
double max_grad_error(const Fn& f, std::vector<Tensor> in, uint64_t seed) {
  for (auto& t : in) t.set_requires_grad(true);
  Tensor y = f(in);
  Tensor r = Tensor::uniform({y.numel()}, seed, -1, 1);
  project(y, r).backward();
  double worst = 0;
  for (auto& t : in) {
    std::vector<float> x = t.to_vector(), g = t.grad().to_vector();
    double num2 = 0, den2 = 0;
    for (size_t k = 0; k < x.size(); ++k) {
      const float h = 1e-3f, x0 = x[k];
      NoGradGuard ng;
      x[k] = x0 + h;
      t.copy_(Tensor::from_vector(t.shape(), x));
      double lp = project(f(in), r).item();
      x[k] = x0 - h;
      t.copy_(Tensor::from_vector(t.shape(), x));
      double lm = project(f(in), r).item();
      x[k] = x0;
      t.copy_(Tensor::from_vector(t.shape(), x));
      double num = (lp - lm) / (2 * double(h));
      num2 += (g[k] - num) * (g[k] - num);
      den2 += num * num;
    }
    worst = std::max(worst, std::sqrt(num2 / std::max(den2, 1e-20)));
  }
  return worst;
}

Tensor rnd(const Dims& d, uint64_t seed, float lo = -1, float hi = 1) { return Tensor::uniform(d, seed, lo, hi); }

}  // namespace

TEST_SUITE("nn") {
TEST_CASE("ops: every op's autograd gradient matches finite differences") {
  const double tol = 1e-2;
  struct Case {
    const char* name;
    Fn f;
    std::vector<Tensor> in;
  };
  auto bn_state = std::make_shared<BatchNormState>();
  bn_state->running_mean = Tensor::zeros({3});
  bn_state->running_var = Tensor::full({3}, 1.f);
  std::vector<Case> cases = {
      {"add", [](auto& v) { return add(v[0], v[1]); }, {rnd({2, 3}, 1), rnd({2, 3}, 2)}},
      {"sub", [](auto& v) { return sub(v[0], v[1]); }, {rnd({2, 3}, 3), rnd({2, 3}, 4)}},
      {"mul", [](auto& v) { return mul(v[0], v[1]); }, {rnd({2, 3}, 5), rnd({2, 3}, 6)}},
      {"div", [](auto& v) { return div(v[0], v[1]); }, {rnd({2, 3}, 39), rnd({2, 3}, 40, 0.5f, 2.f)}},
      {"scale", [](auto& v) { return scale(v[0], -1.5f); }, {rnd({5}, 7)}},
      {"add_scalar", [](auto& v) { return add_scalar(v[0], 2.f); }, {rnd({5}, 8)}},
      {"relu", [](auto& v) { return relu(v[0]); }, {rnd({7}, 9)}},
      {"sigmoid", [](auto& v) { return sigmoid(v[0]); }, {rnd({7}, 10)}},
      {"exp", [](auto& v) { return caf::exp(v[0]); }, {rnd({7}, 11)}},
      {"log", [](auto& v) { return caf::log(v[0]); }, {rnd({7}, 12, 0.5f, 2.f)}},
      {"square", [](auto& v) { return square(v[0]); }, {rnd({7}, 13)}},
      {"clamp", [](auto& v) { return clamp(v[0], -0.3f, 0.4f); }, {rnd({7}, 14)}},
      {"sum", [](auto& v) { return sum(v[0]); }, {rnd({2, 3}, 15)}},
      {"mean", [](auto& v) { return mean(v[0]); }, {rnd({2, 3}, 16)}},
      {"sum_channels", [](auto& v) { return sum_channels(v[0]); }, {rnd({2, 3, 2, 2}, 17)}},
      {"mean_channels", [](auto& v) { return mean_channels(v[0]); }, {rnd({2, 3, 2, 2}, 18)}},
      {"softmax_channels", [](auto& v) { return softmax_channels(v[0]); }, {rnd({2, 3, 2, 2}, 19)}},
      {"concat_channels", [](auto& v) { return concat_channels(v[0], v[1]); },
       {rnd({1, 2, 2, 3}, 20), rnd({1, 1, 2, 3}, 21)}},
      {"slice_channels", [](auto& v) { return slice_channels(v[0], 1, 3); }, {rnd({1, 4, 2, 2}, 22)}},
      {"conv2d", [](auto& v) { return conv2d(v[0], v[1], v[2]); },
       {rnd({2, 2, 4, 4}, 23), rnd({3, 2, 3, 3}, 24), rnd({3}, 25)}},
      {"batchnorm2d_train",
       [bn_state](auto& v) { return batchnorm2d(v[0], v[1], v[2], *bn_state, true); },
       {rnd({2, 3, 2, 2}, 26), rnd({3}, 27, 0.5f, 1.5f), rnd({3}, 28)}},
      {"batchnorm_relu2d_train",
       [bn_state](auto& v) { return batchnorm_relu2d(v[0], v[1], v[2], *bn_state); },
       {rnd({2, 3, 2, 2}, 41), rnd({3}, 42, 0.5f, 1.5f), rnd({3}, 43, -0.3f, 0.3f)}},
      {"batchnorm2d_eval",
       [bn_state](auto& v) { return batchnorm2d(v[0], v[1], v[2], *bn_state, false); },
       {rnd({2, 3, 2, 2}, 29), rnd({3}, 30, 0.5f, 1.5f), rnd({3}, 31)}},
      {"maxpool2d", [](auto& v) { return maxpool2d(v[0]); }, {rnd({1, 2, 4, 4}, 32)}},
      {"upsample_bilinear2x", [](auto& v) { return upsample_bilinear2x(v[0]); }, {rnd({1, 2, 3, 3}, 33)}},
      {"avg_pool2d", [](auto& v) { return avg_pool2d(v[0], 3); }, {rnd({1, 1, 4, 5}, 34)}},
      {"gaussian_blur", [](auto& v) { return gaussian_blur(v[0], 5, 1.0); }, {rnd({1, 2, 4, 4}, 35)}},
      {"matmul", [](auto& v) { return matmul(v[0], v[1]); }, {rnd({3, 4}, 36), rnd({4, 2}, 37)}},
      {"reshape", [](auto& v) { return square(v[0].reshape({3, 2})); }, {rnd({2, 3}, 38)}},
  };
  for (auto& c : cases) {
    CAPTURE(c.name);
    CHECK(max_grad_error(c.f, c.in, 99) < tol);
  }
}

TEST_CASE("ops: fused batch norm + ReLU equals batch norm then ReLU, gradients and statistics too") {
  const Tensor x0 = rnd({2, 3, 5, 4}, 51, -2.f, 3.f), gamma = rnd({3}, 52, 0.5f, 1.5f),
               beta = rnd({3}, 53, -0.5f, 0.5f), gy = rnd({2, 3, 5, 4}, 54);
  std::vector<std::vector<float>> results[2];
  for (int fused = 0; fused < 2; ++fused) {
    BatchNormState st{Tensor::full({3}, 0.25f), Tensor::full({3}, 2.f)};
    Tensor x = x0.clone().set_requires_grad(true), g = gamma.clone().set_requires_grad(true),
           b = beta.clone().set_requires_grad(true);
    Tensor y = fused ? batchnorm_relu2d(x, g, b, st) : relu(batchnorm2d(x, g, b, st, true));
    sum(mul(y, gy)).backward();
    results[fused] = {y.to_vector(), x.grad().to_vector(), g.grad().to_vector(), b.grad().to_vector(),
                      st.running_mean.to_vector(), st.running_var.to_vector()};
  }
  const char* what[] = {"y", "grad x", "grad gamma", "grad beta", "running mean", "running var"};
  int zeros = 0;
  for (float v : results[1][0]) zeros += v == 0.f;
  CHECK(zeros > 20);  // the mask matters: about half the 120 values are clipped
  CHECK(zeros < 100);
  for (size_t k = 0; k < 6; ++k) {
    CAPTURE(what[k]);
    REQUIRE(results[0][k].size() == results[1][k].size());
    for (size_t i = 0; i < results[0][k].size(); ++i)
      // The fused op computes z from the statistics rounded to float; the plain one in double.
      CHECK(results[1][k][i] == doctest::Approx(results[0][k][i]).epsilon(1e-5).scale(1.0));
  }
}

TEST_CASE("ops: inference-mode batch norm + ReLU in one pass equals the two ops, bit for bit") {
  const Tensor x = rnd({2, 3, 5, 4}, 61, -2.f, 3.f), gamma = rnd({3}, 62, 0.5f, 1.5f),
               beta = rnd({3}, 63, -0.5f, 0.5f);
  BatchNormState st{rnd({3}, 64, -0.5f, 0.5f), rnd({3}, 65, 0.5f, 2.f)};
  std::vector<float> fused, plain;
  {
    NoGradGuard no_grad;
    fused = batchnorm_relu2d_eval(x, gamma, beta, st).to_vector();
  }
  plain = relu(batchnorm2d(x, gamma, beta, st, false)).to_vector();
  CHECK(fused == plain);
  int zeros = 0;
  for (float v : fused) zeros += v == 0.f;
  CHECK((zeros > 10 && zeros < 110));
  // With a gradient to record it is the two ops, so the gradient flows.
  Tensor xg = x.clone().set_requires_grad(true);
  sum(batchnorm_relu2d_eval(xg, gamma, beta, st)).backward();
  CHECK(xg.grad().defined());
}

TEST_CASE("ops: batchnorm updates running statistics like PyTorch (unbiased variance)") {
  BatchNormState st{Tensor::zeros({1}), Tensor::full({1}, 1.f)};
  Tensor x = Tensor::from_vector({2, 1, 1, 2}, {1, 2, 3, 6});  // mean 3, biased var 3.5, unbiased 14/3
  Tensor y = batchnorm2d(x, Tensor::full({1}, 1.f), Tensor::zeros({1}), st, true);
  CHECK(st.running_mean.item() == doctest::Approx(0.3));
  CHECK(st.running_var.item() == doctest::Approx(0.9 + 0.1 * 14.0 / 3.0));
  CHECK(y.to_vector()[0] == doctest::Approx(-2 / std::sqrt(3.5 + 1e-5)));
}
}
