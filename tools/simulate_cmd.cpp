// tools/simulate_cmd.cpp: `caf simulate` builds the simulated-anomaly benchmark of paper Table 3
// (METHOD.md 7) from a class's test/good images; `caf report` evaluates a model on it and prints the
// per-generator table in the form of Table 3.
//
// Layout written: <out>/<generator>/<class>/test/good/NNN.png (the resized normal images, kept as
// the normals), test/<generator>/NNN.png (one anomalous copy of each), ground_truth/<generator>/
// NNN_mask.png, and <out>/manifest.json with every drawn parameter. `caf eval` runs on each
// generator's folder unchanged. Everything is deterministic from --seed.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "augment/bench_generators.h"
#include "augment/image_io.h"
#include "augment/simulator.h"
#include "kernels/error.h"
#include "kernels/host_rng.h"
#include "kernels/runtime.h"
#include "train/dataset.h"
#include "tools/cli.h"
#include "train/evaluate.h"

namespace caf {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kSimulateUsage =
    "usage: caf simulate --data DIR --class NAME --out DIR\n"
    "                    [--generators cutpaste,nsa,ndaa,opaque,transparent] [--seed S]\n"
    "                    [--textures DIR] [--size PX] [--device cpu|cuda|auto]\n"
    "  builds <out>/<generator>/<NAME>/test/... from NAME's test/good images (METHOD 7); evaluate\n"
    "  with caf report --model DIR --bench <out> --class NAME (or caf eval on one generator)\n";

const char* kReportUsage =
    "usage: caf report --model DIR --bench DIR --class NAME [--out DIR] [--device cpu|cuda|auto]\n"
    "  evaluates the model on every generator of a caf simulate benchmark and prints the table of\n"
    "  paper Table 3 (pixel AUROC / AP, image AUROC / AP); * marks generators the model trained with\n";

const std::vector<std::string> kAllGenerators = {"cutpaste", "nsa", "ndaa", "opaque", "transparent"};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

Image to_image(const std::vector<float>& chw, int64_t offset, int channels, int S) {
  std::vector<uint8_t> bytes(size_t(channels) * size_t(S) * size_t(S));
  for (size_t i = 0; i < bytes.size(); ++i) {
    const float v = chw[size_t(offset) + i] * 255.f + 0.5f;
    bytes[i] = uint8_t(v < 0.f ? 0.f : (v > 255.f ? 255.f : v));
  }
  return image_from_planar(bytes.data(), channels, S, S);
}

bool mask_empty(const std::vector<float>& masks, int64_t i, int64_t plane) {
  for (int64_t e = 0; e < plane; ++e)
    if (masks[size_t(i * plane + e)] != 0.f) return false;
  return true;
}

json plan_json(const SamplePlan& p) {
  json j = {{"generator", generator_name(p.generator)}};
  if (p.generator == Generator::ndaa) {
    j["rect"] = {p.rect_y0, p.rect_x0, p.rect_h, p.rect_w};
    j["swap_axes"] = bool(p.swap_axes);
    j["amplitude"] = p.amp;
    j["frequency"] = p.freq;
    j["phase"] = p.phase;
  } else if (p.generator != Generator::none) {
    j["texture"] = p.texture;
    j["beta"] = p.beta;
    j["perlin_scales"] = {p.perlin.sy, p.perlin.sx};
    j["perlin_angle_deg"] = p.perlin.angle_deg;
    json ops = json::array();
    for (int k = 0; k < kSourceOpsPerSample; ++k)
      ops.push_back({{"op", source_op_name(p.ops[k])},
                     {"params", {p.op_params[k][0], p.op_params[k][1], p.op_params[k][2]}}});
    j["source_ops"] = ops;
  }
  return j;
}

// Test folder resolution for evaluation of a benchmark: <data>/<class>/test or <data>/test.
std::string resolve_test_dir(const std::string& data, const std::string& class_name) {
  if (fs::is_directory(fs::path(data) / class_name / "test")) return (fs::path(data) / class_name).string();
  if (fs::is_directory(fs::path(data) / "test")) return data;
  throw IoError(data + ": neither " + (fs::path(data) / class_name / "test").string() + " nor " +
                    (fs::path(data) / "test").string(),
                "--bench is the --out folder of caf simulate");
}

}  // namespace

