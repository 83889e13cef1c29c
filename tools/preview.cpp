// tools/preview.cpp: `caf preview`: a PNG grid of what training sees for one class, so a person can
// check the anomaly simulation by eye before spending hours of training on it.
//
// Key decision: every row is a real Simulator run on the CPU (the trainer's own code path, not a
// re-implementation), with one generator forced per row, then rotation alone, then the class's
// actual mix; then the simulated benchmark's CutPaste and NSA (never used in training), to compare
// what the model trains on with the unseen anomalies it is tested on. Each sample is a triplet of cells: target | image with anomaly | mask. Labels use a
// built-in 5x7 bitmap font so the tool needs no font files. The per-sample plans are printed too,
// since the picture shows what happened and the plan says why.
// Dimension letters: K samples, 3 channels, S = 256 simulation pixels; cells are `cell` pixels.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "augment/bench_generators.h"
#include "augment/image_io.h"
#include "augment/simulator.h"
#include "augment/texture_bank.h"
#include "kernels/error.h"
#include "tools/cli.h"

namespace caf {

namespace {

constexpr int kSize = 256;  // simulation size: the training resolution
constexpr int kCellGap = 2, kTripletGap = 4, kRowGap = 4, kPad = 4;
constexpr uint8_t kBackground = 48;  // dark gray
constexpr const char* kUsage =
    "usage: caf preview --data DIR --class NAME [--textures DIR] [--classes FILE] [--config FILE]\n"
    "       [--seed N] [--samples K] [--cell PX] --out grid.png";

struct Args {
  std::string data, class_name, textures, classes, config, out;
  uint64_t seed = 1;
  int samples = 4, cell = 128;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 0; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw ConfigError("preview: " + k + " needs a value", kUsage);
      return argv[++i];
    };
    auto num = [&](const std::string& v, long long lo, long long hi) {
      return cli_integer("preview: " + k, v, lo, hi, kUsage);
    };
    if (k == "--data")
      a.data = val();
    else if (k == "--class")
      a.class_name = val();
    else if (k == "--textures")
      a.textures = val();
    else if (k == "--classes")
      a.classes = val();
    else if (k == "--config")
      a.config = val();
    else if (k == "--out")
      a.out = val();
    else if (k == "--seed")
      a.seed = uint64_t(num(val(), 0, (1LL << 62)));
    else if (k == "--samples")
      a.samples = int(num(val(), 1, 16));
    else if (k == "--cell")
      a.cell = int(num(val(), 32, 512));
    else
      throw ConfigError("preview: unknown option '" + k + "'", kUsage);
  }
  if (a.data.empty() || a.class_name.empty() || a.out.empty())
    throw ConfigError("preview: --data, --class and --out are required", kUsage);
  return a;
}

// DIR/NAME/train/good (the MVTec root) or DIR/train/good (the class folder itself).
std::string train_dir(const Args& a) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root = fs::path(a.data) / a.class_name / "train" / "good";
  const fs::path own = fs::path(a.data) / "train" / "good";
  if (fs::is_directory(root, ec)) return root.string();
  if (fs::is_directory(own, ec)) return own.string();
  throw IoError(
      "preview: no training folder: neither " + root.string() + " nor " + own.string() + " exists",
      "--data is the MVTec root (holding " + a.class_name + "/) or the class folder");
}

// The first k training images (sorted), as f32 [k, 3, S, S] in [0, 1] on the CPU.
Tensor load_clean(const std::string& dir, int k) {
  const std::vector<std::string> paths = list_images(dir, false);
  if (paths.empty()) throw IoError("preview: " + dir + " holds no images");
  const int n = std::min<int>(k, int(paths.size()));
  std::vector<float> values;
  values.reserve(size_t(n) * 3 * kSize * kSize);
  for (int i = 0; i < n; ++i) {
    const Image im =
        image_resize_bilinear(image_to_rgb(image_read(paths[size_t(i)])), kSize, kSize);
    for (uint8_t b : image_to_planar(im)) values.push_back(float(b) / 255.f);
  }
  return Tensor::from_vector({n, 3, kSize, kSize}, values);
}

