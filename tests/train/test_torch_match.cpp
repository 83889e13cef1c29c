// The networks, losses, split-training step and Adam against PyTorch (tests/reference/nets.cafx,
// written by make_net_fixtures.py): R at width 8 and S at width 4, 32x32 images, batch 2, same
// initial weights and inputs. Tolerances, set once:
//  - step-0 losses: relative 1e-5. float32 sums in another order; PyTorch agrees with float64 to 5e-8.
//  - activations, gradients and batch statistics of step 0: max|caf - torch| / max|torch| per
//    tensor <= 2e-3. With batch 2 at 32x32 the deepest batch norms normalise 2 to 8 values per
//    channel, which amplifies rounding: the fixture script measured PyTorch float32 against
//    float64 at up to 2e-4 of the largest value.
//  - conv biases that feed batch norm in training mode have a zero gradient in exact arithmetic;
//    both sides hold rounding noise (PyTorch up to 2e-6), so they are checked to be below 1e-5.
//  - the first Adam step moves each element by lr * g / (|g| + eps'), i.e. by lr * sign(g) up to
//    1e-4 relative: where the step-0 gradient is at least 5% of its tensor's largest (sign certain
//    within the 2e-3 above) the parameters must agree to 1e-7 (a tenth of a percent of lr); all
//    others within 2 lr (a flipped sign). A missing or wrong update fails the first bound.
//  - steps 1 and 2 start from parameters that differ by those flips, which the near-singular batch
//    norms amplify: losses within 1e-4 relative, running statistics within 1e-2 of their largest.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "nn/autograd.h"
#include "nn/losses.h"
#include "nn/ops.h"
#include "tests/fixture.h"
#include "tests/test_util.h"
#include "train/model.h"

using namespace caf;
using namespace caf::test;

namespace {

const char* kRegen = "regenerate with: /usr/bin/python3 tests/reference/make_net_fixtures.py";

Tensor T(const Fixture& f, const std::string& name) {
  auto it = f.find(name);
  REQUIRE_MESSAGE(it != f.end(), "fixture lacks " << name << "; " << kRegen);
  return Tensor::from_vector(it->second.shape, it->second.data);
}

double rel_max(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, double(std::fabs(a[i] - ref[i])));
    den = std::max(den, double(std::fabs(ref[i])));
  }
  return den > 0 ? num / den : num;
}

ModelConfig fixture_config() {
  ModelConfig c;
  c.recon_width = 8;
  c.discr_width = 4;
  return c;
}

void load_init(Model& m, const Fixture& f) {
  for (ParamStore* s : {&m.recon.params(), &m.discr.params()})
    for (auto& entry : s->named_tensors()) {  // no structured bindings: doctest's macros capture
      const std::string& name = entry.first;
      Tensor& t = entry.second;
      Tensor src = T(f, "init/" + name);
      REQUIRE_MESSAGE(src.shape() == t.shape(), name << ": fixture shape differs; " << kRegen);
      t.copy_(src);
    }
}

// Conv biases followed by batch norm: "<module>.<i>.bias" where "<module>.<i+1>" is a batch norm.
std::set<std::string> bn_cancelled_biases(const Model& m) {
  std::set<std::string> names, all;
  for (const ParamStore* s : {&m.recon.params(), &m.discr.params()})
    for (auto& [n, t] : s->named_tensors()) all.insert(n);
  for (const auto& n : all) {
    if (n.size() < 5 || n.compare(n.size() - 5, 5, ".bias") != 0) continue;
    std::string stem = n.substr(0, n.size() - 5);
    size_t dot = stem.rfind('.');
    std::string next = stem.substr(0, dot + 1) + std::to_string(std::stoi(stem.substr(dot + 1)) + 1);
    if (all.count(next + ".running_mean")) names.insert(n);
  }
  return names;
}

SplitBatch inputs(const Fixture& f, int k, Device d) {
  const std::string p = "step" + std::to_string(k) + "/";
  return {T(f, p + "x_clean").to(d), T(f, p + "x_aug").to(d), T(f, p + "y_aug").to(d),
          T(f, p + "y_mask").to(d)};
}