int simulate_command(int argc, char** argv) {
  std::string data, class_name, out, textures, device = "auto";
  std::vector<std::string> generators = kAllGenerators;
  uint64_t seed = 0;
  int S = 256;
  for (int i = 0; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::printf("%s", kSimulateUsage);
      return 0;
    }
    if (i + 1 >= argc) throw ConfigError("simulate: " + k + " needs a value", kSimulateUsage);
    const std::string v = argv[++i];
    auto integer = [&](long long lo, long long hi) { return cli_integer("simulate: " + k, v, lo, hi); };
    if (k == "--data") data = v;
    else if (k == "--class") class_name = v;
    else if (k == "--out") out = v;
    else if (k == "--textures") textures = v;
    else if (k == "--device") device = v;
    else if (k == "--seed") seed = uint64_t(integer(0, 1ll << 62));
    else if (k == "--size") S = int(integer(32, 1024));
    else if (k == "--generators") generators = split_list(v);
    else throw ConfigError("simulate: unknown option '" + k + "'", kSimulateUsage);
  }
  if (data.empty() || class_name.empty() || out.empty())
    throw ConfigError("simulate: --data, --class and --out are required", kSimulateUsage);
  for (const std::string& g : generators)
    if (std::find(kAllGenerators.begin(), kAllGenerators.end(), g) == kAllGenerators.end())
      throw ConfigError("simulate: unknown generator '" + g + "'",
                        "generators: cutpaste, nsa, ndaa, opaque, transparent");
  const Device d = parse_device(device.c_str());

  // The class's normal test images, resized as training resizes them.
  const std::string class_dir = resolve_class_dir(data, class_name);
  const std::vector<std::string> files = list_images((fs::path(class_dir) / "test" / "good").string(), false);
  if (files.size() < 2)
    throw IoError(class_dir + "/test/good: needs at least 2 images (NSA takes patches from another one)");
  const int64_t n = int64_t(files.size()), plane = int64_t(S) * S;
  std::vector<float> clean(size_t(n * 3 * plane));
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<uint8_t> chw = image_to_planar(image_resize_bilinear(image_to_rgb(image_read(files[size_t(i)])), S, S));
    for (int64_t e = 0; e < 3 * plane; ++e) clean[size_t(i * 3 * plane + e)] = float(chw[size_t(e)]) / 255.f;
  }
  const Tensor images = Tensor::from_vector({n, 3, S, S}, clean, d);
  std::printf("simulate: %lld normal test images of %s at %dx%d, seed %llu, on %s\n", (long long)n,
              class_dir.c_str(), S, S, (unsigned long long)seed, device_name(d));

  json manifest = {{"class", class_name}, {"source", class_dir}, {"seed", seed}, {"size", S},
                   {"generators", json::object()}};
  TextureBank bank = textures.empty() ? texture_bank_procedural(64, S, seed + 1, Device::cpu)
                                      : texture_bank_load(textures, S, Device::cpu);
  manifest["textures"] = bank.source;
  for (const std::string& g : generators) {
    std::vector<float> out_img(clean.size()), out_mask(size_t(n * plane), 0.f);
    std::vector<json> params(static_cast<size_t>(n));
    std::vector<bool> done(size_t(n), false);
    // Draw rounds until every image has a non-empty anomaly (a draw that changes nothing would
    // be a normal image labelled anomalous); rounds use new sample numbers, so draws never repeat.
    for (uint32_t round = 0; round < 20; ++round) {
      BenchResult r;
      std::vector<SamplePlan> plans;
      const uint32_t first = round * uint32_t(n);
      if (g == "cutpaste") {
        r = cutpaste_generate(images, seed, first);
      } else if (g == "nsa") {
        std::vector<float> src(clean.size());
        HostRng rng(seed * 7919 + round);
        std::vector<int64_t> from(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          from[size_t(i)] = (i + 1 + int64_t(rng.next() % uint64_t(n - 1))) % n;  // never i itself
          std::copy(clean.begin() + from[size_t(i)] * 3 * plane, clean.begin() + (from[size_t(i)] + 1) * 3 * plane,
                    src.begin() + i * 3 * plane);
        }
        PoissonStats stats;
        r = nsa_generate(images, Tensor::from_vector({n, 3, S, S}, src, d), class_name, seed, first, &stats);
        for (int64_t i = 0; i < n; ++i) r.params[size_t(i)]["source_image"] = fs::path(files[size_t(from[size_t(i)])]).filename().string();
        if (round == 0)
          std::printf("  nsa: Poisson blending, %d sweeps per solve, max relative residual %.2e\n",
                      stats.iterations, stats.max_relative_residual);
      } else {
        ClassSelection only;
        only.name = class_name;
        for (int k = 0; k < kGeneratorCount; ++k) only.generators[k] = g == generator_name(Generator(k + 1));
        only.rotation = false;
        SimConfig cfg;
        cfg.p_anomaly = 1.f;
        Simulator sim(cfg, only, TextureBank{bank.images, bank.source}, seed);
        const Simulator::Batch b = sim.run(images, round);
        r.image = b.image;
        r.mask = b.mask;
        plans = sim.plans(n, round);
      }
      const std::vector<float> im = r.image.to_vector(), mk = r.mask.to_vector();
      for (int64_t i = 0; i < n; ++i) {
        if (done[size_t(i)] || mask_empty(mk, i, plane)) continue;
        done[size_t(i)] = true;
        std::copy(im.begin() + i * 3 * plane, im.begin() + (i + 1) * 3 * plane, out_img.begin() + i * 3 * plane);
        std::copy(mk.begin() + i * plane, mk.begin() + (i + 1) * plane, out_mask.begin() + i * plane);
        params[size_t(i)] = plans.empty() ? r.params[size_t(i)] : plan_json(plans[size_t(i)]);
        params[size_t(i)]["round"] = round;
      }
      if (std::all_of(done.begin(), done.end(), [](bool b) { return b; })) break;
    }
    const fs::path root = fs::path(out) / g / class_name;
    fs::create_directories(root / "test" / "good");
    fs::create_directories(root / "test" / g);
    fs::create_directories(root / "ground_truth" / g);
    json items = json::array();
    int64_t written = 0;
    for (int64_t i = 0; i < n; ++i) {
      char name[24];
      std::snprintf(name, sizeof name, "%03lld", (long long)i);
      image_write_png((root / "test" / "good" / (std::string(name) + ".png")).string(), to_image(clean, i * 3 * plane, 3, S));
      if (!done[size_t(i)]) continue;  // no anomaly in 20 rounds: left out, and the manifest says so
      image_write_png((root / "test" / g / (std::string(name) + ".png")).string(), to_image(out_img, i * 3 * plane, 3, S));
      image_write_png((root / "ground_truth" / g / (std::string(name) + "_mask.png")).string(),
                      to_image(out_mask, i * plane, 1, S));
      json p = params[size_t(i)];
      p["file"] = std::string(name) + ".png";
      p["from"] = fs::path(files[size_t(i)]).filename().string();
      items.push_back(p);
      ++written;
    }
    manifest["generators"][g] = {{"anomalous", written}, {"normal", n}, {"missing", n - written}, {"images", items}};
    std::printf("  %-12s %lld anomalous + %lld normal images -> %s%s\n", g.c_str(), (long long)written,
                (long long)n, root.string().c_str(),
                written < n ? (" (" + std::to_string(n - written) + " images got no anomaly in 20 draws)").c_str() : "");
  }
  fs::create_directories(out);
  const std::string path = (fs::path(out) / "manifest.json").string();
  {
    std::ofstream f(path + ".tmp");
    f << manifest.dump(1) << "\n";
    if (!f) throw IoError(path + ".tmp: cannot write");
  }
  fs::rename(path + ".tmp", path);
  std::printf("wrote %s\nnext: caf report --model DIR --bench %s --class %s\n", path.c_str(), out.c_str(),
              class_name.c_str());
  return 0;
}

