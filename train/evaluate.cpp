#include "train/evaluate.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "augment/image_io.h"
#include "kernels/error.h"
#include "train/atomic_file.h"
#include "train/metrics.h"
#include "train/plot.h"

namespace caf {

namespace fs = std::filesystem;
using nlohmann::json;

TrainedModel load_trained_model(const std::string& dir, Device d) {
  const fs::path cfg_path = fs::path(dir) / "config.json";
  std::ifstream f(cfg_path);
  if (!f) throw IoError(cfg_path.string() + ": missing", "--model is the folder caf train wrote (--out)");
  std::stringstream ss;
  ss << f.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::exception& e) {
    throw ConfigError(cfg_path.string() + ": not valid JSON: " + e.what());
  }
  TrainedModel t;
  t.config = TrainConfig::from_json(j, cfg_path.string(), TrainConfig::preset_named("tiny"));
  t.weights = (fs::path(dir) / "model.safetensors").string();
  if (!fs::exists(t.weights)) t.weights = (fs::path(dir) / "checkpoint.safetensors").string();
  if (!fs::exists(t.weights))
    throw IoError(dir + ": neither model.safetensors nor checkpoint.safetensors", "train first: caf train");
  t.model = std::make_unique<Model>(t.config.model, d);
  load_checkpoint(t.weights, *t.model);
  return t;
}

std::vector<float> anomaly_maps(const Model& m, const Tensor& images, int64_t batch) {
  const int64_t n = images.dim(0), S = images.dim(2), per = 3 * S * S;
  const std::vector<uint8_t> bytes = images.to_bytes();
  std::vector<float> maps(size_t(n * S * S));
  for (int64_t b0 = 0; b0 < n; b0 += batch) {
    const int64_t b = std::min(batch, n - b0);
    std::vector<float> x(size_t(b * per));
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(bytes[size_t(b0 * per) + i]) / 255.f;
    const std::vector<float> out = anomaly_map(m, Tensor::from_vector({b, 3, S, S}, x, m.device)).to_vector();
    std::memcpy(maps.data() + b0 * S * S, out.data(), out.size() * sizeof(float));
  }
  return maps;
}

void write_npy(const std::string& path, const std::vector<float>& data, const std::vector<int64_t>& shape) {
  std::string dims;
  for (int64_t s : shape) dims += std::to_string(s) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  header.append(63 - (10 + header.size()) % 64, ' ');  // pad so the data starts on a 64-byte boundary
  header += '\n';
  const uint16_t len = uint16_t(header.size());
  const char prefix[10] = {'\x93', 'N', 'U', 'M', 'P', 'Y', '\x01', '\x00', char(len & 0xFF), char(len >> 8)};
  write_file_atomic(path, {std::string_view(prefix, sizeof prefix), header,
                           std::string_view(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float))});
}

json EvalResult::to_json(const TestSet& ts) const {
  json per_image = json::array();
  for (size_t i = 0; i < ts.items.size(); ++i)
    per_image.push_back({{"file", ts.items[i].file}, {"defect", ts.items[i].defect}, {"score", scores[i]}});
  return {{"image_auroc", image_auroc}, {"image_ap", image_ap}, {"pixel_auroc", pixel_auroc},
          {"pixel_ap", pixel_ap},       {"pixel_aupro_0.3", pixel_aupro}, {"n_images", n_images},
          {"n_anomalous", n_anomalous}, {"defect_image_auroc", defect_image_auroc}, {"images", per_image}};
}

std::string EvalResult::table() const {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "| image AUROC | image AP | pixel AUROC | pixel AP | AU-PRO (0.3) |\n"
                "|---|---|---|---|---|\n"
                "| %.1f | %.1f | %.1f | %.1f | %.1f |\n",
                100 * image_auroc, 100 * image_ap, 100 * pixel_auroc, 100 * pixel_ap, 100 * pixel_aupro);
  std::string s = buf;
  for (const auto& [defect, v] : defect_image_auroc) {
    std::snprintf(buf, sizeof buf, "  %-24s image AUROC %.1f\n", defect.c_str(), 100 * v);
    s += buf;
  }
  return s;
}

