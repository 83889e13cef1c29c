// tools/train_cmd.cpp: `caf train`: options → TrainConfig → train/trainer.h, with Ctrl-C saving a
// checkpoint first. The effective config is printed and written beside the model.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kernels/error.h"
#include "kernels/runtime.h"
#include "train/trainer.h"

namespace caf {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

void on_sigint(int) {
  g_interrupted = 1;
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C stops at once
}

const char* kUsage =
    "usage: caf train --data DIR --class NAME [--textures DIR] [--preset tiny|paper] [--config FILE]\n"
    "                 [--out DIR] [--resume] [--mode split|draem] [--epochs N] [--seed N]\n"
    "                 [--device cpu|cuda|auto] [--classes FILE] [--precision tf32|bf16|fp32]\n"
    "                 [--algorithms deterministic|fastest|reproducible] [--layout nchw|nhwc]\n"
    "                 [--activations fp32|bf16]\n"
    "                 [--graph]\n"
    "  --data DIR       the MVTec AD root (DIR/NAME/train/good) or the class folder itself\n"
    "  --textures DIR   anomaly-source images (DTD or any folder); default: a procedural bank\n"
    "  --preset         tiny: 64 px, widths 16/8 (a CPU); paper: 256 px, widths 128/64, 700 epochs\n"
    "  --config FILE    JSON overriding any key of the preset (see the printed config)\n"
    "  --out DIR        where config.json, train_log.jsonl and the checkpoints go (default runs/NAME)\n"
    "  --resume         continue the run in --out from its checkpoint, with its saved config\n"
    "  --mode draem     DRAEM's protocol (no split) for the ablations of paper Table 4\n"
    "  --precision      convolutions: tf32 tensor cores (default; the CPU computes fp32), bf16 mixed\n"
    "                   precision (bf16 convolutions, fp32 weights and everything else), exact fp32\n"
    "  --algorithms     cuDNN: reproducible (default: no atomics, chosen by cuDNN's heuristics\n"
    "                   without timing: the same in every process, so runs repeat and resume bit\n"
    "                   for bit on the same GPU and cuDNN; as fast as timed ones for TF32 on an\n"
    "                   H200), deterministic (no atomics, the fastest such as timed afresh in each\n"
    "                   process, so a resumed run may pick others and differ in the last bits), or\n"
    "                   fastest (any algorithm, timed)\n"
    "  --layout nhwc    with --precision bf16: convolutions on channels-last bf16 copies (cuDNN's\n"
    "                   NHWC kernels); the same results on the CPU\n"
    "  --activations bf16  with --precision bf16: activations between the convolutions in bf16\n"
    "                   (half the memory and traffic; statistics, weights, gradients stay fp32);\n"
    "                   with --layout nhwc too they stay channels-last between the convolutions\n"
    "  --graph          after one eager step, capture the whole step (sampling, simulation, both\n"
    "                   networks, Adam) as a CUDA graph and replay it: no launches, no host work\n";

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw IoError(path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace

int train_command(int argc, char** argv) {
  TrainOptions opt;
  std::string preset, config_file, device = "auto";
  nlohmann::json overrides = nlohmann::json::object();
  for (int i = 0; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (k == "--resume") {
      opt.resume = true;
      continue;
    }
    if (k == "--graph") {
      overrides["graph"] = true;
      continue;
    }
    if (i + 1 >= argc) throw ConfigError("train: " + k + " needs a value", kUsage);
    const std::string v = argv[++i];
    auto integer = [&] {
      try {
        size_t used = 0;
        const long long n = std::stoll(v, &used);
        if (used != v.size() || n < 0) throw 0;
        return n;
      } catch (...) {
        throw ConfigError("train: " + k + " expects a non-negative integer, got '" + v + "'");
      }
    };
    if (k == "--data") opt.data = v;
    else if (k == "--class") opt.class_name = v;
    else if (k == "--out") opt.out_dir = v;
    else if (k == "--preset") preset = v;
    else if (k == "--config") config_file = v;
    else if (k == "--device") device = v;
    else if (k == "--textures") overrides["textures"] = v;
    else if (k == "--classes") overrides["classes"] = v;
    else if (k == "--mode") overrides["mode"] = v;
    else if (k == "--precision") overrides["precision"] = v;
    else if (k == "--algorithms") overrides["algorithms"] = v;
    else if (k == "--layout") overrides["layout"] = v;
    else if (k == "--activations") overrides["activations"] = v;
    else if (k == "--epochs") overrides["epochs"] = integer();
    else if (k == "--seed") overrides["seed"] = integer();
    else throw ConfigError("train: unknown option '" + k + "'", kUsage);
  }
  if (opt.data.empty() || opt.class_name.empty())
    throw ConfigError("train: --data DIR and --class NAME are required", kUsage);
  if (opt.out_dir.empty()) opt.out_dir = "runs/" + opt.class_name;
  opt.device = parse_device(device.c_str());

  TrainConfig cfg;
  const std::string saved = opt.out_dir + "/config.json";
  if (opt.resume) {
    if (!preset.empty() || !config_file.empty() || !overrides.empty())
      throw ConfigError("train: a resumed run keeps its config (" + saved + ")",
                        "drop --preset/--config/--epochs/... or train into a new --out");
    cfg = TrainConfig::from_json(read_json(saved), saved, TrainConfig::preset_named("tiny"));
  } else {
    cfg = TrainConfig::preset_named(preset.empty() ? "tiny" : preset);
    if (!config_file.empty()) cfg = TrainConfig::from_json(read_json(config_file), config_file, cfg);
    cfg = TrainConfig::from_json(overrides, "command line", cfg);
  }
  std::printf("config (saved to %s):\n%s\n", saved.c_str(), cfg.to_json().dump(2).c_str());

  g_interrupted = 0;
  std::signal(SIGINT, on_sigint);
  opt.stop_requested = [] { return g_interrupted != 0; };
  const TrainResult r = train(cfg, opt);
  std::signal(SIGINT, SIG_DFL);
  if (r.interrupted) return 130;
  std::printf("trained %lld steps in %.1f s; model: %s\nnext: caf eval --model %s --data %s --class %s\n",
              (long long)r.steps, r.seconds, r.model_path.c_str(), opt.out_dir.c_str(), opt.data.c_str(),
              opt.class_name.c_str());
  return 0;
}

}  // namespace caf
