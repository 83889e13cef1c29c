// The batch simulation (augment/simulator.h): plans, masks, blends, NDAA, rotation, determinism,
// the class table, and (suite gpu) CUDA against the CPU for the same seed.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "augment/image_io.h"
#include "augment/simulate.h"
#include "augment/simulator.h"
#include "kernels/error.h"
#include "kernels/host_rng.h"
#include "kernels/runtime.h"
#include "tests/test_util.h"

#if defined(CAF_WITH_CUDA)
#include "kernels/cuda/check.h"
#endif

using namespace caf;

namespace {

constexpr int64_t kS = 64;  // image side in these tests: small, the code has no size-specific branch

// Clean images: procedural textures of another seed, as floats in [0, 1].
Tensor clean_batch(int64_t n, uint64_t seed = 77) {
  const std::vector<uint8_t> b = texture_bank_procedural(n, int(kS), seed, Device::cpu).images.to_bytes();
  std::vector<float> f(b.size());
  for (size_t i = 0; i < b.size(); ++i) f[i] = float(b[i]) / 255.f;
  return Tensor::from_vector({n, 3, kS, kS}, f);
}

ClassSelection only(Generator g, bool rotation = false) {
  ClassSelection s;
  s.name = "test";
  for (int k = 0; k < kGeneratorCount; ++k) s.generators[k] = k + 1 == int(g);
  s.rotation = rotation;
  return s;
}

Simulator make(const ClassSelection& sel, SimConfig cfg = {}, uint64_t seed = 3) {
  return Simulator(cfg, sel, texture_bank_procedural(8, int(kS), 5, Device::cpu), seed);
}

struct Result {
  std::vector<float> target, image, mask;
  std::vector<SamplePlan> plans;
};

Result run(Simulator& sim, const Tensor& clean, uint32_t step, uint32_t first = 0) {
  Simulator::Batch b = sim.run(clean, step, first);
  return {b.target.to_vector(), b.image.to_vector(), b.mask.to_vector(),
          sim.plans(clean.dim(0), step, first)};
}

}  // namespace

