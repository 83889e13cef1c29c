// augment/simulator.h: the anomaly simulation framework as one object the trainer calls per step.
//
// A Simulator holds the simulation constants (SimConfig: every [proposed] constant of METHOD.md 4
// is a key here), the class's selection of generators (METHOD 4.6, from configs/mvtec_classes.json
// compiled into the binary, or a user's file) and the texture bank. run() takes a batch of clean
// images on any device and a step number and returns the target, the image with anomalies and the
// mask on the same device: no copy to the host, no blocking call (augment/simulate.h). The same
// seed gives the same batch on the CPU and the GPU.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "augment/plan.h"
#include "augment/texture_bank.h"
#include "nn/tensor.h"

namespace caf {

struct SimConfig {
  float p_anomaly = 0.5f;                      // DRAEM: half the samples stay normal
  float beta_lo = 0.2f, beta_hi = 0.8f;        // transparent opacity [proposed]
  float rotation_p = 0.3f;                     // DRAEM's rotation probability
  float rotation_deg = 90.f;                   // DRAEM's range U(-90, 90)
  bool rotation_reflect = true;                // fill exposed corners by reflection [proposed]
  float perlin_threshold = 0.5f;               // DRAEM
  float ndaa_size_lo = 0.1f, ndaa_size_hi = 0.5f;   // NDAA constants [proposed]
  float ndaa_amp_lo = 2.f, ndaa_amp_hi = 8.f;
  float ndaa_freq_lo = 0.5f, ndaa_freq_hi = 2.f;
  float ndaa_tau = 0.05f;
  int ndaa_block = 8;
};
// JSON: {"p_anomaly": 0.5, "beta": [0.2, 0.8], "rotation_p": 0.3, "rotation_deg": 90,
// "rotation_fill": "reflect"|"zero", "perlin_threshold": 0.5, "ndaa_size": [0.1, 0.5],
// "ndaa_amplitude": [2, 8], "ndaa_frequency": [0.5, 2], "ndaa_tau": 0.05, "ndaa_block": 8};
// missing keys keep their defaults; unknown keys and bad values throw ConfigError naming `where`.
SimConfig sim_config_from_json(const nlohmann::json& j, const std::string& where);
nlohmann::json sim_config_to_json(const SimConfig& c);

struct ClassSelection {
  std::string name;
  bool generators[kGeneratorCount] = {true, true, true};  // transparent, opaque, ndaa
  bool rotation = false;
  bool known = true;  // false: the class is not in the table and got the table's default
  std::string source; // the table it came from ("built-in" or a path)
  std::string describe() const;  // "bottle: transparent, opaque, ndaa; rotation"
};
// The class's entry of `table_path` (empty: the built-in copy of configs/mvtec_classes.json).
// Unknown generator names, unknown keys and malformed files throw ConfigError naming the file.
ClassSelection class_selection(const std::string& class_name, const std::string& table_path = "");
// The same from the table's text; `where` names it in errors and becomes the selection's source.
ClassSelection class_selection_from_text(const std::string& class_name,
                                         const std::string& json_text, const std::string& where);
// Parses a generator name: transparent, opaque or ndaa; anything else throws ConfigError.
Generator generator_from_name(const std::string& name, const std::string& where);

class Simulator {
 public:
  Simulator(const SimConfig& config, const ClassSelection& selection, TextureBank bank, uint64_t seed);

  struct Batch {
    Tensor target;  // [N, 3, H, W]: the clean image after any normal rotation (R's target)
    Tensor image;   // [N, 3, H, W]: target with the simulated anomaly
    Tensor mask;    // [N, 1, H, W]: 1 where anomalous
  };
  // clean: f32 [N, 3, H, W] in [0, 1], H x W the texture size. Samples are numbered
  // first_sample .. first_sample + N - 1 within the step, so two calls with different
  // first_sample (the X and Y halves of a split step) draw independent anomalies.
  // step_ptr (optional, device memory of clean's device): read the step number there instead,
  // so a captured CUDA graph simulates a new step on each replay.
  Batch run(const Tensor& clean, uint32_t step, uint32_t first_sample = 0, const uint32_t* step_ptr = nullptr);

  // The plans run() draws, computed on the host (for tests, previews and manifests).
  std::vector<SamplePlan> plans(int64_t n, uint32_t step, uint32_t first_sample = 0) const;

  const SimConfig& config() const { return config_; }
  const ClassSelection& selection() const { return selection_; }
  const TextureBank& bank() const { return bank_; }
  uint64_t seed() const { return seed_; }

 private:
  PlanSettings settings(uint32_t step, uint32_t first_sample) const;

  SimConfig config_;
  ClassSelection selection_;
  TextureBank bank_;
  uint64_t seed_;
  Buffer workspace_;  // grows to the largest batch seen, on the batch's device
};

}  // namespace caf
