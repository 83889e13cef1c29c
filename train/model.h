// train/model.h: the two networks with their optimisers, the training steps, and checkpoints.
//
// The split-training step (METHOD 3.2) is one function used by both the trainer and the
// benchmark: R learns only from the X batch (SSIM + L2 against the clean image); the Y batch goes
// through R without gradient, with batch norm in inference mode by default, and S learns from
// [Y with anomaly, R(Y with anomaly)] with the focal loss. draem_step is DRAEM's original step
// (one batch trains both networks, reconstruction not detached) for the ablations.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "nn/networks.h"
#include "nn/optim.h"

namespace caf {

struct ModelConfig {
  int64_t recon_width = 128, discr_width = 64;
  bool y_pass_batch_stats = false;  // METHOD 3.2 [proposed]: the Y pass of R uses running stats
  AdamConfig adam;
  uint64_t seed = 0;
  std::string to_json() const;
  static ModelConfig from_json(const std::string& text);  // throws ConfigError
};

struct Model {
  ModelConfig config;
  Device device;
  ReconstructiveNet recon;
  DiscriminativeNet discr;
  std::unique_ptr<Adam> opt_recon, opt_discr;
  int64_t step = 0;  // training steps taken
  Model(const ModelConfig& cfg, Device d);
};

// Loss values stay on the device; read them with values() when needed (one host sync).
struct StepLosses {
  Tensor l2, ssim, focal, total;
  std::map<std::string, float> values() const;
};

// Images are N x 3 x H x W in [0, 1]; masks N x 1 x H x W with 1 = anomalous.
struct SplitBatch {
  Tensor x_clean, x_aug;  // X half: clean target and the image with a simulated anomaly
  Tensor y_aug, y_mask;   // Y half: image with a simulated anomaly and its mask
};

StepLosses split_step(Model& m, const SplitBatch& b);
StepLosses draem_step(Model& m, const Tensor& clean, const Tensor& aug, const Tensor& mask);

// Anomaly map for images x: softmax channel 1 of S([x, R(x)]), both networks in inference mode.
Tensor anomaly_map(const Model& m, const Tensor& x);

// Safetensors checkpoint: every parameter and running statistic under its state-dict name, the
// Adam moments ("optim.recon.exp_avg", ...) and, in the metadata, the format, step counts and the
// config. Written to a temporary file and renamed.
void save_checkpoint(const std::string& path, const Model& m);
// Loads into a model built with the same config; names every missing, unexpected or mis-shaped
// tensor in one IoError.
void load_checkpoint(const std::string& path, Model& m);
ModelConfig read_checkpoint_config(const std::string& path);

}  // namespace caf