TEST_SUITE("augment") {
TEST_CASE("simulate: plans follow METHOD 4 (anomaly rate, generator mix, beta, rotation, NDAA box)") {
  PlanSettings s;
  s.seed = 21;
  s.texture_count = 10;
  s.rotation = 1;
  int by_gen[4] = {}, rotated = 0;
  float beta_lo = 1, beta_hi = 0;
  const int total = 6000;
  for (uint32_t n = 0; n < uint32_t(total); ++n) {
    const SamplePlan p = plan_sample(s, n);
    by_gen[int(p.generator)]++;
    rotated += p.rotate;
    if (p.generator == Generator::transparent) {
      beta_lo = std::min(beta_lo, p.beta);
      beta_hi = std::max(beta_hi, p.beta);
    }
    if (p.generator == Generator::opaque) CHECK(p.beta == 1.f);
    if (p.generator == Generator::ndaa) {
      CHECK((p.rect_h >= int(0.1f * 256) && p.rect_h <= int(0.5f * 256)));
      CHECK((p.rect_w >= int(0.1f * 256) && p.rect_w <= int(0.5f * 256)));
      CHECK((p.rect_y0 >= 0 && p.rect_y0 + p.rect_h <= 256 && p.rect_x0 >= 0 && p.rect_x0 + p.rect_w <= 256));
      CHECK((p.amp >= 2.f && p.amp < 8.f && p.freq >= 0.5f && p.freq < 2.f));
    }
  }
  // Binomial standard deviations: sqrt(6000 * 0.25) = 39 for the normal share, ~30 per generator.
  CHECK(std::abs(by_gen[0] - total / 2) < 160);
  for (int g = 1; g <= 3; ++g) CHECK(std::abs(by_gen[g] - total / 6) < 130);
  CHECK(std::abs(rotated - int(0.3 * total)) < 150);
  CHECK((beta_lo >= 0.2f && beta_lo < 0.21f && beta_hi < 0.8f && beta_hi > 0.79f));
  // Disabled generators and rotation are never drawn.
  s.enabled[2] = 0;
  s.rotation = 0;
  for (uint32_t n = 0; n < 2000; ++n) {
    const SamplePlan p = plan_sample(s, n);
    CHECK(p.generator != Generator::ndaa);
    CHECK(p.rotate == 0);
  }
}

TEST_CASE("simulate: same seed same batch; another seed, step or sample another batch") {
  const Tensor clean = clean_batch(6);
  ClassSelection all = only(Generator::none, true);
  for (bool& g : all.generators) g = true;
  SimConfig cfg;
  cfg.p_anomaly = 1.f;
  Simulator a = make(all, cfg, 3), b = make(all, cfg, 3), c = make(all, cfg, 4);
  const Result ra = run(a, clean, 10), rb = run(b, clean, 10);
  CHECK(ra.image == rb.image);
  CHECK(ra.mask == rb.mask);
  CHECK(ra.target == rb.target);
  CHECK(run(c, clean, 10).mask != ra.mask);
  CHECK(run(a, clean, 11).mask != ra.mask);
  // Each sample is a pure function of its own number: rows 2..5 of the batch equal a batch of
  // those 4 images drawn with first_sample = 2.
  const std::vector<float> all_rows = clean.to_vector();
  const Tensor tail = Tensor::from_vector({4, 3, kS, kS},
                                          std::vector<float>(all_rows.begin() + 2 * 3 * kS * kS, all_rows.end()));
  const Result rt = run(a, tail, 10, 2);
  CHECK(rt.mask == std::vector<float>(ra.mask.begin() + 2 * kS * kS, ra.mask.end()));
  CHECK(rt.image == std::vector<float>(ra.image.begin() + 2 * 3 * kS * kS, ra.image.end()));
}

TEST_CASE("simulate: transparent and opaque blends (paper eq. 1, 2) over 1000 samples each") {
  const int64_t n = 250;
  const Tensor clean = clean_batch(n);
  for (Generator g : {Generator::transparent, Generator::opaque}) {
    SimConfig cfg;
    cfg.p_anomaly = 1.f;
    Simulator sim = make(only(g), cfg);
    std::vector<double> coverage;
    int64_t outside_changed = 0, inside_bad = 0, nonbinary = 0;
    for (uint32_t step = 0; step < 4; ++step) {
      const Result r = run(sim, clean, step);
      CHECK(r.target == clean.to_vector());  // no rotation: the target is the clean image
      for (int64_t s = 0; s < n; ++s) {
        REQUIRE(r.plans[size_t(s)].generator == g);
        const float beta = r.plans[size_t(s)].beta;
        int64_t on = 0;
        for (int64_t e = 0; e < kS * kS; ++e) {
          const float m = r.mask[size_t(s * kS * kS + e)];
          nonbinary += m != 0.f && m != 1.f;
          on += m != 0.f;
          for (int c = 0; c < 3; ++c) {
            const size_t at = size_t((s * 3 + c) * kS * kS + e);
            const float x = r.target[at], y = r.image[at];
            if (m == 0.f) {
              outside_changed += y != x;
            } else {
              // Inside: y = (1 - beta) x + beta t with t a byte / 255; solve for t.
              const float t = (y - (1.f - beta) * x) / beta * 255.f;
              inside_bad += std::fabs(t - std::round(t)) > 2e-3f * (1.f + 1.f / beta) || t < -0.01f || t > 255.01f;
            }
          }
        }
        coverage.push_back(double(on) / double(kS * kS));
      }
    }
    CHECK(outside_changed == 0);
    CHECK(inside_bad == 0);
    CHECK(nonbinary == 0);
    std::sort(coverage.begin(), coverage.end());
    const double empty = double(std::count(coverage.begin(), coverage.end(), 0.0)) / double(coverage.size());
    double mean = 0;
    for (double c : coverage) mean += c;
    mean /= double(coverage.size());
    const double median = coverage[coverage.size() / 2], p90 = coverage[coverage.size() * 9 / 10];
    MESSAGE(std::string(generator_name(g)) << ": mask coverage mean " << mean << ", median " << median << ", 90th "
                              << p90 << ", empty " << empty);
    // DRAEM's Perlin masks: most non-empty, covering a few to a few tens of percent.
    CHECK((empty > 0.02 && empty < 0.4));
    CHECK((mean > 0.03 && mean < 0.25));
    CHECK(p90 < 0.6);
  }
}

TEST_CASE("simulate: NDAA masks lie in the rectangle, mark real changes, and are mostly non-empty") {
  const int64_t n = 250;
  const Tensor clean = clean_batch(n);
  SimConfig cfg;
  cfg.p_anomaly = 1.f;
  Simulator sim = make(only(Generator::ndaa), cfg);
  int64_t outside_rect = 0, unchanged_in_mask = 0, outside_changed = 0, nonempty = 0;
  double coverage = 0;
  for (uint32_t step = 0; step < 4; ++step) {
    const Result r = run(sim, clean, step);
    for (int64_t s = 0; s < n; ++s) {
      const SamplePlan& p = r.plans[size_t(s)];
      REQUIRE(p.generator == Generator::ndaa);
      // The settings' height is the bank's side, so the rectangle fits the 64 x 64 image.
      REQUIRE(p.rect_y0 + p.rect_h <= kS);
      int64_t on = 0;
      for (int64_t i = 0; i < kS; ++i)
        for (int64_t j = 0; j < kS; ++j) {
          const float m = r.mask[size_t((s * kS + i) * kS + j)];
          float diff = 0.f;
          bool changed = false;
          for (int c = 0; c < 3; ++c) {
            const size_t at = size_t(((s * 3 + c) * kS + i) * kS + j);
            diff += std::fabs(r.image[at] - r.target[at]);
            changed = changed || r.image[at] != r.target[at];
          }
          if (m == 0.f) {
            outside_changed += changed;
            continue;
          }
          ++on;
          outside_rect += i < p.rect_y0 || i >= p.rect_y0 + p.rect_h || j < p.rect_x0 || j >= p.rect_x0 + p.rect_w;
          unchanged_in_mask += !(diff / 3.f > cfg.ndaa_tau);  // M is inside M_o = (D > tau)
        }
      nonempty += on > 0;
      coverage += double(on) / double(kS * kS);
    }
  }
  CHECK(outside_rect == 0);
  CHECK(unchanged_in_mask == 0);
  CHECK(outside_changed == 0);
  MESSAGE("NDAA at 64 x 64: non-empty masks " << nonempty << " of 1000, mean coverage " << coverage / 1000);
  CHECK(nonempty > 100);
}

TEST_CASE("simulate: NDAA masks are non-empty at the measured rate at 256 x 256") {
  // NDAA changes only where the image has structure across the sine displacement, and its block
  // filter needs dense change, so the rate depends on the content. Measured at 256 x 256 (seed 3,
  // step 0): procedural textures 100 of 200; MVTec bottle 95 of 100. Bands below those.
  SimConfig cfg;
  cfg.p_anomaly = 1.f;
  const int64_t S = 256;
  auto rate = [&](const Tensor& clean) {
    Simulator sim(cfg, only(Generator::ndaa), texture_bank_procedural(2, int(S), 5, Device::cpu), 3);
    const std::vector<float> m = sim.run(clean, 0).mask.to_vector();
    int64_t nonempty = 0;
    for (int64_t s = 0; s < clean.dim(0); ++s)
      nonempty += std::any_of(m.begin() + s * S * S, m.begin() + (s + 1) * S * S, [](float v) { return v != 0.f; });
    return double(nonempty) / double(clean.dim(0));
  };
  const std::vector<uint8_t> b = texture_bank_procedural(200, int(S), 77, Device::cpu).images.to_bytes();
  std::vector<float> f(b.size());
  for (size_t i = 0; i < b.size(); ++i) f[i] = float(b[i]) / 255.f;
  const double procedural = rate(Tensor::from_vector({200, 3, S, S}, f));
  MESSAGE("NDAA non-empty rate, procedural images: " << procedural);
  CHECK((procedural > 0.35 && procedural < 0.65));
  const std::string bottle = "/work/shared/data/mvtec_bottle_256/bottle/train/good";
  if (!std::filesystem::is_directory(bottle)) {
    MESSAGE("skipped the bottle half: " << bottle << " is not here");
    return;
  }
  std::vector<float> g;
  const std::vector<std::string> files = list_images(bottle, false);
  for (size_t i = 0; i < 100 && i < files.size(); ++i)
    for (uint8_t v : image_to_planar(image_resize_bilinear(image_to_rgb(image_read(files[i])), int(S), int(S))))
      g.push_back(float(v) / 255.f);
  const double real = rate(Tensor::from_vector({int64_t(g.size() / size_t(3 * S * S)), 3, S, S}, g));
  MESSAGE("NDAA non-empty rate, bottle: " << real);
  CHECK(real > 0.85);
}

TEST_CASE("simulate: NDAA's block filter removes isolated dots and keeps dense regions") {
  // One image: a single bright dot on black (isolated: M_o has 1-2 dots, M_l drops them) beside
  // a dense random texture; the rectangle covers both.
  const int64_t S = 64;
  std::vector<float> img(size_t(3 * S * S), 0.f);
  HostRng rng(1);
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 32; j < S; ++j) img[size_t((c * S + i) * S + j)] = float(rng.uniform());
  for (int c = 0; c < 3; ++c) img[size_t((c * S + 20) * S + 10)] = 1.f;
  SimulateArgs a;
  a.n = 1;
  a.plan.height = a.plan.width = S;
  std::vector<uint8_t> ws(simulate_workspace_bytes(a));
  simulate_workspace_bind(a, ws.data());
  SamplePlan p{};
  p.generator = Generator::ndaa;
  p.rect_y0 = 0;
  p.rect_x0 = 0;
  p.rect_h = S;
  p.rect_w = S;
  p.amp = 3.f;
  p.freq = 1.f;
  p.phase = 1.f;
  *a.plans = p;
  std::vector<float> out(img.size()), mask(size_t(S * S));
  const ComposePass compose{a.plans, img.data(), nullptr, nullptr, out.data(), mask.data(), S, S, 0.5f, a.tau};
  for (int64_t e = 0; e < S * S; ++e) compose(e);
  int64_t dots_left = 0, dense_mo = 0;
  for (int64_t i = 0; i < S; ++i) {
    for (int64_t j = 0; j < 24; ++j) dots_left += mask[size_t(i * S + j)] != 0.f;
    for (int64_t j = 32; j < S; ++j) dense_mo += mask[size_t(i * S + j)] != 0.f;
  }
  REQUIRE(dots_left > 0);  // the displaced dot shows in M_o
  const BlockPass blocks{a.plans, mask.data(), a.blocks, S, S, a.blocks_h(), a.blocks_w(), a.block};
  for (int64_t e = 0; e < a.blocks_h() * a.blocks_w(); ++e) blocks(e);
  const NdaaFinishPass finish{a.plans, img.data(), a.blocks, out.data(), mask.data(), S, S, a.blocks_h(), a.blocks_w()};
  for (int64_t e = 0; e < S * S; ++e) finish(e);
  int64_t dots_after = 0, dense_after = 0, restored = 0;
  for (int64_t i = 0; i < S; ++i) {
    for (int64_t j = 0; j < 24; ++j) {
      dots_after += mask[size_t(i * S + j)] != 0.f;
      for (int c = 0; c < 3; ++c) restored += out[size_t((c * S + i) * S + j)] == img[size_t((c * S + i) * S + j)];
    }
    for (int64_t j = 36; j < S - 4; ++j) dense_after += mask[size_t(i * S + j)] != 0.f;
  }
  CHECK(dots_after == 0);
  CHECK(restored == 3 * S * 24);
  CHECK(dense_after > dense_mo / 3);
}

