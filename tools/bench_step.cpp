// tools/bench_step.cpp: `caf bench step`: times the whole training step (forward, backward and
// Adam of both networks) as the trainer runs it, on random data.
//
// FLOPs are counted analytically from the networks' convolutions (other ops are a few percent):
// split mode per step = R forward on X + R backward on X (2x, less the first layer's unneeded
// input gradient) + R forward on Y + S forward + S backward (2x, less its first layer's input
// gradient). images/s counts every image the step consumes (2 x batch in split mode). --augment
// adds what the trainer does before the networks: batch sampling and the anomaly simulation.
// Then a phase breakdown from separately profiled steps (CUDA events / the CPU clock, ranges from
// kernels/profile.h, also NVTX ranges for Nsight); --trace writes them as a Chrome trace and
// --json the whole result for scripts (tools/gpu_check.sh's summary).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/error.h"
#include "kernels/graph.h"
#include "kernels/profile.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"
#include "augment/batch_sampler.h"
#include "augment/simulator.h"
#include "train/atomic_file.h"
#include "train/model.h"

namespace caf {

namespace {

struct Args {
  bool augment = false;  // include the trainer's batch sampling and anomaly simulation
  bool ops = false;      // an op-level breakdown after the phase breakdown
  bool graph = false;    // capture one step as a CUDA graph and time its replays
  bool memory = false;   // the memory census: which phases and ops hold the peak (kernels/memory.h)
  std::string algos = "deterministic";
  // batch norm + ReLU as one op, and recompute_activations() (kernels/runtime.h); the defaults
  // follow the process's (CAF_FUSE=0, CAF_RECOMPUTE=0 turn them off)
  std::string fuse = fused_bn_relu() ? "on" : "off";
  std::string recompute = recompute_activations() ? "on" : "off";
  std::string write_first = write_first_gradients() ? "on" : "off";  // CAF_WRITE_FIRST=0: off
  std::string bf16_grads = bf16_gradients() ? "on" : "off";  // CAF_BF16_GRADS=0: off
  std::string layout = "nchw";   // bf16 convolutions' layout (channels_last_convs())
  std::string activations = "fp32";  // bf16: bf16 activations between convolutions (bf16_activations())
  std::string device = "auto", mode = "split", precision = "tf32", trace, json, init;
  int64_t size = 256, batch = 8, rw = 128, sw = 64, steps = 50, warmup = 5, track = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 0; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw ConfigError("bench step: " + k + " needs a value");
      return argv[++i];
    };
    auto num = [&](const std::string& v, int64_t least = 1) {
      try {
        size_t used = 0;
        long long n = std::stoll(v, &used);
        if (used != v.size() || n < least) throw 0;
        return int64_t(n);
      } catch (...) {
        throw ConfigError("bench step: " + k + " expects an integer >= " + std::to_string(least) +
                          ", got '" + v + "'");
      }
    };
    if (k == "--augment" || k == "--ops" || k == "--graph" || k == "--memory") {
      (k == "--augment" ? a.augment : k == "--ops" ? a.ops : k == "--graph" ? a.graph : a.memory) = true;
      continue;
    }
    if (k == "--device") a.device = val();
    else if (k == "--mode") a.mode = val();
    else if (k == "--precision") a.precision = val();
    else if (k == "--algos") a.algos = val();
    else if (k == "--fuse") a.fuse = val();
    else if (k == "--recompute") a.recompute = val();
    else if (k == "--write-first") a.write_first = val();
    else if (k == "--bf16-grads") a.bf16_grads = val();
    else if (k == "--layout") a.layout = val();
    else if (k == "--activations") a.activations = val();
    else if (k == "--trace") a.trace = val();
    else if (k == "--json") a.json = val();
    else if (k == "--init") a.init = val();
    else if (k == "--track") a.track = num(val());
    else if (k == "--size") a.size = num(val());
    else if (k == "--batch") a.batch = num(val());
    else if (k == "--steps") a.steps = num(val());
    else if (k == "--warmup") a.warmup = num(val(), 0);
    else if (k == "--widths") {
      std::string v = val();
      size_t c = v.find(',');
      if (c == std::string::npos) throw ConfigError("bench step: --widths expects R,S (e.g. 128,64)");
      a.rw = num(v.substr(0, c));
      a.sw = num(v.substr(c + 1));
    } else {
      throw ConfigError("bench step: unknown option '" + k + "'",
                        "options: --device cpu|cuda|auto --size S --batch B --widths R,S --steps N "
                        "--warmup N --mode split|draem --precision tf32|bf16|fp32 --augment --trace FILE.json "
                        "--json FILE --track N --init CHECKPOINT --ops --memory --algos deterministic|fastest|reproducible --graph "
                        "--fuse on|off --recompute on|off --write-first on|off --layout nchw|nhwc "
                        "--activations fp32|bf16 --bf16-grads on|off");
    }
  }
  if (a.size % 32 != 0) throw ConfigError("bench step: --size must be a multiple of 32");
  if (a.mode != "split" && a.mode != "draem") throw ConfigError("bench step: --mode is split or draem");
  if (a.graph && a.warmup < 1)
    throw ConfigError("bench step: --graph needs --warmup 1 or more (the eager steps make the cuDNN plans "
                      "and workspaces a capture cannot create)");
  if (a.memory && a.graph)
    throw ConfigError("bench step: --memory takes its census in eager steps (a graph's memory is its pool, reserved "
                      "whole at the capture); drop --graph");
  if (a.algos != "deterministic" && a.algos != "fastest" && a.algos != "reproducible")
    throw ConfigError("bench step: --algos is deterministic (cuDNN's deterministic algorithms only, the "
                      "fastest of them as timed, the default), fastest (any algorithm, as PyTorch's "
                      "cudnn.benchmark picks) or reproducible (deterministic ones ranked by cuDNN's "
                      "heuristics, untimed: the same in every process)");
  if (a.fuse != "on" && a.fuse != "off")
    throw ConfigError("bench step: --fuse is on (batch norm + ReLU as one op, the default) or off (cuDNN's "
                      "batch norm, then ReLU)");
  if (a.layout != "nchw" && a.layout != "nhwc")
    throw ConfigError("bench step: --layout is nchw (the default) or nhwc (bf16 convolutions on channels-last "
                      "copies, cuDNN's NHWC kernels; --precision bf16 only)");
  if (a.layout == "nhwc" && a.precision != "bf16")
    throw ConfigError("bench step: --layout nhwc applies to bf16 mixed precision only (add --precision bf16)");
  if (a.write_first != "on" && a.write_first != "off")
    throw ConfigError("bench step: --write-first is on (an activation gradient's first contribution is written "
                      "into a fresh buffer; the default) or off (zero-filled buffers, every contribution added)");
  if (a.bf16_grads != "on" && a.bf16_grads != "off")
    throw ConfigError("bench step: --bf16-grads is on (with --activations bf16, activation gradients between a "
                      "convolution and its batch norm kept in bf16; the default) or off (fp32 gradient buffers)");
  if (a.activations != "fp32" && a.activations != "bf16")
    throw ConfigError("bench step: --activations is fp32 (the default) or bf16 (activations between the "
                      "convolutions stored in bf16; --precision bf16 only)");
  if (a.activations == "bf16" && (a.precision != "bf16" || a.fuse != "on"))
    throw ConfigError("bench step: --activations bf16 needs --precision bf16 and the fused batch norm + ReLU "
                      "(--fuse on)");
  if (a.recompute != "on" && a.recompute != "off")
    throw ConfigError("bench step: --recompute is on (convolutions recompute a fused batch norm + ReLU output "
                      "in their backward instead of keeping it; the default) or off");
  return a;
}