// The "simulation" object of a JSON file (or the whole object when it has no such key).
SimConfig load_config(const std::string& path) {
  if (path.empty()) return SimConfig{};
  std::ifstream f(path);
  if (!f) throw IoError("preview: cannot open the config " + path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(path + ": not valid JSON: " + e.what());
  }
  const bool nested = j.is_object() && j.contains("simulation");
  return sim_config_from_json(nested ? j["simulation"] : j, path + (nested ? ": simulation" : ""));
}

struct Row {
  std::string name;
  SimConfig config;
  ClassSelection selection;
  std::string bench;  // "cutpaste" or "nsa": a benchmark-only generator (augment/bench_generators.h)
};

// One row per enabled generator alone, rotation alone (if the class allows it), then the mix.
std::vector<Row> make_rows(const SimConfig& config, const ClassSelection& sel) {
  std::vector<Row> rows;
  for (int g = 0; g < kGeneratorCount; ++g) {
    if (!sel.generators[g]) continue;
    Row r{generator_name(Generator(g + 1)), config, sel, ""};
    for (int h = 0; h < kGeneratorCount; ++h) r.selection.generators[h] = h == g;
    r.selection.rotation = false;
    r.config.p_anomaly = 1.f;
    rows.push_back(r);
  }
  if (sel.rotation) {
    Row r{"rotation", config, sel, ""};
    for (bool& g : r.selection.generators) g = false;
    r.config.p_anomaly = 0.f;
    r.config.rotation_p = 1.f;
    rows.push_back(r);
  }
  rows.push_back(Row{"mix", config, sel, ""});
  // The simulated benchmark's unseen generators (never used in training), for comparison.
  rows.push_back(Row{"cutpaste", config, sel, "cutpaste"});
  rows.push_back(Row{"nsa", config, sel, "nsa"});
  return rows;
}

std::string describe_plan(const SamplePlan& p) {
  char buf[256];
  std::string s;
  if (p.generator == Generator::transparent || p.generator == Generator::opaque) {
    std::snprintf(buf, sizeof buf, "%s texture %d ops %s, %s, %s beta %.2f",
                  generator_name(p.generator), p.texture, source_op_name(p.ops[0]),
                  source_op_name(p.ops[1]), source_op_name(p.ops[2]), double(p.beta));
    s = buf;
  } else if (p.generator == Generator::ndaa) {
    std::snprintf(buf, sizeof buf,
                  "ndaa rect %dx%d at (y %d, x %d), %s sine amp %.1f px, %.2f periods", p.rect_h,
                  p.rect_w, p.rect_y0, p.rect_x0, p.swap_axes ? "column" : "row", double(p.amp),
                  double(p.freq));
    s = buf;
  } else {
    s = "normal";
  }
  if (p.rotate) {
    std::snprintf(buf, sizeof buf, "; rotated %.1f deg",
                  std::atan2(double(p.rot_sin), double(p.rot_cos)) * 57.29577951308232);
    s += buf;
  }
  return s;
}

// Sample n of a planar f32 tensor's host copy as an HWC byte image.
Image sample_image(const std::vector<float>& v, int n, int channels) {
  Image im;
  im.height = im.width = kSize;
  im.channels = channels;
  im.pixels.resize(size_t(kSize) * kSize * size_t(channels));
  const size_t plane = size_t(kSize) * kSize;
  const float* src = v.data() + size_t(n) * size_t(channels) * plane;
  for (size_t ij = 0; ij < plane; ++ij)
    for (int c = 0; c < channels; ++c) {
      const float x = std::min(1.f, std::max(0.f, src[size_t(c) * plane + ij]));
      im.pixels[ij * size_t(channels) + size_t(c)] = uint8_t(std::lround(x * 255.f));
    }
  return im;
}