TEST_CASE("simulate: rotation of normal images keeps the image content, reflecting into corners") {
  SimConfig cfg;
  cfg.p_anomaly = 0.f;
  cfg.rotation_p = 1.f;
  Simulator sim = make(only(Generator::transparent, true), cfg);
  // A constant image stays constant under rotation with reflection (no black corners)...
  const Tensor ones = Tensor::full({4, 3, kS, kS}, 0.75f);
  Result r = run(sim, ones, 0);
  for (float v : r.target) CHECK(std::fabs(v - 0.75f) < 1e-6f);
  CHECK(r.image == r.target);
  for (float m : r.mask) CHECK(m == 0.f);
  // ...and with zero fill the corners of a turned image are black.
  cfg.rotation_reflect = false;
  Simulator zero = make(only(Generator::transparent, true), cfg);
  r = run(zero, ones, 0);
  int black_corners = 0;
  for (int64_t s = 0; s < 4; ++s)
    black_corners += std::fabs(r.plans[size_t(s)].rot_sin) > 0.2f && r.target[size_t(s * 3 * kS * kS)] == 0.f;
  int turned = 0;
  for (const SamplePlan& p : r.plans) turned += std::fabs(p.rot_sin) > 0.2f;
  CHECK(black_corners == turned);
  // A real image: the rotated target differs from the clean one, its values stay within [0, 1].
  const Tensor clean = clean_batch(4);
  r = run(sim, clean, 0);
  CHECK(r.target != clean.to_vector());
  for (float v : r.target) CHECK((v >= 0.f && v <= 1.f));
}

