// Metrics against scikit-learn and the MVTec AD AU-PRO definition (tests/reference/metrics.json,
// written by make_metric_fixtures.py), their error paths, their speed at MVTec pixel scale, and
// the figures of train/plot.h.
//
// Tolerances, set once:
//  - AUROC, AP, AU-PRO and curve points: 1e-9 absolute. Both sides compute in double from the
//    same float32 scores and ties; they differ only in summation order and in caf's exact
//    integer area for AUROC, i.e. by a few ulps (1e-15) on fixtures of at most 3072 samples.
//  - image_score: 1e-7 relative. caf sums in double but returns a float, which rounds the
//    double result by at most 2^-24 (6e-8) of its value.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "kernels/error.h"
#include "tests/fixture.h"
#include "train/metrics.h"
#include "train/plot.h"

using namespace caf;

namespace {

const char* kRegen = "regenerate with: /usr/bin/python3 tests/reference/make_metric_fixtures.py";
constexpr double kTol = 1e-9;

nlohmann::json load_metrics_fixture() {
  const std::string path = test::fixture_dir() + "/metrics.json";
  std::ifstream f(path);
  REQUIRE_MESSAGE(f.good(), "cannot open " << path << "; " << kRegen);
  return nlohmann::json::parse(f);
}

std::vector<float> floats(const nlohmann::json& j) {
  std::vector<float> v;
  for (const auto& x : j) v.push_back(float(x.get<double>()));  // exact: values are float32
  return v;
}

std::vector<uint8_t> bytes(const nlohmann::json& j) {
  std::vector<uint8_t> v;
  for (const auto& x : j) v.push_back(uint8_t(x.get<int>()));
  return v;
}

double max_diff(const std::vector<double>& a, const nlohmann::json& ref) {
  REQUIRE(a.size() == ref.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - ref[i].get<double>()));
  return d;
}

// Uniform floats in [0, 1) from a seeded engine (24 random bits each).
std::vector<float> uniform(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(rng() >> 40) * 0x1p-24f;
  return v;
}

// The Mann-Whitney statistic, P(s+ > s-) + P(s+ = s-) / 2 over all pairs: AUROC by definition.
double auroc_brute_force(const std::vector<float>& s, const std::vector<uint8_t>& l) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i)
    for (size_t j = 0; l[i] && j < s.size(); ++j) {
      if (l[j]) continue;
      wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
      pairs += 1;
    }
  return wins / pairs;
}

template <class Exc, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const Exc& e) {
    return e.what();
  }
  FAIL("no exception of the expected type");
  return {};
}

}  // namespace