// 5x7 glyphs, A-Z then 0-9; row r of a glyph is 5 bits, the leftmost pixel in bit 4.
const uint8_t kFont[36][7] = {
    {14, 17, 17, 31, 17, 17, 17}, {30, 17, 17, 30, 17, 17, 30}, {14, 17, 16, 16, 16, 17, 14},
    {28, 18, 17, 17, 17, 18, 28}, {31, 16, 16, 30, 16, 16, 31}, {31, 16, 16, 30, 16, 16, 16},
    {14, 17, 16, 23, 17, 17, 15}, {17, 17, 17, 31, 17, 17, 17}, {14, 4, 4, 4, 4, 4, 14},
    {7, 2, 2, 2, 2, 18, 12},      {17, 18, 20, 24, 20, 18, 17}, {16, 16, 16, 16, 16, 16, 31},
    {17, 27, 21, 21, 17, 17, 17}, {17, 17, 25, 21, 19, 17, 17}, {14, 17, 17, 17, 17, 17, 14},
    {30, 17, 17, 30, 16, 16, 16}, {14, 17, 17, 17, 21, 18, 13}, {30, 17, 17, 30, 20, 18, 17},
    {15, 16, 16, 14, 1, 1, 30},   {31, 4, 4, 4, 4, 4, 4},       {17, 17, 17, 17, 17, 17, 14},
    {17, 17, 17, 17, 17, 10, 4},  {17, 17, 17, 21, 21, 21, 10}, {17, 17, 10, 4, 10, 17, 17},
    {17, 17, 17, 10, 4, 4, 4},    {31, 1, 2, 4, 8, 16, 31},     {14, 17, 19, 21, 25, 17, 14},
    {4, 12, 4, 4, 4, 4, 14},      {14, 17, 1, 2, 4, 8, 31},     {31, 2, 4, 2, 1, 17, 14},
    {2, 6, 10, 18, 31, 2, 2},     {31, 16, 30, 1, 1, 17, 14},   {6, 8, 16, 30, 17, 17, 14},
    {31, 1, 2, 4, 8, 8, 8},       {14, 17, 17, 14, 17, 17, 14}, {14, 17, 17, 15, 1, 2, 12}};

// Pixels one character advances: 5 columns and a 1-column space, times the scale.
int text_width(const std::string& s, int scale) {
  return int(s.size()) * 6 * scale;
}

// The output image as an RGB canvas with the few drawing primitives the grid needs.
struct Canvas {
  Image im;
  Canvas(int h, int w) {
    im.height = h;
    im.width = w;
    im.channels = 3;
    im.pixels.assign(size_t(h) * size_t(w) * 3, kBackground);
  }
  void blit(const Image& src, int y0, int x0) {  // src: 3 channels, fully inside
    for (int y = 0; y < src.height; ++y)
      for (int x = 0; x < src.width; ++x)
        for (int c = 0; c < 3; ++c) im.at(y0 + y, x0 + x, c) = src.at(y, x, c);
  }
  // White text; letters and digits only (others leave a blank), lower case drawn as upper.
  void text(const std::string& s, int y0, int x0, int scale) {
    for (size_t k = 0; k < s.size(); ++k) {
      const char ch = s[k];
      int g = -1;
      if (ch >= 'A' && ch <= 'Z')
        g = ch - 'A';
      else if (ch >= 'a' && ch <= 'z')
        g = ch - 'a';
      else if (ch >= '0' && ch <= '9')
        g = 26 + (ch - '0');
      if (g < 0) continue;
      for (int r = 0; r < 7; ++r)
        for (int col = 0; col < 5; ++col) {
          if (!((kFont[g][r] >> (4 - col)) & 1)) continue;
          for (int dy = 0; dy < scale; ++dy)
            for (int dx = 0; dx < scale; ++dx)
              for (int c = 0; c < 3; ++c)
                im.at(y0 + r * scale + dy, x0 + int(k) * 6 * scale + col * scale + dx, c) = 255;
        }
    }
  }
};

}  // namespace