TEST_CASE("simulate: a mix of everything keeps normal samples untouched") {
  ClassSelection all = only(Generator::none, true);
  for (bool& g : all.generators) g = true;
  Simulator sim = make(all);
  const Tensor clean = clean_batch(32);
  const Result r = run(sim, clean, 5);
  int normals = 0;
  for (int64_t s = 0; s < 32; ++s) {
    if (r.plans[size_t(s)].generator != Generator::none) continue;
    ++normals;
    for (int64_t e = 0; e < kS * kS; ++e) CHECK(r.mask[size_t(s * kS * kS + e)] == 0.f);
    for (int64_t e = 0; e < 3 * kS * kS; ++e)
      CHECK(r.image[size_t(s * 3 * kS * kS + e)] == r.target[size_t(s * 3 * kS * kS + e)]);
  }
  CHECK(normals > 5);
}

TEST_CASE("simulate: bad inputs give clear errors") {
  Simulator sim = make(only(Generator::opaque));
  CHECK_THROWS_AS(sim.run(Tensor::zeros({2, 3, 32, 32}), 0), ShapeError);  // not the bank's size
  CHECK_THROWS_AS(sim.run(Tensor::zeros({2, 1, kS, kS}), 0), ShapeError);
  CHECK_THROWS_AS(Simulator(SimConfig{}, only(Generator::opaque), TextureBank{}, 0), ConfigError);
}