// Images in [0, 1] with a noise rectangle as the anomaly in the left half of each image.
SplitBatch random_batch(const Args& a, Device d) {
  auto img = [&](uint64_t s) { return Tensor::uniform({a.batch, 3, a.size, a.size}, s, 0, 1, d); };
  std::vector<float> mask(size_t(a.batch * a.size * a.size), 0.f);
  for (int64_t n = 0; n < a.batch; ++n)
    for (int64_t r = a.size / 4; r < a.size / 2; ++r)
      for (int64_t c = a.size / 8; c < a.size / 2; ++c) mask[size_t((n * a.size + r) * a.size + c)] = 1.f;
  return {img(1), img(2), img(3), Tensor::from_vector({a.batch, 1, a.size, a.size}, mask, d)};
}

// Step t's batch for loss tracking, the same formula as bench/torch_reference.py's
// closed_form_batch (double, then float): smooth images, x_aug/y_aug differ from their bases in
// the mask rectangle.
SplitBatch closed_form_batch(const Args& a, int64_t t, Device d) {
  const int64_t S = a.size, B = a.batch;
  std::vector<float> xc(size_t(B * 3 * S * S)), xa(xc.size()), ya(xc.size()), mask(size_t(B * S * S));
  auto base = [&](int k, int64_t n, int64_t c, int64_t h, int64_t w) {
    return 0.5 + 0.3 * std::sin(0.061 * double(h) + 0.097 * double(w) + 0.5 * double(c) + 1.7 * double(n) +
                                0.3 * double(t) + 2.1 * k) *
                     std::cos(0.023 * double(h - w) + 0.4 * k);
  };
  for (int64_t n = 0; n < B; ++n)
    for (int64_t h = 0; h < S; ++h)
      for (int64_t w = 0; w < S; ++w) {
        const bool in = h >= S / 4 && h < S / 2 && w >= S / 8 && w < S / 2;
        mask[size_t((n * S + h) * S + w)] = in ? 1.f : 0.f;
        for (int64_t c = 0; c < 3; ++c) {
          const size_t i = size_t(((n * 3 + c) * S + h) * S + w);
          xc[i] = float(base(0, n, c, h, w));
          xa[i] = in ? float(base(1, n, c, h, w)) : xc[i];
          ya[i] = float(base(in ? 3 : 2, n, c, h, w));
        }
      }
  const Dims img{B, 3, S, S};
  return {Tensor::from_vector(img, xc, d), Tensor::from_vector(img, xa, d), Tensor::from_vector(img, ya, d),
          Tensor::from_vector({B, 1, S, S}, mask, d)};
}

