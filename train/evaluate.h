// train/evaluate.h: evaluation of a trained model on an MVTec AD class (METHOD.md 5, 6).
//
// Anomaly maps come from anomaly_map() in batches on the model's device; the image score is the
// maximum of the 21 x 21 mean of the map; image AUROC/AP, pixel AUROC/AP and AU-PRO (FPR <= 0.3)
// are computed exactly on the host (train/metrics.h). Results go to the terminal, metrics.json,
// ROC/PR plots, heatmap overlays and, on request, the raw maps as .npy for recomputation elsewhere.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "train/dataset.h"
#include "train/model.h"
#include "train/trainer.h"

namespace caf {

// A model directory written by caf train: config.json + model.safetensors (or, for a run that has
// not finished, checkpoint.safetensors).
struct TrainedModel {
  TrainConfig config;
  std::unique_ptr<Model> model;
  std::string weights;  // the file loaded
};
TrainedModel load_trained_model(const std::string& dir, Device d);

// Anomaly maps [n, 1, S, S] (float, host) of images u8 [n, 3, S, S], in batches on the model's device.
std::vector<float> anomaly_maps(const Model& m, const Tensor& images, int64_t batch);

struct EvalOptions {
  int64_t batch = 8;
  std::string out_dir;      // empty: no files
  int64_t max_heatmaps = -1;  // -1: every test image
  bool save_maps = false;
};

struct EvalResult {
  double image_auroc = 0, image_ap = 0, pixel_auroc = 0, pixel_ap = 0, pixel_aupro = 0;
  int64_t n_images = 0, n_anomalous = 0;
  std::map<std::string, double> defect_image_auroc;  // each defect type against the good images
  std::vector<float> scores;                          // per test image, in TestSet order
  nlohmann::json to_json(const TestSet& ts) const;
  std::string table() const;  // the terminal table
};

EvalResult evaluate(const Model& m, const TestSet& ts, const EvalOptions& o);

// Writes a float32 array as NumPy .npy (version 1.0, little-endian, C order), atomically.
void write_npy(const std::string& path, const std::vector<float>& data, const std::vector<int64_t>& shape);

}  // namespace caf
