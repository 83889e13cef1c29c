// train/trainer.h: the training loop of METHOD.md 3 (split training by default, DRAEM's protocol for
// ablations) with the anomaly simulation of augment/ feeding it on the device.
//
// Key decision: every random choice of a step (which images fill the batch, every anomaly) is a pure
// function of (seed, step), so the loop keeps no random state: a checkpoint is the networks, the
// Adam moments and the step number, and --resume continues exactly where the run stopped. The loop
// touches the host only to log (one scalar readback every log_every steps) and to save checkpoints.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "augment/simulator.h"
#include "train/model.h"

namespace caf {

struct TrainConfig {
  std::string preset = "tiny";
  int size = 64;                  // images and textures are resized to size x size
  ModelConfig model;              // widths, Adam, the Y-pass batch-norm switch, init seed
  int64_t batch = 8;              // per half in split mode (X and Y), the whole batch in DRAEM mode
  int64_t epochs = 100;           // an epoch is ceil(N / batch) steps, N = training images
  std::string mode = "split";     // "split" (METHOD 3.2) or "draem" (no split, paper Table 4)
  std::string simulation_kind = "caf";  // "caf" (METHOD 4) or "draem" (DRAEM's: transparent only,
                                        // opacity U(0.2, 1), rotation of every class, black fill)
  SimConfig simulation;
  uint64_t seed = 0;              // data sampling and anomalies
  int64_t log_every = 10;         // steps between progress lines (each reads the losses back)
  int64_t checkpoint_every = 500; // steps between checkpoints
  std::string textures;           // texture folder; empty: procedural bank
  int64_t procedural_textures = 64;
  int64_t max_textures = 0;       // 0: every image of the folder
  std::string classes;            // class table file; empty: the built-in one
  std::string precision = "tf32"; // convolutions: "tf32", "bf16" (mixed precision) or "fp32" (exact)
  // cuDNN: "reproducible" (no atomics, chosen by cuDNN's heuristics: the same in every process, so
  // a resumed GPU run is bit-exact; the default since run 9 on an H200 measured it resuming exactly
  // and as fast as "deterministic" for TF32: 95.3 against 95.9 ms), "deterministic" (no atomics,
  // timed in each process: the fastest such, but a resumed process may pick others) or "fastest"
  // (any, timed). kernels/runtime.h set_timed_algorithms.
  std::string algorithms = "reproducible";
  std::string layout = "nchw";    // bf16 convolutions: "nchw" or "nhwc" (channels-last copies; bf16 only)
  std::string activations = "fp32";  // "bf16": bf16 activations between convolutions (bf16 only)
  bool graph = false;             // after one eager step, capture a step as a CUDA graph and replay it

  static TrainConfig preset_named(const std::string& name);  // "tiny" or "paper"
  nlohmann::json to_json() const;
  // Overrides on top of `base`; unknown keys and bad values throw ConfigError naming `where`.
  static TrainConfig from_json(const nlohmann::json& j, const std::string& where, TrainConfig base);
};

struct TrainOptions {
  std::string data, class_name, out_dir;
  bool resume = false;
  Device device = Device::cpu;
  std::function<bool()> stop_requested;  // polled between steps (Ctrl-C)
  std::function<void(const std::string&)> print;  // progress lines; default: stdout
};

struct TrainResult {
  int64_t steps = 0, total_steps = 0;
  bool interrupted = false;
  std::string model_path;  // the final model, or the checkpoint when interrupted
  double seconds = 0;
};

// Trains and writes into out_dir: config.json (the effective config), train_log.jsonl (one JSON
// object per logged step), checkpoint.safetensors (every checkpoint_every steps, atomically) and
// model.safetensors (at the end). A NaN or infinite loss throws with the step range it appeared in;
// the last checkpoint written before it stays.
TrainResult train(const TrainConfig& cfg, const TrainOptions& opt);

}  // namespace caf
