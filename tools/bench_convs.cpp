// tools/bench_convs.cpp: `caf bench convs`: every convolution of both networks at the given
// shapes, timed alone: one row per distinct layer (network, channels in and out, resolution) with
// its forward, backward-data and backward-filter times, their TFLOP/s, and what the layer costs
// per training step. The convolutions are most of a step (on an H200 in run 9, 72 % of the bf16
// step and 81 % of the TF32 step); this table says which of them fall short, and
// bench/torch_convs.py times the same list with PyTorch for a ratio per layer.
//
// Key decisions:
//  - The calls are the step's (kernels/conv2d.h) under the process's precision, layout and
//    algorithm choice; cuDNN finds its plan per shape in the warm-up calls, as training does.
//    fp32/TF32: the forward with its bias, the input gradient written (write-first gradients),
//    the weight gradient accumulated. bf16: the raw forward (the bias goes with the next op), both
//    gradients written, every operand bf16 (channels-last with --layout nhwc).
//  - Per step, split training (METHOD 3.2): R's layers run forward twice (X, and Y with no
//    gradient) and backward once, S's forward and backward once, and a network's first layer needs
//    no input gradient: the count behind caf bench step's FLOPs, so the two totals agree.
//  - Time: --calls calls back to back between two synchronisations, the median over --trials
//    (the steady clock; one synchronisation per trial is small against calls of 0.1-2 ms).
//  - Operands are random, never zeros (tensor cores can run faster on zeros), in buffers shared by
//    every layer.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/cast.h"
#include "kernels/conv2d.h"
#include "kernels/error.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"
#include "nn/networks.h"
#include "tools/cli.h"
#include "train/atomic_file.h"

namespace caf {

namespace {

struct Args {
  std::string device = "auto", precision = "tf32", layout = "nchw", algos = "deterministic", json;
  int64_t size = 256, batch = 8, rw = 128, sw = 64, trials = 5, calls = 5;
};

Args parse(int argc, char** argv) {
  Args a;
  const char* options =
      "options: --device cpu|cuda|auto --size S --batch B --widths R,S --precision tf32|bf16|fp32 "
      "--layout nchw|nhwc --algos deterministic|fastest|reproducible --trials N --calls N --json FILE";
  for (int i = 0; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw ConfigError("bench convs: " + k + " needs a value", options);
      return argv[++i];
    };
    auto num = [&](const std::string& v) { return int64_t(cli_integer("bench convs: " + k, v, 1, 1000000)); };
    if (k == "--device") a.device = val();
    else if (k == "--size") a.size = num(val());
    else if (k == "--batch") a.batch = num(val());
    else if (k == "--precision") a.precision = val();
    else if (k == "--layout") a.layout = val();
    else if (k == "--algos") a.algos = val();
    else if (k == "--trials") a.trials = num(val());
    else if (k == "--calls") a.calls = num(val());
    else if (k == "--json") a.json = val();
    else if (k == "--widths") {
      const std::string v = val();
      const size_t c = v.find(',');
      if (c == std::string::npos) throw ConfigError("bench convs: --widths expects R,S (e.g. 128,64)");
      a.rw = num(v.substr(0, c));
      a.sw = num(v.substr(c + 1));
    } else {
      throw ConfigError("bench convs: unknown option '" + k + "'", options);
    }
  }
  if (a.size % 32 != 0) throw ConfigError("bench convs: --size must be a multiple of 32 (S halves it five times)");
  if (a.layout != "nchw" && a.layout != "nhwc")
    throw ConfigError("bench convs: --layout is nchw (the default) or nhwc (channels-last; --precision bf16 only)");
  if (a.layout == "nhwc" && a.precision != "bf16")
    throw ConfigError("bench convs: --layout nhwc applies to bf16 mixed precision only (add --precision bf16)");
  if (a.algos != "deterministic" && a.algos != "fastest" && a.algos != "reproducible")
    throw ConfigError("bench convs: --algos is deterministic, fastest or reproducible (as caf bench step's)");
  return a;
}

// One distinct layer: a network's 3x3 convolutions with the same channels and resolution.
struct Layer {
  std::string net;  // "R" or "S"
  int64_t cin, cout, level, count = 0;
  bool first = false;  // the network's first layer: no input gradient in training
  double fwd_ms = 0, data_ms = 0, filter_ms = 0;
  double forwards_per_step() const { return net == "R" ? 2.0 : 1.0; }  // R: X, then Y with no gradient
  double per_step_ms() const {
    return double(count) * (forwards_per_step() * fwd_ms + (first ? 0.0 : data_ms) + filter_ms);
  }
};

// The distinct layers of a network, in the order they first appear.
void add_layers(const std::string& net, const std::vector<ConvLevel>& convs, std::vector<Layer>& out) {
  for (size_t i = 0; i < convs.size(); ++i) {
    const ConvLevel& c = convs[i];
    auto same = [&](const Layer& l) {
      return l.net == net && l.cin == c.cin && l.cout == c.cout && l.level == c.level && l.first == (i == 0);
    };
    auto it = std::find_if(out.begin(), out.end(), same);
    if (it == out.end()) it = out.insert(out.end(), Layer{net, c.cin, c.cout, c.level, 0, i == 0});
    ++it->count;
  }
}

double median_ms(Device d, const std::function<void()>& f, const Args& a) {
  f(), f();  // warm-up: cuDNN's plan for the shape, the allocator's blocks
  synchronize(d);
  std::vector<double> ms;
  for (int64_t t = 0; t < a.trials; ++t) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < a.calls; ++i) f();
    synchronize(d);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
                 double(a.calls));
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// The operands of every layer: one buffer each, as large as the largest layer needs, filled once
// by tiling a block of random values (drawn on the host) across it with device copies: random,
// never zeros, without drawing hundreds of millions of values on the host of a lent GPU. bf16:
// rounded once, on the device.
struct Operands {
  Tensor x, w, gy, b, y, gx, gw;
};
Tensor random_buffer(int64_t numel, uint64_t seed, Device d, bool bf16) {
  const int64_t block = std::min<int64_t>(numel, int64_t(1) << 20);
  const Tensor pool = Tensor::randn({block}, seed, 0.f, 1.f, d);
  Tensor f = Tensor::empty({numel}, DType::f32, d);
  for (int64_t at = 0; at < numel; at += block)
    copy_bytes(d, f.data<float>() + at, d, pool.data<float>(), size_t(std::min(block, numel - at)) * sizeof(float));
  if (!bf16) return f;
  Tensor h = Tensor::empty({numel}, DType::bf16, d);
  cast_to_bf16(d, f.data<float>(), h.data<uint16_t>(), numel);
  return h;
}
Operands operands_for(const std::vector<Layer>& layers, const Args& a, Device d, bool bf16) {
  int64_t x = 1, y = 1, w = 1, c = 1;
  for (const Layer& l : layers) {
    const int64_t hw = (a.size >> l.level) * (a.size >> l.level);
    x = std::max(x, a.batch * l.cin * hw);
    y = std::max(y, a.batch * l.cout * hw);
    w = std::max(w, l.cout * l.cin * 9);
    c = std::max(c, l.cout);
  }
  const DType t = bf16 ? DType::bf16 : DType::f32;
  Operands o;
  o.x = random_buffer(x, 1, d, bf16);
  o.w = random_buffer(w, 2, d, bf16);
  o.gy = random_buffer(y, 3, d, bf16);
  o.b = Tensor::randn({c}, 4, 0.f, 1.f, d);
  o.y = Tensor::empty({y}, t, d);
  o.gx = Tensor::empty({x}, t, d);
  o.gw = bf16 ? Tensor::empty({w}, t, d) : Tensor::zeros({w}, t, d);  // bf16: written, not added
  return o;
}

