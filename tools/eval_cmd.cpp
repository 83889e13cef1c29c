// tools/eval_cmd.cpp: `caf eval` (metrics of a trained model on a class's test set) and `caf infer`
// (a score and a heatmap per image), over train/evaluate.h.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "augment/image_io.h"
#include "kernels/error.h"
#include "kernels/runtime.h"
#include "train/evaluate.h"
#include "train/metrics.h"
#include "train/plot.h"

namespace caf {

namespace fs = std::filesystem;

namespace {

const char* kEvalUsage =
    "usage: caf eval --model DIR --data DIR --class NAME [--out DIR] [--max-images N] [--save-maps]\n"
    "                [--mask-resize nearest|draem] [--batch N] [--device cpu|cuda|auto]\n"
    "  --model DIR      the folder caf train wrote (config.json + model.safetensors)\n"
    "  --out DIR        metrics.json, roc.png, pr.png, heatmaps/ (default: MODEL/eval)\n"
    "  --max-images N   heatmaps for the first N test images only (default: all)\n"
    "  --save-maps      also write maps.npy [images, S, S] and scores.npy (NumPy float32)\n"
    "  --mask-resize    ground truth: nearest then > 127 (default) or DRAEM's bilinear + == 255\n";

const char* kInferUsage =
    "usage: caf infer --model DIR [--out DIR] [--device cpu|cuda|auto] IMAGE...\n"
    "  prints one anomaly score per image and writes IMAGE-stem_heatmap.png into --out (default .)\n";

int64_t to_int(const std::string& k, const std::string& v) {
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used != v.size() || n < 0) throw 0;
    return n;
  } catch (...) {
    throw ConfigError(k + " expects a non-negative integer, got '" + v + "'");
  }
}

}  // namespace

int eval_command(int argc, char** argv) {
  std::string model_dir, data, class_name, out, device = "auto", mask_mode = "nearest";
  EvalOptions o;
  for (int i = 0; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::printf("%s", kEvalUsage);
      return 0;
    }
    if (k == "--save-maps") {
      o.save_maps = true;
      continue;
    }
    if (i + 1 >= argc) throw ConfigError("eval: " + k + " needs a value", kEvalUsage);
    const std::string v = argv[++i];
    if (k == "--model") model_dir = v;
    else if (k == "--data") data = v;
    else if (k == "--class") class_name = v;
    else if (k == "--out") out = v;
    else if (k == "--device") device = v;
    else if (k == "--mask-resize") mask_mode = v;
    else if (k == "--max-images") o.max_heatmaps = to_int(k, v);
    else if (k == "--batch") o.batch = std::max<int64_t>(1, to_int(k, v));
    else throw ConfigError("eval: unknown option '" + k + "'", kEvalUsage);
  }
  if (model_dir.empty() || data.empty() || class_name.empty())
    throw ConfigError("eval: --model, --data and --class are required", kEvalUsage);
  if (mask_mode != "nearest" && mask_mode != "draem")
    throw ConfigError("eval: --mask-resize is nearest or draem, not '" + mask_mode + "'");
  o.out_dir = out.empty() ? (fs::path(model_dir) / "eval").string() : out;
  const Device d = parse_device(device.c_str());
  TrainedModel tm = load_trained_model(model_dir, d);
  std::vector<std::string> warnings;
  // A class folder of MVTec layout, or one generator's folder of caf simulate (test/ only).
  std::string class_dir;
  if (fs::is_directory(fs::path(data) / class_name / "test") && !fs::is_directory(fs::path(data) / class_name / "train"))
    class_dir = (fs::path(data) / class_name).string();
  else
    class_dir = resolve_class_dir(data, class_name);
  const TestSet ts = load_test_set(class_dir, tm.config.size,
                                   mask_mode == "draem" ? MaskResize::draem : MaskResize::nearest, &warnings);
  for (const std::string& w : warnings) std::printf("warning: %s\n", w.c_str());
  std::printf("evaluating %s on %lld test images of %s (%s), %dx%d, on %s\n", tm.weights.c_str(),
              (long long)ts.items.size(), ts.class_dir.c_str(), mask_mode.c_str(), tm.config.size,
              tm.config.size, device_name(d));
  const EvalResult r = evaluate(*tm.model, ts, o);
  std::printf("\n%s: %lld images (%lld anomalous)\n%s\n", class_name.c_str(), (long long)r.n_images,
              (long long)r.n_anomalous, r.table().c_str());
  std::printf("wrote %s/metrics.json, roc.png, pr.png and %s heatmaps in %s/heatmaps%s\n", o.out_dir.c_str(),
              o.max_heatmaps < 0 ? "all" : std::to_string(o.max_heatmaps).c_str(), o.out_dir.c_str(),
              o.save_maps ? "; maps.npy and scores.npy" : "");
  return 0;
}

int infer_command(int argc, char** argv) {
  std::string model_dir, out = ".", device = "auto";
  std::vector<std::string> files;
  for (int i = 0; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::printf("%s", kInferUsage);
      return 0;
    }
    if (k.rfind("--", 0) == 0) {
      if (i + 1 >= argc) throw ConfigError("infer: " + k + " needs a value", kInferUsage);
      const std::string v = argv[++i];
      if (k == "--model") model_dir = v;
      else if (k == "--out") out = v;
      else if (k == "--device") device = v;
      else throw ConfigError("infer: unknown option '" + k + "'", kInferUsage);
    } else {
      files.push_back(k);
    }
  }
  if (model_dir.empty() || files.empty()) throw ConfigError("infer: --model DIR and at least one IMAGE", kInferUsage);
  const Device d = parse_device(device.c_str());
  TrainedModel tm = load_trained_model(model_dir, d);
  const int S = tm.config.size;
  fs::create_directories(out);
  for (const std::string& file : files) {
    const Image im = image_resize_bilinear(image_to_rgb(image_read(file)), S, S);
    const std::vector<uint8_t> chw = image_to_planar(im);
    const std::vector<float> map = anomaly_maps(*tm.model, Tensor::from_bytes({1, 3, S, S}, chw), 1);
    const float score = image_score(map.data(), S, S);
    const std::string heat = (fs::path(out) / (fs::path(file).stem().string() + "_heatmap.png")).string();
    Image overlay = heatmap_overlay(chw.data(), map.data(), S, S, 0.f, 1.f);
    image_write_png(heat, S < 256 ? image_resize_bilinear(overlay, 256, 256) : overlay);
    std::printf("%s\t%.6f\t%s\n", file.c_str(), double(score), heat.c_str());
  }
  return 0;
}

}  // namespace caf