TEST_CASE("class table: the built-in table covers MVTec AD as METHOD 4.6 says") {
  const char* classes[] = {"bottle", "cable", "capsule", "hazelnut", "metal_nut", "pill", "screw", "toothbrush",
                           "transistor", "zipper", "carpet", "grid", "leather", "tile", "wood"};
  const char* rotating[] = {"bottle", "hazelnut", "metal_nut", "screw", "carpet", "leather", "tile"};
  const char* no_ndaa[] = {"carpet", "leather", "tile", "wood"};
  for (const char* c : classes) {
    const ClassSelection s = class_selection(c);
    CHECK(s.known);
    CHECK((s.generators[0] && s.generators[1]));
    CHECK(s.rotation == (std::find_if(std::begin(rotating), std::end(rotating),
                                      [&](const char* r) { return std::string(r) == c; }) != std::end(rotating)));
    CHECK(s.generators[2] == (std::find_if(std::begin(no_ndaa), std::end(no_ndaa),
                                           [&](const char* r) { return std::string(r) == c; }) == std::end(no_ndaa)));
  }
  const ClassSelection u = class_selection("metal_plate");
  CHECK(!u.known);
  CHECK((u.generators[0] && u.generators[1] && u.generators[2] && !u.rotation));
  CHECK(u.describe().find("default") != std::string::npos);
}