// --track N: N split steps from --init's weights on closed_form_batch, losses to stdout/--json.
int track_losses(const Args& a, Device d) {
  if (a.init.empty()) throw ConfigError("bench step: --track needs --init CHECKPOINT (e.g. from caf checkpoint-new)");
  ModelConfig cfg = read_checkpoint_config(a.init);
  Model m(cfg, d);
  load_checkpoint(a.init, m);
  std::printf("bench step: tracking %lld steps from %s, device %s, precision %s, %lldx%lld, batch %lld\n",
              (long long)a.track, a.init.c_str(), device_name(d), precision_name(precision()),
              (long long)a.size, (long long)a.size, (long long)a.batch);
  nlohmann::json steps = nlohmann::json::array();
  for (int64_t t = 0; t < a.track; ++t) {
    auto v = split_step(m, closed_form_batch(a, t, d)).values();
    steps.push_back({{"l2", v["l2"]}, {"ssim", v["ssim"]}, {"focal", v["focal"]}});
    if (t == 0 || t + 1 == a.track)
      std::printf("  step %lld: l2 %.6f ssim %.6f focal %.6f\n", (long long)t, v["l2"], v["ssim"], v["focal"]);
  }
  if (!a.json.empty()) {
    nlohmann::json j = {{"tool", "caf"}, {"mode", precision_name(precision())}, {"device", device_name(d)},
                        {"track", steps}};
    const std::string text = j.dump(2) + "\n";
    write_file_atomic(a.json, {text});
  }
  return 0;
}

}  // namespace

