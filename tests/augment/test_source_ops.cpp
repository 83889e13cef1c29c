// The 10 source-texture operations (METHOD 4.2) against closed-form cases, run through the same
// stage pass (histogram, tables, per-pixel) that the batch simulation uses.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "augment/simulate.h"
#include "kernels/host_rng.h"

using namespace caf;

namespace {

using Bytes = std::vector<uint8_t>;
constexpr int64_t kH = 32, kW = 40, kPlane = kH * kW;

// Applies one operation with the given parameters to a planar 3 x kH x kW image.
Bytes apply(SourceOp op, std::vector<float> params, const Bytes& in, int64_t h = kH, int64_t w = kW) {
  SamplePlan plan{};
  plan.generator = Generator::opaque;
  plan.ops[0] = op;
  params.resize(3, 0.f);
  for (int i = 0; i < 3; ++i) plan.op_params[0][i] = params[size_t(i)];
  std::vector<int32_t> hist(3 * 256);
  Bytes lut(3 * 256), out(in.size(), 0xAB);
  SimulateArgs a;
  a.n = 1;
  a.plan.height = h;
  a.plan.width = w;
  a.plans = &plan;
  a.hist = hist.data();
  a.lut = lut.data();
  cpu::source_stage(a, 0, in.data(), false, out.data());
  return out;
}

Bytes random_image(uint64_t seed, int lo = 0, int hi = 255) {
  HostRng rng(seed);
  Bytes b(3 * kPlane);
  for (auto& v : b) v = uint8_t(lo + int(rng.uniform() * (hi - lo + 1)));
  return b;
}

int max_diff(const Bytes& a, const Bytes& b) {
  int m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(int(a[i]) - int(b[i])));
  return m;
}

}  // namespace

