// Write-first gradients (kernels/runtime.h write_first_gradients(), nn/autograd.h fresh_gradient):
// with fresh buffers poisoned with NaN, every op that overwrites must write every element, and the
// gradients must equal zero-fill-and-add's. The gpu suite repeats it on the GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/runtime.h"
#include "nn/autograd.h"
#include "nn/networks.h"
#include "nn/ops.h"
#include "tests/test_util.h"

using namespace caf;

namespace {

// The switches for one scope; fresh buffers NaN-poisoned while write-first is on.
struct WriteFirstScope {
  bool old_write = write_first_gradients(), old_act = bf16_activations();
  Precision old_precision = precision();
  WriteFirstScope(bool write_first, Precision p, bool bf16_act) {
    set_write_first_gradients(write_first);
    set_poison_fresh_gradients(write_first);
    set_precision(p);
    set_bf16_activations(bf16_act);
  }
  ~WriteFirstScope() {
    set_write_first_gradients(old_write);
    set_poison_fresh_gradients(false);
    set_precision(old_precision);
    set_bf16_activations(old_act);
  }
};

std::vector<float> cat(std::vector<float> a, const std::vector<float>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Every overwriting op, in the situations that matter: a tensor with two consumers (max pooling
// and concatenation: the first to run writes, the second adds), max pooling of odd sizes (its
// uncovered last row and column must be written 0), upsampling, convolutions' input gradients,
// the fused batch norm + ReLU's; the gradients of the input and of every parameter.
std::vector<float> run_ops(Device d, bool write_first, Precision p, bool bf16_act) {
  WriteFirstScope scope(write_first, p, bf16_act);
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

bool finite(const std::vector<float>& v) {
  for (float e : v)
    if (!std::isfinite(e)) return false;
  return true;
}

void check_ops(Device d) {
  for (auto [p, act] : {std::pair{Precision::fp32, false}, {Precision::bf16, false}, {Precision::bf16, true}}) {
    CAPTURE(precision_name(p));
    CAPTURE(act);
    const std::vector<float> add = run_ops(d, false, p, act);
    const int64_t before = fresh_gradients_given();
    const std::vector<float> write = run_ops(d, true, p, act);
    // Fresh: the inputs of out, c's convolution (the concatenation), the three batch norms, the
    // concatenation's up, the upsampling's, b's convolution's (a pooling), the odd pooling's (b's
    // output), and s once for its three consumers: 10. (The square, mul and to_float32 add.)
    CHECK(fresh_gradients_given() - before == 10);
    CHECK(finite(write));
    CHECK(write == add);
  }
}

// Both networks, forward and backward, every parameter's gradient.
std::vector<float> run_networks(Device d, bool write_first, Precision p, bool bf16_act) {
  WriteFirstScope scope(write_first, p, bf16_act);
  ReconstructiveNet r(3, 3, 8);
  DiscriminativeNet s(6, 2, 8);
  r.params().finalize(d, 81);
  s.params().finalize(d, 82);
  const Tensor x = Tensor::uniform({2, 3, 32, 32}, 83, 0.f, 1.f, d);
  const Tensor rec = r.forward(x, true);
  const Tensor logits = s.forward(concat_channels(x, rec), true);
  add(mean(square(sub(rec, x))), mean(mul(logits, Tensor::randn(logits.shape(), 84, 0, 1, d)))).backward();
  return cat(r.params().grads_flat().to_vector(), s.params().grads_flat().to_vector());
}

void check_networks(Device d) {
  for (auto [p, act] : {std::pair{Precision::fp32, false}, {Precision::bf16, true}}) {
    CAPTURE(precision_name(p));
    CAPTURE(act);
    const std::vector<float> add = run_networks(d, false, p, act);
    const int64_t before = fresh_gradients_given();
    const std::vector<float> write = run_networks(d, true, p, act);
    CHECK(fresh_gradients_given() - before >= 100);  // 123 of R's and S's activation gradients (CPU)
    CHECK(finite(write));
    CHECK(write == add);
  }
}

}  // namespace

TEST_SUITE("nn") {
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
  check_ops(Device::cuda);
  check_networks(Device::cuda);
}
}
