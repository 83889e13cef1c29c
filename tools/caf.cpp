// tools/caf.cpp: the caf command line. Library code throws; this main catches, prints one clear
// message (with its hint) and exits non-zero.
//
// Today: `caf info` (build, devices, allocator), `caf bench step|augment|convs`, `caf preview` and
// `caf checkpoint-new`. Training and evaluation arrive with their issues; the usage text lists only
// what works.
#include <cstdio>
#include <cstring>
#include <string>

#include "kernels/error.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"
#include "nn/ops.h"
#include "train/model.h"

namespace caf {
int bench_step(int argc, char** argv);     // tools/bench_step.cpp
int bench_augment(int argc, char** argv);  // tools/bench_augment.cpp
int bench_convs(int argc, char** argv);    // tools/bench_convs.cpp
int preview(int argc, char** argv);        // tools/preview.cpp
int make_toy(int argc, char** argv);       // tools/make_toy.cpp
int train_command(int argc, char** argv);  // tools/train_cmd.cpp
int eval_command(int argc, char** argv);   // tools/eval_cmd.cpp
int infer_command(int argc, char** argv);  // tools/eval_cmd.cpp
int simulate_command(int argc, char** argv);  // tools/simulate_cmd.cpp
int report_command(int argc, char** argv);    // tools/simulate_cmd.cpp
}