TEST_SUITE("augment") {
TEST_CASE("source ops: lookup-table operations in closed form") {
  const Bytes x = random_image(1);
  CHECK(apply(SourceOp::invert, {}, apply(SourceOp::invert, {}, x)) == x);
  CHECK(apply(SourceOp::invert, {}, x)[7] == 255 - x[7]);
  CHECK(apply(SourceOp::posterize, {8}, x) == x);
  for (uint8_t v : apply(SourceOp::posterize, {1}, x)) CHECK((v == 0 || v == 128));
  CHECK(apply(SourceOp::posterize, {3}, x)[5] == (x[5] & 0xE0));
  CHECK(apply(SourceOp::gamma, {1, 1, 1}, x) == x);
  // Gamma per channel: 255 (v / 255)^g, rounded.
  Bytes g = apply(SourceOp::gamma, {2.f, 0.5f, 1.f}, Bytes(3 * kPlane, 128));
  CHECK(g[0] == 64);                                  // 255 * (128/255)^2 = 64.25
  CHECK(g[kPlane] == 181);                            // 255 * (128/255)^0.5 = 180.67
  CHECK(g[2 * kPlane] == 128);
  // Solarize: applied (p[0] = 1) inverts values at or above the threshold; p[0] = 0 is a no-op.
  Bytes s_in(3 * kPlane, 100);
  s_in[0] = 200;
  s_in[1] = 64;
  const Bytes s = apply(SourceOp::solarize, {1, 64}, s_in);
  CHECK(s[0] == 55);
  CHECK(s[1] == 191);
  CHECK(s[2] == 155);
  CHECK(apply(SourceOp::solarize, {0, 64}, s_in) == s_in);
}

TEST_CASE("source ops: autocontrast stretches, equalisation flattens the cumulative histogram") {
  // Values 50..150 with no cutoff stretch onto 0..255.
  const Bytes x = random_image(2, 50, 150);
  const Bytes a = apply(SourceOp::autocontrast, {0}, x);
  for (size_t i = 0; i < x.size(); ++i) {
    CHECK(int(a[i]) == std::min(255, int(float(x[i] - 50) * (255.f / 100.f))));
  }
  // A flat channel is unchanged.
  CHECK(apply(SourceOp::autocontrast, {10}, Bytes(3 * kPlane, 77)) == Bytes(3 * kPlane, 77));
  // A cutoff ignores outliers: a few pixels at 0 and 255 no longer pin the range.
  Bytes y = random_image(3, 100, 140);
  y[0] = 0;
  y[1] = 255;
  const Bytes b = apply(SourceOp::autocontrast, {5}, y);
  CHECK(*std::min_element(b.begin(), b.begin() + kPlane) == 0);
  int at_ends = 0;
  for (int64_t i = 0; i < kPlane; ++i) at_ends += b[size_t(i)] == 0 || b[size_t(i)] == 255;
  CHECK(at_ends > kPlane / 20);  // the cut 5% at each end saturate

  // Equalisation of a skewed channel (most values dark): the output's cumulative histogram is
  // close to the straight line (v + 1) / 256, while the input's is far from it.
  HostRng rng(4);
  Bytes z(3 * kPlane);
  for (auto& v : z) v = uint8_t(255.0 * std::pow(rng.uniform(), 3.0));
  const Bytes e = apply(SourceOp::equalize, {}, z);
  auto line_distance = [](const Bytes& img, int c, double* largest_bin) {
    std::vector<int64_t> h(256);
    for (int64_t i = 0; i < kPlane; ++i) ++h[img[size_t(c * kPlane + i)]];
    double cum = 0, worst = 0;
    *largest_bin = 0;
    for (int v = 0; v < 256; ++v) {
      cum += double(h[size_t(v)]) / double(kPlane);
      *largest_bin = std::max(*largest_bin, double(h[size_t(v)]) / double(kPlane));
      worst = std::max(worst, std::fabs(cum - double(v + 1) / 256.0));
    }
    return worst;
  };
  for (int c = 0; c < 3; ++c) {
    double in_bin = 0, out_bin = 0;
    const double before = line_distance(z, c, &in_bin), after = line_distance(e, c, &out_bin);
    CHECK(before > 0.3);
    // Equalisation cannot split a bin: the distance is bounded by the largest input bin (value 0
    // holds ~16% here) plus one output level; elsewhere the line is followed closely.
    CHECK(after <= in_bin + 1.0 / 256 + 1e-9);
    CHECK(out_bin == doctest::Approx(in_bin));
  }
  // 64 equally likely levels on a 256 x 256 image (PIL's integer step is exact enough there):
  // the output follows the line within one input bin (1/64) and one output level.
  HostRng rng2(8);
  Bytes u(3 * 256 * 256);
  for (auto& v : u) v = uint8_t(rng2.uniform() * 64);
  const Bytes e2 = apply(SourceOp::equalize, {}, u, 256, 256);
  for (int c = 0; c < 3; ++c) {
    std::vector<int64_t> h(256);
    for (int64_t i = 0; i < 256 * 256; ++i) ++h[e2[size_t(c * 256 * 256 + i)]];
    double cum = 0, worst = 0;
    for (int v = 0; v < 256; ++v) {
      cum += double(h[size_t(v)]) / 65536.0;
      worst = std::max(worst, std::fabs(cum - double(v + 1) / 256.0));
    }
    CHECK(worst < 1.0 / 64 + 1.0 / 256 + 0.005);
  }
  CHECK(*std::max_element(e2.begin(), e2.end()) > 240);  // 0..63 spread over 0..255
}

TEST_CASE("source ops: pixel and neighbourhood operations") {
  const Bytes x = random_image(5);
  CHECK(apply(SourceOp::brightness, {1.f, 0.f}, x) == x);
  Bytes gray(3 * kPlane, 100);
  CHECK(apply(SourceOp::brightness, {1.f, 30.f}, gray) == Bytes(3 * kPlane, 130));
  CHECK(apply(SourceOp::brightness, {1.2f, 0.f}, gray) == Bytes(3 * kPlane, 120));
  CHECK(apply(SourceOp::brightness, {1.f, 200.f}, gray) == Bytes(3 * kPlane, 255));  // clamped

  CHECK(apply(SourceOp::hue_saturation, {0.f, 0.f}, x) == x);
  CHECK(max_diff(apply(SourceOp::hue_saturation, {255.f, 0.f}, x), x) <= 1);  // a full turn
  CHECK(apply(SourceOp::hue_saturation, {40.f, 0.f}, gray) == gray);          // gray has no hue
  // Saturation -255 makes every pixel gray at its maximum channel (the HSV value).
  const Bytes desat = apply(SourceOp::hue_saturation, {0.f, -255.f}, x);
  for (int64_t i = 0; i < kPlane; ++i) {
    const uint8_t mx = std::max({x[size_t(i)], x[size_t(kPlane + i)], x[size_t(2 * kPlane + i)]});
    for (int c = 0; c < 3; ++c) CHECK(desat[size_t(c * kPlane + i)] == mx);
  }
  // Pure red turned by a third of a turn (85 of 255) becomes pure green.
  Bytes red(3 * kPlane, 0);
  std::fill(red.begin(), red.begin() + kPlane, uint8_t(200));
  const Bytes green = apply(SourceOp::hue_saturation, {85.f, 0.f}, red);
  CHECK(green[0] == 0);
  CHECK(green[kPlane] == 200);
  CHECK(green[2 * kPlane] == 0);

  CHECK(apply(SourceOp::sharpness, {1.f}, x) == x);
  CHECK(apply(SourceOp::sharpness, {0.f}, gray) == gray);
  // An impulse of 130 on 0: smoothing gives 5 * 130 / 13 = 50 at the centre and 10 beside it;
  // factor 2 sharpens to 2 * 130 - 50 = 210 and clamps the neighbours' -10 to 0.
  Bytes imp(3 * kPlane, 0);
  imp[size_t(10 * kW + 10)] = 130;
  const Bytes smooth = apply(SourceOp::sharpness, {0.f}, imp), sharp = apply(SourceOp::sharpness, {2.f}, imp);
  CHECK(smooth[size_t(10 * kW + 10)] == 50);
  CHECK(smooth[size_t(10 * kW + 11)] == 10);
  CHECK(sharp[size_t(10 * kW + 10)] == 210);
  CHECK(sharp[size_t(10 * kW + 11)] == 0);

  CHECK(apply(SourceOp::rotate, {1.f, 0.f}, x) == x);
}

TEST_CASE("source ops: a quarter turn of a square image is an exact permutation") {
  // On a square image cos = 0, sin = 1 maps output (i, j) to input (W - 1 - j, i).
  constexpr int64_t S = kH;
  const Bytes pool = random_image(6);
  const Bytes in(pool.begin(), pool.begin() + 3 * S * S);
  const Bytes out = apply(SourceOp::rotate, {0.f, 1.f}, in, S, S);
  int wrong = 0;
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < S; ++j)
        wrong += out[size_t(c * S * S + i * S + j)] != in[size_t(c * S * S + (S - 1 - j) * S + i)];
  CHECK(wrong == 0);
}