void time_layer(Layer& l, const Operands& o, const Args& a, Device d) {
  const bool bf16 = precision() == Precision::bf16;
  Conv2dShape s;
  s.x = Shape4{a.batch, l.cin, a.size >> l.level, a.size >> l.level};
  s.k_out = l.cout;
  s.k = 3;
  s.nhwc = bf16 && channels_last_convs();
  if (bf16) {
    auto H = [](const Tensor& t) { return t.data<uint16_t>(); };
    l.fwd_ms = median_ms(d, [&] { conv2d_forward_bf16(d, H(o.x), H(o.w), H(o.y), s); }, a);
    l.data_ms = median_ms(d, [&] { conv2d_backward_data_bf16(d, H(o.w), H(o.gy), H(o.gx), s); }, a);
    l.filter_ms = median_ms(d, [&] { conv2d_backward_filter_bf16(d, H(o.x), H(o.gy), H(o.gw), s); }, a);
  } else {
    auto F = [](const Tensor& t) { return t.data<float>(); };
    l.fwd_ms = median_ms(d, [&] { conv2d_forward<float>(d, F(o.x), F(o.w), F(o.b), F(o.y), s); }, a);
    l.data_ms = median_ms(d, [&] { conv2d_backward_data<float>(d, F(o.w), F(o.gy), F(o.gx), s, false); }, a);
    l.filter_ms = median_ms(d, [&] { conv2d_backward_filter<float>(d, F(o.x), F(o.gy), F(o.gw), s); }, a);
  }
}

double layer_flops(const Layer& l, const Args& a) {  // one pass (forward, or either gradient), whole batch
  return 2.0 * 9 * double(l.cin) * double(l.cout) * double(a.size >> l.level) * double(a.size >> l.level) *
         double(a.batch);
}

}  // namespace