namespace {

// One entry per command: its name as typed, then its usage block (shown by `caf --help` and, for
// commands without a longer help of their own, by `caf <command> --help`).
struct CommandHelp {
  const char* name;
  const char* text;
};
const CommandHelp kCommands[] = {
    {"train",
     "  train --data DIR --class NAME [--textures DIR] [--preset tiny|paper] [--config FILE]\n"
     "          [--out DIR] [--resume] [--mode split|draem]\n"
     "          train both networks with the simulated anomalies (split training by default)\n"},
    {"eval",
     "  eval --model DIR --data DIR --class NAME [--out DIR] [--max-images N] [--save-maps]\n"
     "          image/pixel AUROC and AP, AU-PRO, heatmaps and curves on the class's test set\n"},
    {"infer", "  infer --model DIR IMAGE...\n          an anomaly score and a heatmap per image\n"},
    {"simulate",
     "  simulate --data DIR --class NAME --out DIR [--generators cutpaste,nsa,ndaa,opaque,transparent]\n"
     "          [--seed S] [--textures DIR] [--size PX]\n"
     "          build the simulated-anomaly benchmark (paper Table 3) from test/good\n"},
    {"report",
     "  report --model DIR --bench DIR --class NAME [--out DIR]\n"
     "          evaluate a model on that benchmark: the per-generator table of paper Table 3\n"},
    {"make-toy",
     "  make-toy --out DIR [--kind texture|object] [--seed S] [--size PX] [--train N]\n"
     "          [--test-good N] [--test-per-defect N] [--name NAME]\n"
     "          write the built-in toy class (MVTec AD layout) to DIR/toy_<kind>\n"},
    {"preview",
     "  preview --data DIR --class NAME [--textures DIR] [--classes FILE] [--config FILE]\n"
     "          [--seed N] [--samples K] [--cell PX] --out grid.png\n"
     "          a PNG grid of the simulated anomalies (per generator, rotation, the mix)\n"},
    {"info", "  info    build configuration, the device that runs, and a smoke test on it\n"},
    {"bench",
     "  bench step [--device cpu|cuda|auto] [--size S] [--batch B] [--widths R,S] [--steps N]\n"
     "          [--warmup N] [--mode split|draem] [--precision tf32|bf16|fp32] [--augment]\n"
     "          [--graph] [--algos deterministic|fastest|reproducible] [--ops] [--trace FILE.json]\n"
     "          [--json FILE] [--track N --init CHECKPOINT] [--fuse on|off] [--recompute on|off]\n"
     "          [--write-first on|off] [--layout nchw|nhwc] [--activations fp32|bf16]\n"
     "          [--bf16-grads on|off] [--memory]\n"
     "          time the whole training step (forward, backward, Adam of both networks), then a\n"
     "          phase breakdown (augment, R/S forward, losses, R/S backward, optimizer); --graph\n"
     "          replays one captured step as a CUDA graph; --fuse off runs batch norm and ReLU as\n"
     "          two ops (cuDNN's, then caf's) instead of one; --recompute off keeps every\n"
     "          convolution's input instead of recomputing it in the backward; --write-first off\n"
     "          zero-fills every activation gradient; --ops adds per-op times; --layout nhwc runs\n"
     "          bf16 convolutions on channels-last copies; --activations bf16 (with --precision\n"
     "          bf16) stores the activations between convolutions in bf16 (channels-last with\n"
     "          --layout nhwc); --bf16-grads off keeps their gradients fp32 (with bf16\n"
     "          activations a gradient between a convolution and its batch norm is bf16 by default);\n"
     "          --memory lists the bytes in use at the peak by the phase and op that allocated\n"
     "          them, then the peak per phase (not with --graph); --trace writes\n"
     "          a Chrome trace (Perfetto), --json the result for scripts; --track N prints the\n"
     "          losses of N steps from a checkpoint (the gate against bench/torch_reference.py)\n"
     "  bench augment [--device cpu|cuda|auto] [--batch B] [--size S] [--steps N] [--warmup N]\n"
     "          [--class NAME] [--textures DIR] [--mix]\n"
     "          anomaly-simulation throughput (images/s) of the batch pipeline\n"
     "  bench convs [--device cpu|cuda|auto] [--size S] [--batch B] [--widths R,S]\n"
     "          [--precision tf32|bf16|fp32] [--layout nchw|nhwc]\n"
     "          [--algos deterministic|fastest|reproducible] [--trials N] [--calls N] [--json FILE]\n"
     "          every convolution of both networks timed alone (forward, input and weight\n"
     "          gradients; ms, TFLOP/s, cost per training step), the costliest first\n"},
    {"checkpoint-new",
     "  checkpoint-new --widths R,S [--seed N] --out FILE\n"
     "          write freshly initialised networks as a checkpoint (.safetensors)\n"},
};

int usage(int code) {
  std::printf("usage: caf <command> (caf <command> --help for one command)\n");
  for (const CommandHelp& c : kCommands) std::printf("%s", c.text);
  std::printf(
      "environment: CAF_DEVICE=cpu forces the CPU; CAF_SYNC_DEBUG=1 synchronises after every\n"
      "kernel so asynchronous GPU faults are reported where they happen; CAF_TF32=1 makes TF32\n"
      "convolutions the library default (train and bench step use --precision, tf32 unless told);\n"
      "CAF_FUSE=0 runs batch norm and ReLU as two ops, CAF_RECOMPUTE=0 keeps every activation\n"
      "instead of recomputing it in the backward, CAF_WRITE_FIRST=0 zero-fills every gradient\n"
      "buffer instead of letting its first contribution write it (all three on by default; the\n"
      "GPU kernels behind them have not yet run on a GPU).\n");
  return code;
}

// `caf <command> --help` for commands whose own parser has no help text.
bool short_help(int argc, char** argv) {
  for (int i = 2; i < argc; ++i)
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h"))
      for (const CommandHelp& c : kCommands)
        if (!std::strcmp(argv[1], c.name)) {
          std::printf("usage:\n%s", c.text);
          return true;
        }
  return false;
}

int info() {
  using namespace caf;
  std::printf("caf 0.1.0\n");
  std::printf("  CUDA backend compiled: %s\n", cuda_compiled() ? "yes" : "no");
  Device d = default_device();
  std::printf("  device: %s (%s)\n", device_name(d), device_description(d));
  // Smoke test: a 3x3 convolution and its gradient on the chosen device.
  Tensor x = Tensor::uniform({2, 3, 16, 16}, 1, 0, 1, d);
  Tensor w = Tensor::randn({8, 3, 3, 3}, 2, 0, 0.02f, d).set_requires_grad(true);
  Tensor b = Tensor::zeros({8}, DType::f32, d).set_requires_grad(true);
  Tensor loss = mean(square(conv2d(x, w, b)));
  loss.backward();
  std::printf("  smoke test: conv2d forward+backward ok (loss %.6g)\n", loss.item());
  AllocStats s = allocator(d).stats();
  std::printf("  allocator: %lld bytes in use, peak %lld, %lld device allocations\n",
              (long long)s.bytes_in_use, (long long)s.peak_bytes, (long long)s.device_allocs);
  return 0;
}

int checkpoint_new(int argc, char** argv) {
  caf::ModelConfig cfg;
  std::string out;
  for (int i = 0; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--out") {
      out = v;
    } else if (k == "--seed") {
      cfg.seed = std::stoull(v);
    } else if (k == "--widths" && v.find(',') != std::string::npos) {
      cfg.recon_width = std::stoll(v.substr(0, v.find(',')));
      cfg.discr_width = std::stoll(v.substr(v.find(',') + 1));
    } else {
      throw caf::ConfigError("checkpoint-new: bad option '" + k + "'",
                             "usage: caf checkpoint-new --widths R,S [--seed N] --out FILE");
    }
  }
  if (out.empty()) throw caf::ConfigError("checkpoint-new: --out FILE is required");
  caf::Model m(cfg, caf::Device::cpu);
  caf::save_checkpoint(out, m);
  std::printf("wrote %s: R %lld and S %lld parameters\n", out.c_str(),
              (long long)m.recon.params().num_params(), (long long)m.discr.params().num_params());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(2);
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help"))
    return usage(0);
  const bool own_help = !std::strcmp(argv[1], "train") || !std::strcmp(argv[1], "eval") ||
                        !std::strcmp(argv[1], "infer") || !std::strcmp(argv[1], "simulate") ||
                        !std::strcmp(argv[1], "report");
  if (!own_help && short_help(argc, argv)) return 0;
  try {
    if (std::strcmp(argv[1], "info") == 0) return info();
    if (std::strcmp(argv[1], "checkpoint-new") == 0) return checkpoint_new(argc - 2, argv + 2);
    if (std::strcmp(argv[1], "bench") == 0 && argc >= 3 && std::strcmp(argv[2], "step") == 0)
      return caf::bench_step(argc - 3, argv + 3);
    if (std::strcmp(argv[1], "bench") == 0 && argc >= 3 && std::strcmp(argv[2], "augment") == 0)
      return caf::bench_augment(argc - 3, argv + 3);
    if (std::strcmp(argv[1], "bench") == 0 && argc >= 3 && std::strcmp(argv[2], "convs") == 0)
      return caf::bench_convs(argc - 3, argv + 3);
    if (std::strcmp(argv[1], "preview") == 0) return caf::preview(argc - 2, argv + 2);
    if (std::strcmp(argv[1], "make-toy") == 0) return caf::make_toy(argc - 2, argv + 2);
    if (std::strcmp(argv[1], "train") == 0) return caf::train_command(argc - 2, argv + 2);
    if (std::strcmp(argv[1], "eval") == 0) return caf::eval_command(argc - 2, argv + 2);
    if (std::strcmp(argv[1], "infer") == 0) return caf::infer_command(argc - 2, argv + 2);
    if (std::strcmp(argv[1], "simulate") == 0) return caf::simulate_command(argc - 2, argv + 2);
    if (std::strcmp(argv[1], "report") == 0) return caf::report_command(argc - 2, argv + 2);
    std::fprintf(stderr, "caf: unknown command '%s'\n", argv[1]);
    return usage(2);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "caf: error: %s\n", caf::describe(e).c_str());
    return 1;
  }
}