TEST_CASE("source ops: drawn parameters follow METHOD 4.2") {
  PlanSettings s;
  s.seed = 9;
  s.texture_count = 7;
  s.enabled[2] = 0;
  s.p_anomaly = 1.f;
  int seen[kSourceOpCount] = {}, first[kSourceOpCount] = {}, textures[7] = {};
  int solarized = 0, solarize_total = 0;
  for (uint32_t n = 0; n < 3000; ++n) {
    const SamplePlan p = plan_sample(s, n);
    REQUIRE(uses_texture(p));
    std::set<int> distinct;
    for (int k = 0; k < kSourceOpsPerSample; ++k) {
      distinct.insert(int(p.ops[k]));
      seen[int(p.ops[k])]++;
      const float* q = p.op_params[k];
      switch (p.ops[k]) {
        case SourceOp::gamma:
          for (int c = 0; c < 3; ++c) CHECK((q[c] >= 0.5f && q[c] < 2.f));
          break;
        case SourceOp::brightness:
          CHECK((q[0] >= 0.8f && q[0] < 1.2f && q[1] >= -30.f && q[1] < 30.f));
          break;
        case SourceOp::sharpness: CHECK((q[0] >= 0.f && q[0] < 2.f)); break;
        case SourceOp::hue_saturation:
          CHECK((q[0] >= -50.f && q[0] < 50.f && q[1] >= -50.f && q[1] < 50.f));
          break;
        case SourceOp::solarize:
          CHECK((q[1] >= 32.f && q[1] < 128.f));
          solarized += q[0] != 0.f;
          ++solarize_total;
          break;
        case SourceOp::posterize: CHECK((q[0] >= 1.f && q[0] <= 8.f && q[0] == std::floor(q[0]))); break;
        case SourceOp::autocontrast: CHECK((q[0] >= 0.f && q[0] < 20.f)); break;
        case SourceOp::rotate:
          CHECK(q[0] >= std::cos(0.7854f) - 1e-6f);  // |angle| <= 45 degrees
          CHECK(std::fabs(q[0] * q[0] + q[1] * q[1] - 1.f) < 1e-6f);
          break;
        default: break;
      }
    }
    CHECK(distinct.size() == 3);
    first[int(p.ops[0])]++;
    REQUIRE((p.texture >= 0 && p.texture < 7));
    textures[p.texture]++;
  }
  // 9000 draws over 10 operations: 900 each; 3000 first places: 300 each; 3000 over 7 textures.
  for (int c : seen) CHECK((c > 780 && c < 1020));
  for (int c : first) CHECK((c > 220 && c < 380));
  for (int c : textures) CHECK((c > 340 && c < 520));
  CHECK(std::abs(solarized - solarize_total / 2) < solarize_total / 8);
}
}