EvalResult evaluate(const Model& m, const TestSet& ts, const EvalOptions& o) {
  const int64_t n = ts.images.dim(0), S = ts.images.dim(2), plane = S * S;
  const std::vector<float> maps = anomaly_maps(m, ts.images, o.batch);
  const std::vector<uint8_t> masks = ts.masks.to_bytes();
  EvalResult r;
  r.n_images = n;
  std::vector<uint8_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    r.scores.push_back(image_score(maps.data() + i * plane, int(S), int(S)));
    labels[size_t(i)] = ts.items[size_t(i)].anomalous;
    r.n_anomalous += labels[size_t(i)];
  }
  r.image_auroc = auroc(r.scores, labels);
  r.image_ap = average_precision(r.scores, labels);
  std::vector<uint8_t> pixel_labels(masks.size());
  for (size_t i = 0; i < masks.size(); ++i) pixel_labels[i] = masks[i] != 0;
  r.pixel_auroc = auroc(maps, pixel_labels);
  r.pixel_ap = average_precision(maps, pixel_labels);
  std::vector<const float*> map_ptrs;
  std::vector<const uint8_t*> mask_ptrs;
  for (int64_t i = 0; i < n; ++i) {
    map_ptrs.push_back(maps.data() + i * plane);
    mask_ptrs.push_back(pixel_labels.data() + i * plane);
  }
  r.pixel_aupro = au_pro(map_ptrs, mask_ptrs, int(S), int(S));
  for (const std::string& defect : ts.defect_types) {
    std::vector<float> s;
    std::vector<uint8_t> l;
    for (int64_t i = 0; i < n; ++i)
      if (ts.items[size_t(i)].defect == "good" || ts.items[size_t(i)].defect == defect) {
        s.push_back(r.scores[size_t(i)]);
        l.push_back(labels[size_t(i)]);
      }
    if (std::count(l.begin(), l.end(), 0) > 0 && std::count(l.begin(), l.end(), 1) > 0)
      r.defect_image_auroc[defect] = auroc(s, l);
  }
  if (o.out_dir.empty()) return r;

  const fs::path out(o.out_dir);
  {
    std::error_code ec;
    fs::create_directories(out / "heatmaps", ec);
    if (ec) throw IoError((out / "heatmaps").string() + ": cannot create (" + ec.message() + ")",
                          "is a part of the path a file, or the disk read-only?");
  }
  {
    const std::string text = r.to_json(ts).dump(2) + "\n";
    write_file_atomic((out / "metrics.json").string(), {text});
  }
  image_write_png((out / "roc.png").string(),
                  plot_curves({roc_curve(r.scores, labels), roc_curve(maps, pixel_labels), Curve{{0, 1}, {0, 1}}},
                              {"image, AUROC " + std::to_string(r.image_auroc).substr(0, 5),
                               "pixel, AUROC " + std::to_string(r.pixel_auroc).substr(0, 5), "chance"},
                              "ROC", "false positive rate", "true positive rate"));
  image_write_png((out / "pr.png").string(),
                  plot_curves({pr_curve(r.scores, labels), pr_curve(maps, pixel_labels)},
                              {"image, AP " + std::to_string(r.image_ap).substr(0, 5),
                               "pixel, AP " + std::to_string(r.pixel_ap).substr(0, 5)},
                              "precision-recall", "recall", "precision"));
  const std::vector<uint8_t> bytes = ts.images.to_bytes();
  const int64_t heatmaps = o.max_heatmaps < 0 ? n : std::min(n, o.max_heatmaps);
  for (int64_t i = 0; i < heatmaps; ++i) {
    const TestItem& it = ts.items[size_t(i)];
    Image overlay = heatmap_overlay(bytes.data() + i * 3 * plane, maps.data() + i * plane, int(S), int(S), 0.f,
                                    1.f, it.anomalous ? masks.data() + i * plane : nullptr);
    if (S < 256) overlay = image_resize_bilinear(overlay, 256, 256);  // small models: enlarge for viewing
    image_write_png((out / "heatmaps" / (it.defect + "_" + fs::path(it.file).stem().string() + ".png")).string(),
                    overlay);
  }
  if (o.save_maps) {
    write_npy((out / "maps.npy").string(), maps, {n, S, S});
    write_npy((out / "scores.npy").string(), r.scores, {n});
  }
  return r;
}

}  // namespace caf