void match_step0(Device d) {
  Fixture f = load_fixture(fixture_dir() + "/nets.cafx", kRegen);
  Model m(fixture_config(), d);
  load_init(m, f);
  SplitBatch b = inputs(f, 0, d);
  // The split step's computation, spelled out to reach its intermediates (train/model.cpp).
  Tensor rec_x = m.recon.forward(b.x_aug, true);
  Tensor l2 = l2_loss(rec_x, b.x_clean), ssim = ssim_loss(rec_x, b.x_clean);
  Tensor rec_y;
  {
    NoGradGuard no_grad;
    rec_y = m.recon.forward(b.y_aug, false);
  }
  Tensor logits = m.discr.forward(concat_channels(b.y_aug, rec_y), true);
  Tensor focal = focal_loss(logits, b.y_mask);
  CHECK(rel_max(rec_x.to_vector(), T(f, "step0/rec_x").to_vector()) < 2e-3);
  CHECK(rel_max(rec_y.to_vector(), T(f, "step0/rec_y").to_vector()) < 2e-3);
  CHECK(rel_max(logits.to_vector(), T(f, "step0/logits").to_vector()) < 2e-3);
  CHECK(l2.item() == doctest::Approx(T(f, "step0/loss_l2").item()).epsilon(1e-5));
  CHECK(ssim.item() == doctest::Approx(T(f, "step0/loss_ssim").item()).epsilon(1e-5));
  CHECK(focal.item() == doctest::Approx(T(f, "step0/loss_focal").item()).epsilon(1e-5));
  add(add(l2, ssim), focal).backward();
  const std::set<std::string> noise = bn_cancelled_biases(m);
  CHECK(noise.size() == 49);  // every conv but the two output convs
  int checked = 0;
  for (const ParamStore* s : {&m.recon.params(), &m.discr.params()})
    for (size_t i = 0; i < s->param_names().size(); ++i) {
      const std::string& name = s->param_names()[i];
      CAPTURE(name);
      std::vector<float> g = s->param(int(i)).grad().to_vector(), ref = T(f, "step0/grad/" + name).to_vector();
      if (noise.count(name)) {
        for (size_t k = 0; k < g.size(); ++k) {
          CHECK(std::fabs(g[k]) < 1e-5);
          CHECK(std::fabs(ref[k]) < 1e-5);
        }
      } else {
        CHECK(rel_max(g, ref) < 2e-3);
      }
      ++checked;
    }
  CHECK(checked == 200);
}

void match_three_steps(Device d) {
  Fixture f = load_fixture(fixture_dir() + "/nets.cafx", kRegen);
  Model m(fixture_config(), d);
  load_init(m, f);
  const std::set<std::string> noise = bn_cancelled_biases(m);
  constexpr float kLr = 1e-4f;
  for (int k = 0; k < 3; ++k) {
    CAPTURE(k);
    auto v = split_step(m, inputs(f, k, d)).values();
    const std::string p = "step" + std::to_string(k) + "/loss_";
    for (const char* l : {"l2", "ssim", "focal", "total"})
      CHECK(v[l] == doctest::Approx(T(f, p + l).item()).epsilon(k == 0 ? 1e-5 : 1e-4));
    if (k != 0) continue;
    int64_t certain = 0, total = 0;
    for (const ParamStore* s : {&m.recon.params(), &m.discr.params()})
      for (auto& entry : s->named_tensors()) {
        const std::string& name = entry.first;
        const Tensor& t = entry.second;
        CAPTURE(name);
        std::vector<float> ours = t.to_vector(), ref = T(f, "step0/after/" + name).to_vector();
        if (name.find("running_") != std::string::npos) {
          CHECK(rel_max(ours, ref) < 2e-3);
          continue;
        }
        std::vector<float> g0 = T(f, "step0/grad/" + name).to_vector();
        float gmax = 0;
        for (float g : g0) gmax = std::max(gmax, std::fabs(g));
        for (size_t e = 0; e < ours.size(); ++e) {
          ++total;
          const bool sure = !noise.count(name) && std::fabs(g0[e]) >= 0.05f * gmax;
          certain += sure;
          const float bound = sure ? 1e-7f : 2.0001f * kLr;
          if (std::fabs(ours[e] - ref[e]) > bound) {
            FAIL_CHECK("element " << e << ": caf " << ours[e] << ", torch " << ref[e]);
            break;
          }
        }
      }
    MESSAGE("first Adam step: " << certain << " of " << total << " parameters with a certain sign");
  }
  for (const ParamStore* s : {&m.recon.params(), &m.discr.params()})
    for (auto& entry : s->named_tensors())
      if (entry.first.find("running_") != std::string::npos) {
        const std::string& name = entry.first;
        const Tensor& t = entry.second;
        CAPTURE(name);
        CHECK(rel_max(t.to_vector(), T(f, "final/" + name).to_vector()) < 1e-2);
      }
}

}  // namespace

TEST_SUITE("train") {
TEST_CASE("torch match: step 0 activations, losses and every parameter gradient") {
  match_step0(Device::cpu);
}
TEST_CASE("torch match: three split-training steps with Adam") { match_three_steps(Device::cpu); }
}

TEST_SUITE("gpu") {
TEST_CASE("gpu: torch match of step 0 (cuDNN, cuBLAS and caf's kernels against PyTorch)") {
  CAF_NEED_GPU();
  match_step0(Device::cuda);
}
TEST_CASE("gpu: torch match of three split-training steps with Adam") {
  CAF_NEED_GPU();
  match_three_steps(Device::cuda);
}
}