int bench_step(int argc, char** argv) {
  Args a = parse(argc, argv);
  Device d = parse_device(a.device.c_str());
  set_precision(parse_precision(a.precision));
  set_deterministic(a.algos != "fastest");
  set_timed_algorithms(a.algos != "reproducible");
  set_fused_bn_relu(a.fuse == "on");
  set_recompute_activations(a.recompute == "on");
  set_write_first_gradients(a.write_first == "on");
  set_bf16_gradients(a.bf16_grads == "on");
  set_channels_last_convs(a.layout == "nhwc");
  set_bf16_activations(a.activations == "bf16");
  if (a.track > 0) return track_losses(a, d);
  if (a.memory) allocator(d).set_census(true);
  ModelConfig cfg;
  cfg.recon_width = a.rw;
  cfg.discr_width = a.sw;
  std::optional<profile::Scope> label("parameters");  // names the model's allocations in the census
  Model m(cfg, d);
  label.emplace("inputs");
  SplitBatch b = random_batch(a, d);
  const double fr = m.recon.conv_flops(a.size, a.size), fs = m.discr.conv_flops(a.size, a.size);
  const double first_r = conv_flops({m.recon.convs().front()}, a.size, a.size);
  const double first_s = conv_flops({m.discr.convs().front()}, a.size, a.size);
  const double per_image = a.mode == "split" ? (3 * fr - first_r) + fr + (3 * fs - first_s)
                                              : (3 * fr - first_r) + (3 * fs - first_s);
  const double flops = per_image * double(a.batch);
  const int64_t images = a.mode == "split" ? 2 * a.batch : a.batch;
  std::printf("bench step: mode %s%s, device %s (%s), precision %s%s, %lldx%lld, batch %lld, widths R %lld / S %lld\n",
              a.mode.c_str(), a.augment ? " with augmentation" : "", device_name(d), device_description(d),
              precision_name(precision()),
              d != Device::cpu                   ? ""
              : precision() == Precision::bf16 ? " (the CPU rounds to bf16 around fp32 convolutions)"
                                               : " (the CPU computes fp32)",
              (long long)a.size, (long long)a.size, (long long)a.batch, (long long)a.rw, (long long)a.sw);
  std::printf("  parameters: R %lld, S %lld; conv FLOPs per step: %.4g (%.4g GFLOP)\n",
              (long long)m.recon.params().num_params(), (long long)m.discr.params().num_params(),
              flops, flops * 1e-9);
  // --augment: the trainer's whole step: both halves sampled on the device from uint8 images and
  // given simulated anomalies (bottle's selection, 64 procedural textures) before the networks.
  const Tensor pool = texture_bank_procedural(64, int(a.size), 7, d).images;  // 64 "training images"
  Simulator sim(SimConfig{}, class_selection("bottle"), texture_bank_procedural(64, int(a.size), 8, d), 1);
  // The step number: a host counter for eager steps; in graph mode a device counter the graph
  // itself advances (kernel arguments are frozen at capture), read through step_ptr.
  uint32_t step_no = 0;
  Buffer counter(d, sizeof(uint32_t));
  label.reset();
  uint32_t* const counter_ptr = static_cast<uint32_t*>(counter.data());
  auto sample = [&](int64_t first, int64_t stride, int64_t choices, uint32_t offset, const uint32_t* sp) {
    Tensor out = Tensor::empty({a.batch, 3, a.size, a.size}, DType::f32, d);
    sample_batch(d, {1, step_no, offset, first, stride, choices, sp}, pool.data<uint8_t>(), out.data<float>(),
                 a.batch, 3 * a.size * a.size);
    return out;
  };
  auto run = [&](const uint32_t* sp) {
    profile::Scope whole("step");
    if (a.augment) {
      profile::Scope p("augment", "augment");
      const Simulator::Batch x = sim.run(sample(0, 2, 32, 0, sp), step_no, 0, sp);
      const Simulator::Batch y =
          sim.run(sample(1, 2, 32, uint32_t(a.batch), sp), step_no, uint32_t(a.batch), sp);
      b = a.mode == "split" ? SplitBatch{x.target, x.image, y.image, y.mask} : SplitBatch{x.target, x.image, x.image, x.mask};
      if (sp) advance_counter(d, counter_ptr);
      else ++step_no;
    }
    return a.mode == "split" ? split_step(m, b) : draem_step(m, b.x_clean, b.x_aug, b.y_mask);
  };
  StepLosses last;
  for (int64_t i = 0; i < a.warmup; ++i) last = run(nullptr);
  synchronize(d);
  // --graph: record one step (the warm-up made every plan and workspace), then replay it.
  StepGraph graph(d);
  if (a.graph) {
    copy_bytes(d, counter_ptr, Device::cpu, &step_no, sizeof step_no);
    graph.capture([&] { last = run(counter_ptr); });
    std::printf("  CUDA graph: one step captured, %zu nodes%s\n", graph.nodes(),
                d == Device::cpu ? " (on the CPU replay runs the step's code again)" : "");
  }
  auto one_step = [&] {
    if (a.graph) graph.replay();
    else last = run(nullptr);
  };
  synchronize(d);
  allocator(d).reset_peak();
  const int64_t allocs_before = allocator(d).stats().device_allocs;
  // Timed steps: each step synchronised, so one step's time is what a training loop that reads
  // nothing back would see per step, queueing included.
  std::vector<double> ms;
  const HostSyncCounts hs0 = host_sync_counts();
  for (int64_t i = 0; i < a.steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    one_step();
    synchronize(d);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const HostSyncCounts hs1 = host_sync_counts();
  const MemoryCensus census = allocator(d).census();  // before the profiled steps below
  // The loop's own synchronize() per step is the benchmark's, not the step's.
  const double copies_per_step = double(hs1.copies - hs0.copies) / double(a.steps);
  const double syncs_per_step = double(hs1.syncs - hs0.syncs - a.steps) / double(a.steps);
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  AllocStats st = allocator(d).stats();
  // A graph's memory is its pool, reserved whole: count everything caf holds, in use or cached.
  if (a.graph) st.peak_bytes = st.bytes_in_use + st.bytes_cached;
  std::printf("  median %.2f ms/step (min %.2f, max %.2f over %lld steps)\n", med, ms.front(), ms.back(),
              (long long)a.steps);
  std::printf("  %.1f images/s, %.3f TFLOP/s (conv FLOPs / median time)\n", images / med * 1e3,
              flops / med * 1e-9);
  std::printf("  %s %.1f MiB, %lld new device allocations while timing\n",
              a.graph ? "memory held (graph pool, parameters, optimiser)" : "peak memory", st.peak_bytes / 1048576.0,
              (long long)(st.device_allocs - allocs_before));
  std::printf("  host round trips per step: %.2f copies, %.2f synchronisations (algorithms: %s, fused "
              "batch norm + ReLU: %s, recompute: %s, write-first: %s, layout: %s, activations: %s, bf16 "
              "gradients: %s)\n",
              copies_per_step, syncs_per_step, a.algos.c_str(), a.fuse.c_str(), a.recompute.c_str(),
              a.write_first.c_str(), a.layout.c_str(), a.activations.c_str(), a.bf16_grads.c_str());
  auto v = last.values();
  std::printf("  last losses: l2 %.5f ssim %.5f focal %.5f\n", v["l2"], v["ssim"], v["focal"]);
  nlohmann::json census_rows = nlohmann::json::array(), census_phases = nlohmann::json::array();
  if (census.on) {
    // The rows add up to the peak: every byte in use at that moment, filed under the phase and
    // op that allocated it (kernels/memory.h). Backward rows are gradient buffers and temporaries.
    std::printf("  memory at the peak (%.1f MiB in use), by the phase and op that allocated it:\n",
                census.peak_bytes / 1048576.0);
    const size_t shown = std::min<size_t>(census.rows.size(), 16);
    int64_t rest = 0, requested = 0;  // the rows not printed; what was asked for
    for (size_t i = 0; i < census.rows.size(); ++i) {
      const CensusRow& r = census.rows[i];
      census_rows.push_back({{"label", r.label}, {"mib", r.bytes / 1048576.0},
                             {"requested_mib", r.requested / 1048576.0}, {"blocks", r.blocks}});
      requested += r.requested;
      if (i < shown)
        std::printf("    %-48s %9.1f MiB %5.1f%% %6lld blocks\n", r.label.c_str(), r.bytes / 1048576.0,
                    100.0 * double(r.bytes) / double(census.peak_bytes), (long long)r.blocks);
      else
        rest += r.bytes;
    }
    if (census.rows.size() > shown)
      std::printf("    %zu more rows, %.1f MiB in all (--json lists every row)\n", census.rows.size() - shown,
                  rest / 1048576.0);
    std::printf("    (of which the allocator's size classes round up %.1f MiB)\n",
                (census.peak_bytes - requested) / 1048576.0);
    // Where in the step memory rises and falls: the highest in use when each phase allocated.
    std::printf("  peak in use by phase (the highest when the phase allocated), in the step's order:\n");
    for (const CensusPhase& ph : census.phases) {
      census_phases.push_back({{"phase", ph.phase}, {"mib", ph.peak_bytes / 1048576.0}});
      std::printf("    %-48s %9.1f MiB%s\n", ph.phase.c_str(), ph.peak_bytes / 1048576.0,
                  ph.peak_bytes == census.peak_bytes ? "  <- the peak" : "");
    }
  }

  // Phase breakdown: separate profiled steps (CUDA events on caf's stream, or the CPU clock),
  // after the timed ones so the events cannot disturb the headline number. A replayed graph is one
  // launch with nothing to mark, so with --graph the profiled steps (only with --ops) run eagerly
  // after the replays: the same step's kernels, without the graph's launch savings.
  const int64_t profiled = a.graph && !a.ops ? 0 : std::min<int64_t>(a.steps, 20);
  profile::start(d);
  for (int64_t i = 0; i < profiled; ++i) run(nullptr);
  const std::vector<profile::Range> ranges = profile::stop();
  std::vector<std::string> order;                       // phase names, first appearance first
  std::map<std::string, int> depth_of;
  std::map<std::string, std::vector<double>> per_step;  // name -> per-step sums
  for (const profile::Range& r : ranges) {
    if (r.depth == 0 && r.name == "step")
      for (auto& [name, sums] : per_step) sums.push_back(0);
    if (!depth_of.count(r.name)) {
      order.push_back(r.name);
      depth_of[r.name] = r.depth;
      per_step[r.name] = std::vector<double>(per_step.empty() ? 1 : per_step.begin()->second.size(), 0.0);
    }
    per_step[r.name].back() += r.duration_ms;
  }
  auto median = [](std::vector<double> xs) {
    std::sort(xs.begin(), xs.end());
    return xs.empty() ? 0.0 : xs[xs.size() / 2];
  };
  std::map<std::string, double> phase_ms;
  if (profiled == 0)
    std::printf("  phases: not with --graph alone (a replay is one launch); add --ops for eager profiled steps\n");
  else
    std::printf("  phases (median ms of %lld profiled%s steps; indented = inside the line above):\n",
                (long long)profiled, a.graph ? " eager" : "");
  for (const std::string& name : order) {
    phase_ms[name] = median(per_step[name]);
    std::printf("    %*s%-*s %8.2f ms\n", 2 * depth_of[name], "", 30 - 2 * depth_of[name], name.c_str(),
                phase_ms[name]);
  }
  // --ops: per-op totals from further profiled steps with op ranges on (an event pair per op).
  std::map<std::string, double> op_ms;
  if (a.ops) {
    const int64_t op_steps = std::min<int64_t>(a.steps, 10);
    profile::set_op_ranges(true);
    profile::start(d);
    for (int64_t i = 0; i < op_steps; ++i) run(nullptr);
    const std::vector<profile::Range> op_ranges = profile::stop();
    profile::set_op_ranges(false);
    std::map<std::string, int64_t> op_count;
    double covered = 0;
    for (const profile::Range& r : op_ranges)
      if (r.name.rfind("fwd ", 0) == 0 || r.name.rfind("bwd ", 0) == 0) {
        op_ms[r.name] += r.duration_ms / double(op_steps);
        op_count[r.name] += 1;
        covered += r.duration_ms / double(op_steps);
      }
    std::vector<std::pair<double, std::string>> sorted;
    for (auto& [name, t] : op_ms) sorted.push_back({t, name});
    std::sort(sorted.rbegin(), sorted.rend());
    std::printf("  ops (mean ms per step over %lld steps, op ranges on; %.2f ms in ops in all):\n",
                (long long)op_steps, covered);
    for (auto& [t, name] : sorted)
      std::printf("    %-32s %8.2f ms %6lld calls %5.1f%%\n", name.c_str(), t,
                  (long long)(op_count[name] / op_steps), 100.0 * t / covered);
  }
  if (!a.trace.empty()) {
    const std::string t = profile::chrome_trace(ranges);
    write_file_atomic(a.trace, {t});
    std::printf("  trace: %s (%zu ranges; open in ui.perfetto.dev or chrome://tracing)\n", a.trace.c_str(),
                ranges.size());
  }
  if (!a.json.empty()) {
    nlohmann::json j = {{"tool", "caf"},
                        {"mode", a.mode},
                        {"augment", a.augment},
                        {"device", device_name(d)},
                        {"device_description", device_description(d)},
                        {"precision", precision_name(precision())},
                        {"size", a.size},
                        {"batch", a.batch},
                        {"widths", {a.rw, a.sw}},
                        {"steps", a.steps},
                        {"median_ms", med},
                        {"min_ms", ms.front()},
                        {"max_ms", ms.back()},
                        {"images_per_s", images / med * 1e3},
                        {"conv_tflops", flops / med * 1e-9},
                        {"conv_flops_per_step", flops},
                        {"peak_mib", st.peak_bytes / 1048576.0},
                        {"allocs_while_timing", st.device_allocs - allocs_before},
                        {"phases_ms", phase_ms},
                        {"ops_ms", op_ms},
                        {"algos", a.algos},
                        {"fused_bn_relu", a.fuse == "on"},
                        {"recompute_activations", a.recompute == "on"},
                        {"write_first_gradients", a.write_first == "on"},
                        {"bf16_gradients", a.bf16_grads == "on"},
                        {"layout", a.layout},
                        {"activations", a.activations},
                        {"graph", a.graph},
                        {"graph_nodes", graph.nodes()},
                        {"host_copies_per_step", copies_per_step},
                        {"host_syncs_per_step", syncs_per_step},
                        {"losses", v}};
    if (census.on) j["memory_census"] = {{"peak_mib", census.peak_bytes / 1048576.0}, {"rows", census_rows},
                                         {"phases", census_phases}};
    const std::string text = j.dump(2) + "\n";
    write_file_atomic(a.json, {text});
    std::printf("  json: %s\n", a.json.c_str());
  }
  return 0;
}

}  // namespace caf