int bench_convs(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const Device d = parse_device(a.device.c_str());
  set_precision(parse_precision(a.precision));
  set_deterministic(a.algos != "fastest");
  set_timed_algorithms(a.algos != "reproducible");
  set_channels_last_convs(a.layout == "nhwc");
  const ReconstructiveNet r(3, 3, a.rw);
  const DiscriminativeNet sn(6, 2, a.sw);
  std::vector<Layer> layers;
  add_layers("R", r.convs(), layers);
  add_layers("S", sn.convs(), layers);
  std::printf("bench convs: device %s (%s), precision %s, layout %s, algorithms %s, %lldx%lld, batch %lld, "
              "widths R %lld / S %lld: %zu distinct layers of %zu convolutions\n",
              device_name(d), device_description(d), precision_name(precision()), a.layout.c_str(), a.algos.c_str(),
              (long long)a.size, (long long)a.size, (long long)a.batch, (long long)a.rw, (long long)a.sw,
              layers.size(), r.convs().size() + sn.convs().size());
  std::fflush(stdout);
  const Operands o = operands_for(layers, a, d, precision() == Precision::bf16);
  for (Layer& l : layers) time_layer(l, o, a, d);
  std::vector<const Layer*> order;
  for (const Layer& l : layers) order.push_back(&l);
  std::stable_sort(order.begin(), order.end(),
                   [](const Layer* x, const Layer* y) { return x->per_step_ms() > y->per_step_ms(); });
  double total_ms = 0, total_flops = 0;
  for (const Layer& l : layers) {
    total_ms += l.per_step_ms();
    total_flops += double(l.count) * layer_flops(l, a) * (l.forwards_per_step() + (l.first ? 0.0 : 1.0) + 1.0);
  }
  std::printf("  (ms: the median of %lld trials of %lld calls; TFLOP/s of each pass; per step: R forward twice, "
              "every backward once, no input gradient for a first layer)\n",
              (long long)a.trials, (long long)a.calls);
  std::printf("  %-3s %-26s %5s | %9s %9s %9s | %7s %7s %7s | %9s %6s\n", "net", "layer", "count", "fwd ms",
              "data ms", "filter ms", "fwd TF", "data TF", "filt TF", "ms/step", "share");
  const auto tf = [&](const Layer& l, double ms) { return ms > 0 ? layer_flops(l, a) / ms * 1e-9 : 0.0; };
  for (const Layer* l : order) {
    char name[64];
    std::snprintf(name, sizeof name, "%lld->%lld @%lldx%lld%s", (long long)l->cin, (long long)l->cout,
                  (long long)(a.size >> l->level), (long long)(a.size >> l->level), l->first ? " (first)" : "");
    std::printf("  %-3s %-26s %5lld | %9.3f %9.3f %9.3f | %7.1f %7.1f %7.1f | %9.3f %5.1f%%\n", l->net.c_str(), name,
                (long long)l->count, l->fwd_ms, l->data_ms, l->filter_ms, tf(*l, l->fwd_ms), tf(*l, l->data_ms),
                tf(*l, l->filter_ms), l->per_step_ms(), total_ms > 0 ? 100.0 * l->per_step_ms() / total_ms : 0.0);
  }
  std::printf("  per step: %.3f ms of convolutions, %.4g TFLOP (%.1f TFLOP/s)\n", total_ms, total_flops * 1e-12,
              total_ms > 0 ? total_flops / total_ms * 1e-9 : 0.0);
  if (!a.json.empty()) {
    nlohmann::json rows = nlohmann::json::array();
    for (const Layer& l : layers)
      rows.push_back({{"net", l.net}, {"cin", l.cin}, {"cout", l.cout}, {"h", a.size >> l.level},
                      {"w", a.size >> l.level}, {"count", l.count}, {"first", l.first}, {"fwd_ms", l.fwd_ms},
                      {"data_ms", l.data_ms}, {"filter_ms", l.filter_ms}, {"flops_per_pass", layer_flops(l, a)},
                      {"per_step_ms", l.per_step_ms()}});
    const nlohmann::json j = {{"tool", "caf bench convs"}, {"device", device_name(d)},
                              {"device_description", device_description(d)}, {"precision", precision_name(precision())},
                              {"layout", a.layout}, {"algos", a.algos}, {"size", a.size}, {"batch", a.batch},
                              {"widths", {a.rw, a.sw}}, {"trials", a.trials}, {"calls", a.calls}, {"layers", rows},
                              {"per_step_ms", total_ms}, {"flops_per_step", total_flops}};
    write_file_atomic(a.json, {j.dump(2) + "\n"});
    std::printf("json: %s\n", a.json.c_str());
  }
  return 0;
}

}  // namespace caf