TEST_SUITE("train") {

TEST_CASE("metrics: AUROC, AP and curves equal scikit-learn on the fixture cases") {
  const auto fx = load_metrics_fixture();
  double worst_auroc = 0, worst_ap = 0, worst_curve = 0;
  for (const auto& c : fx.at("binary")) {
    CAPTURE(c.at("name").get<std::string>());
    const auto s = floats(c.at("scores"));
    const auto l = bytes(c.at("labels"));
    const double da = std::fabs(auroc(s, l) - c.at("auroc").get<double>());
    const double dp = std::fabs(average_precision(s, l) - c.at("ap").get<double>());
    CHECK(da <= kTol);
    CHECK(dp <= kTol);
    worst_auroc = std::max(worst_auroc, da);
    worst_ap = std::max(worst_ap, dp);
    if (!c.contains("roc_x")) continue;
    const Curve roc = roc_curve(s, l, 1 << 20), pr = pr_curve(s, l, 1 << 20);  // unthinned
    for (double d : {max_diff(roc.x, c.at("roc_x")), max_diff(roc.y, c.at("roc_y")),
                     max_diff(pr.x, c.at("pr_x")), max_diff(pr.y, c.at("pr_y"))}) {
      CHECK(d <= kTol);
      worst_curve = std::max(worst_curve, d);
    }
  }
  MESSAGE("max |caf - sklearn|: AUROC " << worst_auroc << ", AP " << worst_ap << ", curve points "
                                        << worst_curve);
}

TEST_CASE("metrics: AU-PRO equals the MVTec AD definition on the fixture case") {
  const auto fx = load_metrics_fixture().at("au_pro");
  const int h = fx.at("height"), w = fx.at("width");
  const auto maps = floats(fx.at("maps"));
  const auto masks = bytes(fx.at("masks"));
  const size_t hw = size_t(h) * size_t(w), n = maps.size() / hw;
  std::vector<const float*> mp;
  std::vector<const uint8_t*> mk;
  for (size_t i = 0; i < n; ++i) {
    mp.push_back(maps.data() + i * hw);
    mk.push_back(masks.data() + i * hw);
  }
  double worst = 0;
  for (size_t k = 0; k < fx.at("limits").size(); ++k) {
    const double limit = fx.at("limits")[k], ref = fx.at("au_pro")[k];
    const double d = std::fabs(au_pro(mp, mk, h, w, limit) - ref);
    CAPTURE(limit);
    CHECK(d <= kTol);
    worst = std::max(worst, d);
  }
  MESSAGE("max |caf - MVTec AU-PRO|: " << worst);
  // The fixture's first mask has two blocks touching only at a corner: a 4-connected labelling
  // moves AU-PRO at 0.3 by more than 1e-3 (the script asserts it). Masks of 255s count as 1s.
  std::vector<uint8_t> masks255(masks);
  for (uint8_t& m : masks255) m = uint8_t(m * 255);
  std::vector<const uint8_t*> mk255;
  for (size_t i = 0; i < n; ++i) mk255.push_back(masks255.data() + i * hw);
  CHECK(std::fabs(au_pro(mp, mk255, h, w, 0.3) - fx.at("au_pro")[0].get<double>()) <= kTol);
}

TEST_CASE("metrics: image_score equals scipy's zero-padded uniform filter maximum") {
  const auto fx = load_metrics_fixture();
  double worst = 0;
  for (const auto& c : fx.at("image_score")) {
    const auto m = floats(c.at("map"));
    const double ref = c.at("score");
    const double rel = std::fabs(image_score(m.data(), c.at("height"), c.at("width"), c.at("k")) -
                                 ref) / std::fabs(ref);
    CAPTURE(c.at("k").get<int>());
    CHECK(rel <= 1e-7);
    worst = std::max(worst, rel);
  }
  MESSAGE("max relative |caf - scipy| of image_score: " << worst);
  // Zero padding counted: a constant map scores 1 only where a whole window fits.
  std::vector<float> ones(25 * 30, 1.0f);
  CHECK(image_score(ones.data(), 25, 30, 21) == 1.0f);
  CHECK(image_score(ones.data(), 10, 30, 21) == doctest::Approx(10.0 * 21 / 441));
  CHECK_THROWS_AS(image_score(ones.data(), 25, 30, 20), ConfigError);
}

TEST_CASE("metrics: AUROC equals the brute-force Mann-Whitney statistic on every sort path") {
  std::mt19937_64 rng(3);
  const std::vector<float> u = uniform(3000, 11);
  std::vector<uint8_t> l(u.size());
  for (uint8_t& x : l) x = uint8_t(rng() & 1);
  // Scores in [0.5, 0.75) share the radix sort's top digit (a skipped pass); the others mix
  // signs, zeros of both signs, infinities and ties.
  std::vector<float> narrow(u), mixed(u);
  for (size_t i = 0; i < u.size(); ++i) {
    narrow[i] = 0.5f + 0.25f * u[i];
    mixed[i] = std::round((u[i] - 0.5f) * 40.0f) * (i % 3 == 0 ? 1e-3f : 1e3f);
  }
  mixed[5] = -0.0f;
  mixed[6] = 0.0f;
  mixed[7] = INFINITY;
  mixed[8] = -INFINITY;
  for (const std::vector<float>* s : std::vector<const std::vector<float>*>{&u, &narrow, &mixed})
    CHECK(std::fabs(auroc(*s, l) - auroc_brute_force(*s, l)) <= kTol);
}

TEST_CASE("metrics: undefined inputs throw instead of returning NaN") {
  const std::vector<float> s{0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
  std::string msg = message_of<ConfigError>([&] { auroc(s, {1, 1, 1, 1, 1}); });
  CHECK(msg.find("all 5 labels are 1") != std::string::npos);
  CHECK(msg.find("needs both normal and anomalous samples") != std::string::npos);
  msg = message_of<ConfigError>([&] { average_precision(s, {0, 0, 0, 0, 0}); });
  CHECK(msg.find("all 5 labels are 0") != std::string::npos);
  CHECK_THROWS_AS(roc_curve(s, {0, 0, 0, 0, 0}), ConfigError);
  msg = message_of<ConfigError>([&] { auroc({0.1f, NAN, 0.3f, NAN, 0.5f}, {0, 1, 0, 1, 0}); });
  CHECK(msg.find("2 of 5 scores are NaN") != std::string::npos);
  CHECK_THROWS_AS(auroc(s, {0, 1, 0}), ShapeError);
  CHECK_THROWS_AS(average_precision(s, {0, 1, 2, 1, 0}), ConfigError);
  CHECK_THROWS_AS(pr_curve(s, {0, 1, 0, 1, 0}, 1), ConfigError);

  std::vector<float> map(16, 0.5f);
  std::vector<uint8_t> none(16, 0), all(16, 1);
  CHECK_THROWS_AS(au_pro({map.data()}, {none.data()}, 4, 4), ConfigError);
  CHECK_THROWS_AS(au_pro({map.data()}, {all.data()}, 4, 4), ConfigError);
  CHECK_THROWS_AS(au_pro({map.data()}, {none.data(), all.data()}, 4, 4), ShapeError);
  CHECK_THROWS_AS(au_pro({map.data()}, {all.data()}, 4, 4, 0.0), ConfigError);
  map[3] = NAN;
  all[0] = 0;
  CHECK_THROWS_AS(au_pro({map.data()}, {all.data()}, 4, 4), ConfigError);
}

TEST_CASE("metrics: pixel-scale AUROC, AP, curves and AU-PRO (83 images of 256x256)") {
  const int n_img = 83, h = 256, w = 256;
  const size_t hw = size_t(h) * w, n = size_t(n_img) * hw;
  const std::vector<float> scores = uniform(n, 7);
  std::vector<uint8_t> labels(n);
  std::mt19937_64 rng(8);
  for (uint8_t& l : labels) l = uint8_t((rng() >> 60) == 0);  // 1 in 16 anomalous

  auto t0 = std::chrono::steady_clock::now();
  const double a = auroc(scores, labels);
  const double ms_auroc =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  CHECK(a >= 0.49);
  CHECK(a <= 0.51);
  const double ap = average_precision(scores, labels);
  CHECK(std::fabs(ap - 1.0 / 16) < 0.01);

  const Curve roc = roc_curve(scores, labels), pr = pr_curve(scores, labels, 500);
  CHECK(roc.x.size() <= 2000);
  CHECK(roc.x.size() >= 1900);  // the thinning uses its budget
  CHECK(roc.x.front() == 0.0);
  CHECK(roc.y.front() == 0.0);
  CHECK(roc.x.back() == 1.0);
  CHECK(roc.y.back() == 1.0);
  CHECK(pr.x.size() <= 500);
  CHECK(pr.x.front() == 0.0);
  CHECK(pr.y.front() == 1.0);
  CHECK(pr.x.back() == 1.0);

  // AU-PRO with labels as square defects in every other image, scores raised inside them.
  std::vector<float> maps(scores);
  std::vector<uint8_t> masks(n, 0);
  std::vector<const float*> mp;
  std::vector<const uint8_t*> mk;
  for (int i = 0; i < n_img; ++i) {
    for (int y = 40 + i % 50; i % 2 == 0 && y < 80 + i % 50; ++y)
      for (int x = 100; x < 100 + 10 + i % 40; ++x) {
        masks[size_t(i) * hw + size_t(y) * w + x] = 1;
        maps[size_t(i) * hw + size_t(y) * w + x] += 0.5f;
      }
    mp.push_back(maps.data() + size_t(i) * hw);
    mk.push_back(masks.data() + size_t(i) * hw);
  }
  t0 = std::chrono::steady_clock::now();
  const double pro = au_pro(mp, mk, h, w);
  const double ms_pro =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  // FPR f = 1 - t for uniform normal scores; a region's PRO(t) = min(1, 1.5 - t): PRO = 0.5 + f
  // for f <= 0.5, so the mean over [0, 0.3] is 0.65.
  CHECK(pro == doctest::Approx(0.65).epsilon(0.01));
  MESSAGE("5.4M pixels: AUROC " << a << " in " << ms_auroc << " ms; AU-PRO " << pro << " in "
                                << ms_pro << " ms");
}

TEST_CASE("plot: curves are drawn where they belong, in the requested size") {
  const Curve flat{{0.0, 1.0}, {0.5, 0.5}}, diag{{0.0, 1.0}, {0.0, 1.0}}, empty{};
  const std::vector<std::string> labels{"pixel ROC, AUROC 0.973", "image PR (AP=0.5)"};
  const Image with = plot_curves({flat, diag}, labels, "bottle: ROC", "FPR", "TPR", 480, 400);
  const Image without = plot_curves({empty, empty}, labels, "bottle: ROC", "FPR", "TPR", 480, 400);
  REQUIRE(with.height == 400);
  REQUIRE(with.width == 480);
  REQUIRE(with.channels == 3);
  // The difference is exactly the two polylines: the flat one (tab10 blue) on two rows over the
  // axes' width, the diagonal one (tab10 orange) rising from left to right.
  int blue = 0, orange = 0, ymin = 400, ymax = -1, xmin = 480, xmax = -1;
  std::vector<int> top_row_of_col(480, -1);
  for (int y = 0; y < 400; ++y)
    for (int x = 0; x < 480; ++x) {
      if (with.at(y, x, 0) == without.at(y, x, 0) && with.at(y, x, 1) == without.at(y, x, 1) &&
          with.at(y, x, 2) == without.at(y, x, 2))
        continue;
      const int r = with.at(y, x, 0), g = with.at(y, x, 1), b = with.at(y, x, 2);
      if (r == 31 && g == 119 && b == 180) {
        ++blue;
        ymin = std::min(ymin, y);
        ymax = std::max(ymax, y);
        xmin = std::min(xmin, x);
        xmax = std::max(xmax, x);
      } else if (r == 255 && g == 127 && b == 14) {
        ++orange;
        if (top_row_of_col[x] < 0) top_row_of_col[x] = y;
      } else {
        FAIL_CHECK("a changed pixel that is neither curve's colour at " << y << "," << x);
      }
    }
  CHECK(ymax - ymin <= 2);  // 2 px, plus the crossing with the diagonal
  CHECK(xmax - xmin >= 400);
  CHECK(blue >= 2 * 400 - 10);
  CHECK(orange >= 400);
  int prev = 1 << 30, cols = 0;
  for (int y : top_row_of_col) {
    if (y < 0) continue;
    CHECK(y <= prev);  // up and to the right
    prev = y;
    ++cols;
  }
  CHECK(cols >= 400);
  CHECK_THROWS_AS(plot_curves({flat}, labels, "t", "x", "y"), ShapeError);
  CHECK_THROWS_AS(plot_curves({flat}, {"a"}, "t", "x", "y", 100, 80), ConfigError);
}

TEST_CASE("plot: heatmap overlay blends jet at 50% and outlines the mask in white") {
  const int h = 5, w = 5;
  std::vector<uint8_t> rgb(3 * h * w);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t(i * 3);
  std::vector<float> map(h * w, 0.5f);
  map[0] = 1.0f;  // top colour of jet: (0.5, 0, 0)
  map[1] = NAN;   // drawn as lo: (0, 0, 0.5)
  map[2] = -3.0f; // clamped to lo
  std::vector<uint8_t> mask(h * w, 0);
  for (int y = 1; y <= 3; ++y)
    for (int x = 1; x <= 3; ++x) mask[y * w + x] = 1;
  const Image im = heatmap_overlay(rgb.data(), map.data(), h, w, 0.0f, 1.0f, mask.data());
  REQUIRE(im.height == h);
  REQUIRE(im.width == w);
  REQUIRE(im.channels == 3);
  auto px = [&](int c, int y, int x) { return rgb[size_t(c) * h * w + size_t(y) * w + x]; };
  auto blend = [](uint8_t img, double jet) {
    return uint8_t(std::lround(0.5 * img + 127.5 * jet));
  };
  CHECK(im.at(0, 0, 0) == blend(px(0, 0, 0), 0.5));
  CHECK(im.at(0, 0, 1) == blend(px(1, 0, 0), 0.0));
  CHECK(im.at(0, 1, 2) == blend(px(2, 0, 1), 0.5));
  CHECK(im.at(0, 2, 2) == blend(px(2, 0, 2), 0.5));
  CHECK(im.at(0, 2, 0) == blend(px(0, 0, 2), 0.0));
  // v = 0.5: jet (0.5, 1, 0.5). The 3x3 mask's centre is inside, its ring is the outline.
  for (int c = 0; c < 3; ++c) {
    CHECK(im.at(2, 2, c) == blend(px(c, 2, 2), c == 1 ? 1.0 : 0.5));
    CHECK(im.at(4, 4, c) == blend(px(c, 4, 4), c == 1 ? 1.0 : 0.5));
    CHECK(im.at(1, 1, c) == 255);
    CHECK(im.at(3, 2, c) == 255);
  }
  CHECK_THROWS_AS(heatmap_overlay(rgb.data(), map.data(), h, w, 1.0f, 1.0f), ConfigError);
}

}  // TEST_SUITE