TEST_CASE("class table: user files, and errors naming the file and the problem") {
  const auto dir = std::filesystem::temp_directory_path() / "caf_class_table_test";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    const std::string path = (dir / name).string();
    std::ofstream(path) << text;
    return path;
  };
  const std::string good = write("good.json", R"({"default": {"generators": ["opaque"]},
      "classes": {"my_part": {"generators": ["transparent", "ndaa"], "rotation": true}}})");
  ClassSelection s = class_selection("my_part", good);
  CHECK((s.known && s.generators[0] && !s.generators[1] && s.generators[2] && s.rotation));
  s = class_selection("other", good);
  CHECK((!s.known && !s.generators[0] && s.generators[1] && !s.generators[2]));

  auto message = [](auto f) {
    try {
      f();
    } catch (const ConfigError& e) {
      return std::string(e.what()) + " | " + e.hint();
    } catch (const IoError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string typo = write("typo.json", R"({"default": {"generators": ["opaque"]},
      "classes": {"a": {"generators": ["transparant"]}}})");
  std::string m = message([&] { class_selection("a", typo); });
  CHECK(m.find("typo.json") != std::string::npos);
  CHECK(m.find("transparant") != std::string::npos);
  m = message([&] { class_selection("a", write("cp.json", R"({"default": {"generators": ["cutpaste"]}, "classes": {}})")); });
  CHECK(m.find("benchmark") != std::string::npos);
  m = message([&] { class_selection("a", write("bad.json", "{not json")); });
  CHECK(m.find("bad.json") != std::string::npos);
  m = message([&] { class_selection("a", write("key.json", R"({"default": {"generators": [], "rotate": true}, "classes": {}})")); });
  CHECK(m.find("rotate") != std::string::npos);
  m = message([&] { class_selection("a", (dir / "missing.json").string()); });
  CHECK(m.find("missing.json") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("simulation config: JSON round trip and validation") {
  SimConfig c;
  c.beta_lo = 0.3f;
  c.ndaa_block = 16;
  c.rotation_reflect = false;
  const SimConfig d = sim_config_from_json(sim_config_to_json(c), "test");
  CHECK(d.beta_lo == 0.3f);
  CHECK(d.ndaa_block == 16);
  CHECK(!d.rotation_reflect);
  CHECK(sim_config_to_json(d) == sim_config_to_json(c));
  CHECK_THROWS_AS(sim_config_from_json(nlohmann::json{{"ndaa_tua", 0.1}}, "test"), ConfigError);
  CHECK_THROWS_AS(sim_config_from_json(nlohmann::json{{"beta", {0.9, 0.1}}}, "test"), ConfigError);
  CHECK_THROWS_AS(sim_config_from_json(nlohmann::json{{"p_anomaly", 1.5}}, "test"), ConfigError);
  CHECK_THROWS_AS(sim_config_from_json(nlohmann::json{{"rotation_fill", "black"}}, "test"), ConfigError);
}
}

TEST_SUITE("gpu") {
TEST_CASE("gpu: the simulation equals the CPU's for the same seed") {
  CAF_NEED_GPU();
  // Every generator and the rotation, at the paper's 256 x 256, two steps.
  const int64_t n = 16, S = 256;
  ClassSelection all;
  all.name = "all";
  all.rotation = true;
  SimConfig cfg;
  cfg.rotation_p = 0.5f;
  TextureBank bank = texture_bank_procedural(12, int(S), 5, Device::cpu);
  const std::vector<uint8_t> b = texture_bank_procedural(n, int(S), 77, Device::cpu).images.to_bytes();
  std::vector<float> f(b.size());
  for (size_t i = 0; i < b.size(); ++i) f[i] = float(b[i]) / 255.f;
  const Tensor clean = Tensor::from_vector({n, 3, S, S}, f);
  Simulator cpu_sim(cfg, all, bank, 9), gpu_sim(cfg, all, bank, 9);
  for (uint32_t step : {0u, 1u}) {
    const Simulator::Batch c = cpu_sim.run(clean, step);
    const Simulator::Batch g = gpu_sim.run(clean.to(Device::cuda), step);
    const std::vector<float> ct = c.target.to_vector(), gt = g.target.to_vector();
    const std::vector<float> ci = c.image.to_vector(), gi = g.image.to_vector();
    const std::vector<float> cm = c.mask.to_vector(), gm = g.mask.to_vector();
    // The per-pixel arithmetic is the same CAF_HD code without fused multiply-adds on either side
    // and every transcendental is rounded from double once per sample, corner or column, so the
    // results are expected bit-identical. Budget: a double-precision sin/cos/pow that differs in
    // its last bit between libm and CUDA may flip a threshold; allow 1 pixel in 10^5.
    int64_t mask_flips = 0, image_diff = 0, target_diff = 0;
    for (size_t i = 0; i < cm.size(); ++i) mask_flips += cm[i] != gm[i];
    for (size_t i = 0; i < ci.size(); ++i) image_diff += ci[i] != gi[i];
    for (size_t i = 0; i < ct.size(); ++i) target_diff += ct[i] != gt[i];
    MESSAGE("step " << step << ": mask flips " << mask_flips << ", image elements differing " << image_diff
                    << ", target elements differing " << target_diff);
    CHECK(mask_flips <= int64_t(cm.size()) / 100000);
    CHECK(image_diff <= int64_t(ci.size()) / 100000);
    CHECK(target_diff == 0);
    CHECK(caf::test::nmse(gi, ci) < 1e-10);
  }
}

#if defined(CAF_WITH_CUDA)
TEST_CASE("gpu: a simulation step needs no host synchronisation: it captures into a CUDA graph") {
  CAF_NEED_GPU();
  // Global capture mode makes any synchronising or allocating call during the capture an error,
  // so a successful capture proves run() stays on the device. Replaying the graph must then
  // reproduce the step it captured.
  const int64_t n = 8, S = 256;
  ClassSelection all;
  all.name = "all";
  all.rotation = true;
  const std::vector<uint8_t> b = texture_bank_procedural(n, int(S), 77, Device::cpu).images.to_bytes();
  std::vector<float> f(b.size());
  for (size_t i = 0; i < b.size(); ++i) f[i] = float(b[i]) / 255.f;
  const Tensor clean = Tensor::from_vector({n, 3, S, S}, f, Device::cuda);
  Simulator sim(SimConfig{}, all, texture_bank_procedural(12, int(S), 5, Device::cpu), 9);
  sim.run(clean, 0);  // warm-up: uploads the bank, sizes the workspace, fills the memory pool
  synchronize(Device::cuda);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamBeginCapture(cuda::stream(), cudaStreamCaptureModeGlobal) == cudaSuccess);
  Simulator::Batch captured;
  std::string error;
  try {
    captured = sim.run(clean, 4);
  } catch (const std::exception& e) {
    error = e.what();
  }
  const cudaError_t end = cudaStreamEndCapture(cuda::stream(), &graph);
  CHECK(error == "");
  REQUIRE(end == cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  REQUIRE(cudaGraphLaunch(exec, cuda::stream()) == cudaSuccess);
  synchronize(Device::cuda);
  Simulator cpu_sim(SimConfig{}, all, texture_bank_procedural(12, int(S), 5, Device::cpu), 9);
  const Simulator::Batch ref = cpu_sim.run(clean.to(Device::cpu), 4);
  CHECK(caf::test::nmse(captured.image.to_vector(), ref.image.to_vector()) < 1e-10);
  CHECK(caf::test::nmse(captured.mask.to_vector(), ref.mask.to_vector()) < 1e-10);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}
#endif
}