int preview(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  const std::string dir = train_dir(a);
  const Tensor clean = load_clean(dir, a.samples);
  const int k = int(clean.dim(0));
  std::printf("%s: %d training image%s\n", dir.c_str(), k, k == 1 ? "" : "s");

  TextureBank bank;
  if (!a.textures.empty()) {
    bank = texture_bank_load(a.textures, kSize, Device::cpu, 2000);  // bounds memory (~400 MB)
    std::printf("textures: %lld from %s\n", (long long)bank.count(), a.textures.c_str());
  } else {
    bank = texture_bank_procedural(64, kSize, a.seed, Device::cpu);
    std::printf(
        "no --textures: using 64 procedural textures (fractal noise, stripes, checks, blotches)\n");
  }
  const ClassSelection selection = class_selection(a.class_name, a.classes);
  std::printf("%s\n", selection.describe().c_str());
  const std::vector<Row> rows = make_rows(load_config(a.config), selection);

  // Layout: a left margin for the row names, a header line, then rows of k triplets.
  const int scale = a.cell >= 96 ? 2 : 1;
  int margin = 0;
  for (const Row& r : rows) margin = std::max(margin, text_width(r.name, scale));
  margin += 4 * kPad;
  const int header = 7 * scale + 2 * kPad;
  const int triplet = 3 * a.cell + 2 * kCellGap + kTripletGap;
  const int width = margin + k * triplet - kTripletGap + kPad;
  const int height = kPad + header + int(rows.size()) * (a.cell + kRowGap) - kRowGap + kPad;
  Canvas canvas(height, width);
  // Small cells cannot hold "ANOMALY" even at scale 1: three-letter titles then.
  const bool fits = text_width("ANOMALY", scale) <= a.cell;
  const char* const titles[3] = {fits ? "CLEAN" : "CLN", fits ? "ANOMALY" : "ANO",
                                 fits ? "MASK" : "MSK"};
  for (int s = 0; s < k; ++s)
    for (int c = 0; c < 3; ++c) {
      const int x = margin + s * triplet + c * (a.cell + kCellGap);
      canvas.text(titles[c], kPad + kPad, x + (a.cell - text_width(titles[c], scale)) / 2, scale);
    }

  for (size_t r = 0; r < rows.size(); ++r) {
    const Row& row = rows[r];
    std::vector<float> target, image, mask;
    std::vector<std::string> what(static_cast<size_t>(k));
    if (row.bench.empty()) {
      Simulator sim(row.config, row.selection, bank, a.seed);
      const Simulator::Batch out = sim.run(clean, 0);
      const std::vector<SamplePlan> plans = sim.plans(k, 0);
      target = out.target.to_vector();
      image = out.image.to_vector();
      mask = out.mask.to_vector();
      for (int s = 0; s < k; ++s) what[size_t(s)] = describe_plan(plans[size_t(s)]);
    } else {
      // NSA takes its patches from another normal image: sample s from sample s + 1.
      target = clean.to_vector();
      std::vector<float> src(target.size());
      const size_t per = size_t(3) * kSize * kSize;
      for (int s = 0; s < k; ++s)
        std::copy(target.begin() + long(((s + 1) % k) * per), target.begin() + long(((s + 1) % k + 1) * per),
                  src.begin() + long(size_t(s) * per));
      const BenchResult b = row.bench == "cutpaste"
                                ? cutpaste_generate(clean, a.seed, 0)
                                : nsa_generate(clean, Tensor::from_vector(clean.shape(), src), a.class_name, a.seed, 0);
      image = b.image.to_vector();
      mask = b.mask.to_vector();
      for (int s = 0; s < k; ++s) what[size_t(s)] = "benchmark only: " + b.params[size_t(s)].dump();
    }
    const int y = kPad + header + int(r) * (a.cell + kRowGap);
    canvas.text(row.name, y + (a.cell - 7 * scale) / 2, 2 * kPad, scale);
    std::printf("row %s:\n", row.name.c_str());
    for (int s = 0; s < k; ++s) {
      const Image cells[3] = {
          image_resize_bilinear(sample_image(target, s, 3), a.cell, a.cell),
          image_resize_bilinear(sample_image(image, s, 3), a.cell, a.cell),
          image_to_rgb(image_resize_nearest(sample_image(mask, s, 1), a.cell, a.cell))};
      for (int c = 0; c < 3; ++c)
        canvas.blit(cells[c], y, margin + s * triplet + c * (a.cell + kCellGap));
      // Pixel counts too: NDAA masks are often a few dozen pixels, which 0.0% would hide.
      long covered = 0;
      for (size_t i = 0; i < size_t(kSize) * kSize; ++i)
        covered += mask[size_t(s) * kSize * kSize + i] > 0.5f;
      std::printf("  sample %d: %s; mask %ld px (%.1f%%)\n", s,
                  what[size_t(s)].c_str(), covered,
                  100.0 * double(covered) / (double(kSize) * kSize));
    }
  }
  image_write_png(a.out, canvas.im);
  std::printf("wrote %s: %d x %d (%zu rows of %d samples, cells %d px)\n", a.out.c_str(), width,
              height, rows.size(), k, a.cell);
  return 0;
}

}  // namespace caf