int report_command(int argc, char** argv) {
  std::string model_dir, bench, class_name, out, device = "auto";
  for (int i = 0; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::printf("%s", kReportUsage);
      return 0;
    }
    if (i + 1 >= argc) throw ConfigError("report: " + k + " needs a value", kReportUsage);
    const std::string v = argv[++i];
    if (k == "--model") model_dir = v;
    else if (k == "--bench") bench = v;
    else if (k == "--class") class_name = v;
    else if (k == "--out") out = v;
    else if (k == "--device") device = v;
    else throw ConfigError("report: unknown option '" + k + "'", kReportUsage);
  }
  if (model_dir.empty() || bench.empty() || class_name.empty())
    throw ConfigError("report: --model, --bench and --class are required", kReportUsage);
  if (out.empty()) out = (fs::path(model_dir) / "report").string();
  const Device d = parse_device(device.c_str());
  TrainedModel tm = load_trained_model(model_dir, d);
  // Which generators trained this model: its class's selection, or DRAEM's transparent-only one.
  std::set<std::string> trained;
  if (tm.config.simulation_kind == "draem") {
    trained.insert("transparent");
  } else {
    const ClassSelection sel = class_selection(class_name, tm.config.classes);
    for (int g = 0; g < kGeneratorCount; ++g)
      if (sel.generators[g]) trained.insert(generator_name(Generator(g + 1)));
  }
  json report = {{"model", model_dir}, {"bench", bench}, {"class", class_name}, {"generators", json::object()}};
  std::string table =
      "| generator | pixel AUROC | pixel AP | image AUROC | image AP |\n|---|---|---|---|---|\n";
  double sum_auroc = 0, sum_ap = 0;
  int count = 0;
  for (const std::string& g : kAllGenerators) {
    if (!fs::is_directory(fs::path(bench) / g)) continue;
    const TestSet ts = load_test_set(resolve_test_dir((fs::path(bench) / g).string(), class_name), tm.config.size);
    EvalOptions o;
    o.out_dir = (fs::path(out) / g).string();
    o.max_heatmaps = 8;
    const EvalResult r = evaluate(*tm.model, ts, o);
    char row[256];
    std::snprintf(row, sizeof row, "| %s%s | %.1f | %.1f | %.1f | %.1f |\n", g.c_str(), trained.count(g) ? " *" : "",
                  100 * r.pixel_auroc, 100 * r.pixel_ap, 100 * r.image_auroc, 100 * r.image_ap);
    table += row;
    report["generators"][g] = {{"pixel_auroc", r.pixel_auroc}, {"pixel_ap", r.pixel_ap}, {"image_auroc", r.image_auroc},
                               {"image_ap", r.image_ap}, {"trained_with", trained.count(g) > 0}};
    sum_auroc += r.pixel_auroc;
    sum_ap += r.pixel_ap;
    ++count;
  }
  if (count == 0) throw IoError(bench + ": no generator folders (cutpaste, nsa, ndaa, opaque, transparent)",
                                "build one with caf simulate");
  char row[160];
  std::snprintf(row, sizeof row, "| mean | %.1f | %.1f | | |\n", 100 * sum_auroc / count, 100 * sum_ap / count);
  table += row;
  report["mean_pixel_auroc"] = sum_auroc / count;
  report["mean_pixel_ap"] = sum_ap / count;
  fs::create_directories(out);
  std::ofstream(fs::path(out) / "report.json") << report.dump(2) << "\n";
  std::ofstream(fs::path(out) / "report.md") << table;
  std::printf("\n%s: %s on the simulated benchmark %s (* = trained with it)\n%s\nwrote %s/report.json, report.md, "
              "and per-generator heatmaps and curves\n",
              class_name.c_str(), tm.weights.c_str(), bench.c_str(), table.c_str(), out.c_str());
  return 0;
}

}  // namespace caf
