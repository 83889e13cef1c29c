#include <doctest/doctest.h>

#include <functional>

#include "kernels/error.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"
#include "nn/autograd.h"
#include "nn/ops.h"

using namespace caf;

TEST_SUITE("nn") {
TEST_CASE("autograd: chain rule on a known function") {
  // L = sum((a*b + a)^2): dL/da = 2(ab + a)(b + 1), dL/db = 2(ab + a) a
  Tensor a = Tensor::from_vector({3}, {1, -2, 0.5}).set_requires_grad(true);
  Tensor b = Tensor::from_vector({3}, {3, 0.25, -1}).set_requires_grad(true);
  Tensor loss = sum(square(add(mul(a, b), a)));
  CHECK(loss.item() == doctest::Approx(16 + 6.25 + 0));
  loss.backward();
  std::vector<float> ga = a.grad().to_vector(), gb = b.grad().to_vector();
  float av[] = {1, -2, 0.5}, bv[] = {3, 0.25, -1};
  for (int i = 0; i < 3; ++i) {
    float u = av[i] * bv[i] + av[i];
    CHECK(ga[i] == doctest::Approx(2 * u * (bv[i] + 1)));
    CHECK(gb[i] == doctest::Approx(2 * u * av[i]));
  }
}

TEST_CASE("autograd: gradients accumulate over uses and over backward calls") {
  Tensor x = Tensor::from_vector({2}, {1, 2}).set_requires_grad(true);
  sum(add(x, x)).backward();  // x used twice in one graph
  CHECK(x.grad().to_vector() == std::vector<float>{2, 2});
  sum(scale(x, 3)).backward();  // a second graph adds to the leaf's gradient
  CHECK(x.grad().to_vector() == std::vector<float>{5, 5});
  x.zero_grad();
  CHECK(x.grad().to_vector() == std::vector<float>{0, 0});
}

TEST_CASE("autograd: no-grad guard, detach and leaves without gradients") {
  Tensor x = Tensor::from_vector({2}, {1, 2}).set_requires_grad(true);
  Tensor c = Tensor::from_vector({2}, {3, 4});
  {
    NoGradGuard guard;
    Tensor y = mul(x, c);
    CHECK(!y.requires_grad());
    CHECK(!grad_enabled());
  }
  CHECK(grad_enabled());
  Tensor d = mul(x, c).detach();
  CHECK(!d.requires_grad());
  CHECK(d.to_vector() == std::vector<float>{3, 8});
  Tensor y = sum(mul(x, c));
  y.backward();
  CHECK(!c.grad().defined());  // constants get no gradient buffer
  CHECK(x.grad().to_vector() == std::vector<float>{3, 4});
  CHECK_THROWS_AS(sum(c).backward(), Error);
}

TEST_CASE("autograd: saved tensors are freed after backward; a second backward fails clearly") {
  Tensor x = Tensor::randn({64, 64}, 1).set_requires_grad(true);
  Tensor h = relu(x);
  std::weak_ptr<Storage> saved = h.storage();  // relu saves its output
  Tensor loss = mean(h);
  h = Tensor();
  CHECK(!saved.expired());
  loss.backward();
  CHECK(saved.expired());
  try {
    loss.backward();
    FAIL("expected an Error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("second time") != std::string::npos);
  }
}

TEST_CASE("autograd: ops keep only what their backward reads (relu frees its input)") {
  // conv -> batch norm -> relu, as in every block of both networks: the batch norm's output is
  // read by nobody's backward (relu's gradient needs only its own output), so it is freed as soon
  // as the forward code drops it, as PyTorch's in-place ReLU achieves.
  Tensor x = Tensor::randn({2, 3, 8, 8}, 1).set_requires_grad(true);
  Tensor g = Tensor::full({3}, 1.f).set_requires_grad(true), b = Tensor::zeros({3}).set_requires_grad(true);
  BatchNormState st{Tensor::zeros({3}), Tensor::full({3}, 1.f), 0.1f, 1e-5f};
  Tensor bn = batchnorm2d(x, g, b, st, true);
  std::weak_ptr<Storage> bn_out = bn.storage();
  Tensor y = relu(bn);
  std::weak_ptr<Storage> relu_out = y.storage();
  bn = Tensor();
  CHECK(bn_out.expired());      // relu did not keep its input
  Tensor sq = square(y);        // square's gradient reads its input: y stays alive through it
  const std::vector<float> yv = y.to_vector();
  y = Tensor();
  CHECK(!relu_out.expired());
  Tensor loss = mean(sq);
  loss.backward();
  CHECK(relu_out.expired());
  // The gradient still flows through relu by its output: d mean(relu(bn)^2) / d beta_c is
  // 2 * sum over channel c's pixels of relu(bn) / numel (the path through the batch statistics
  // does not touch beta).
  const std::vector<float> gb = b.grad().to_vector();
  for (int c = 0; c < 3; ++c) {
    double expect = 0;
    for (int n = 0; n < 2; ++n)
      for (int i = 0; i < 64; ++i) expect += 2.0 * yv[size_t((n * 3 + c) * 64 + i)] / 384.0;
    CHECK(gb[size_t(c)] == doctest::Approx(expect).epsilon(1e-5));
  }
}

namespace {
// Puts recompute_activations() back to its default (on) when a test leaves, however it leaves.
struct RecomputeDefault {
  ~RecomputeDefault() { set_recompute_activations(true); }
};
}  // namespace

TEST_CASE("autograd: a convolution recomputes a fused batch norm + ReLU input instead of keeping it") {
  RecomputeDefault restore;
  auto run = [](bool recompute, bool* freed) {
    set_recompute_activations(recompute);
    Tensor x = Tensor::randn({2, 3, 8, 8}, 1).set_requires_grad(true);
    Tensor w = Tensor::randn({4, 3, 3, 3}, 2, 0.f, 0.3f).set_requires_grad(true);
    Tensor g = Tensor::full({3}, 1.f).set_requires_grad(true), b = Tensor::full({3}, 0.1f).set_requires_grad(true);
    BatchNormState st{Tensor::zeros({3}), Tensor::full({3}, 1.f), 0.1f, 1e-5f};
    Tensor y = batchnorm_relu2d(x, g, b, st);
    std::weak_ptr<Storage> y_storage = y.storage();
    Tensor loss = mean(square(conv2d(y, w, Tensor())));
    y = Tensor();
    *freed = y_storage.expired();
    loss.backward();
    std::vector<float> out = w.grad().to_vector(), gx = x.grad().to_vector();
    out.insert(out.end(), gx.begin(), gx.end());
    return out;
  };
  bool freed_recompute = false, freed_keep = true;
  const std::vector<float> a = run(true, &freed_recompute), b = run(false, &freed_keep);
  CHECK(freed_recompute);  // only the recipe (batch norm's input and statistics) is kept
  CHECK(!freed_keep);
  CHECK(a == b);  // the weight gradient from the recomputed input, bit for bit
}

TEST_CASE("autograd: upsampled, pooled and concatenated recomputable inputs are recomputed too") {
  RecomputeDefault restore;
  auto run = [](bool recompute, int* freed) {
    set_recompute_activations(recompute);
    Tensor x = Tensor::randn({2, 3, 8, 8}, 3).set_requires_grad(true);
    Tensor w = Tensor::randn({4, 6, 3, 3}, 4, 0.f, 0.3f).set_requires_grad(true);
    Tensor g = Tensor::full({3}, 1.f).set_requires_grad(true), b = Tensor::full({3}, 0.1f).set_requires_grad(true);
    BatchNormState st{Tensor::zeros({3}), Tensor::full({3}, 1.f), 0.1f, 1e-5f};
    Tensor y = batchnorm_relu2d(x, g, b, st);
    Tensor up = upsample_bilinear2x(maxpool2d(y));  // 8x8 -> 4x4 -> 8x8
    Tensor cat = concat_channels(up, y);             // what S's decoder feeds its convolutions
    std::weak_ptr<Storage> s_up = up.storage(), s_cat = cat.storage(), s_y = y.storage();
    Tensor loss = mean(square(conv2d(cat, w, Tensor())));
    y = up = cat = Tensor();
    *freed = int(s_up.expired()) + int(s_cat.expired()) + int(s_y.expired());
    loss.backward();
    std::vector<float> out = w.grad().to_vector(), gx = x.grad().to_vector();
    out.insert(out.end(), gx.begin(), gx.end());
    return out;
  };
  int freed_recompute = 0, freed_keep = 0;
  const std::vector<float> a = run(true, &freed_recompute), b = run(false, &freed_keep);
  CHECK(freed_recompute == 3);  // the convolution keeps the recipe chain only
  CHECK(freed_keep == 1);       // the convolution keeps the concatenation, max pooling keeps y
  CHECK(a == b);
}

TEST_CASE("autograd: backward needs a scalar; set_requires_grad only on leaves") {
  Tensor x = Tensor::from_vector({2}, {1, 2}).set_requires_grad(true);
  CHECK_THROWS_AS(square(x).backward(), Error);
  Tensor y = square(x);
  CHECK(!y.is_leaf());
  CHECK_THROWS_AS(y.set_requires_grad(true), Error);
}

TEST_CASE("autograd: a gradient buffer installed by set_grad receives the gradient (slabs)") {
  auto slab = std::make_shared<Storage>();
  slab->buffer = Buffer(Device::cpu, 8 * sizeof(float));
  Tensor grads = Tensor::view_of(slab, 0, {8}, DType::f32, Device::cpu);
  grads.zero_();
  Tensor w = Tensor::from_vector({4}, {1, 2, 3, 4}).set_requires_grad(true);
  w.set_grad(Tensor::view_of(slab, 4, {4}, DType::f32, Device::cpu));
  sum(square(w)).backward();
  CHECK(grads.to_vector() == std::vector<float>{0, 0, 0, 0, 2, 4, 6, 8});
}

TEST_CASE("ops: shape and type errors name the tensors") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 2});
  try {
    add(a, b);
    FAIL("expected a ShapeError");
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()).find("[2, 3]") != std::string::npos);
    CHECK(std::string(e.what()).find("[3, 2]") != std::string::npos);
  }
  CHECK_THROWS_AS(conv2d(Tensor::zeros({1, 3, 4, 4}), Tensor::zeros({2, 4, 3, 3}), Tensor()), ShapeError);
  CHECK_THROWS_AS(matmul(a, a), ShapeError);
  CHECK_THROWS_AS(relu(Tensor::from_bytes({1}, {1})), ShapeError);
  CHECK_THROWS_AS(slice_channels(Tensor::zeros({1, 3, 2, 2}), 2, 5), ShapeError);
}
}
