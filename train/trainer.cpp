#include "train/trainer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "augment/batch_sampler.h"
#include "kernels/error.h"
#include "kernels/graph.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"
#include "nn/autograd.h"
#include "nn/ops.h"
#include "train/atomic_file.h"
#include "train/dataset.h"

namespace caf {

using nlohmann::json;
namespace fs = std::filesystem;

TrainConfig TrainConfig::preset_named(const std::string& name) {
  TrainConfig c;
  c.preset = name;
  if (name == "tiny") {
    c.size = 64;
    c.model.recon_width = 16;
    c.model.discr_width = 8;
    c.batch = 8;
    c.epochs = 60;
  } else if (name == "paper") {
    c.size = 256;
    c.model.recon_width = 128;
    c.model.discr_width = 64;
    c.batch = 8;
    c.epochs = 700;
  } else {
    throw ConfigError("unknown preset '" + name + "'", "presets: tiny (64 px, widths 16/8, a CPU), "
                                                        "paper (256 px, widths 128/64, 700 epochs)");
  }
  return c;
}

json TrainConfig::to_json() const {
  return {{"preset", preset},
          {"size", size},
          {"recon_width", model.recon_width},
          {"discr_width", model.discr_width},
          {"y_pass_batch_stats", model.y_pass_batch_stats},
          {"lr", model.adam.lr},
          {"init_seed", model.seed},
          {"batch", batch},
          {"epochs", epochs},
          {"mode", mode},
          {"simulation_kind", simulation_kind},
          {"simulation", sim_config_to_json(simulation)},
          {"seed", seed},
          {"log_every", log_every},
          {"checkpoint_every", checkpoint_every},
          {"textures", textures},
          {"procedural_textures", procedural_textures},
          {"max_textures", max_textures},
          {"classes", classes},
          {"precision", precision},
          {"algorithms", algorithms},
          {"layout", layout},
          {"activations", activations},
          {"graph", graph}};
}

TrainConfig TrainConfig::from_json(const json& j, const std::string& where, TrainConfig c) {
  if (!j.is_object()) throw ConfigError(where + ": the training config must be a JSON object");
  const json known = c.to_json();
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.contains(it.key())) {
      std::string keys;
      for (auto k = known.begin(); k != known.end(); ++k) keys += (keys.empty() ? "" : ", ") + k.key();
      throw ConfigError(where + ": unknown key '" + it.key() + "'", "known keys: " + keys);
    }
  // nlohmann casts a JSON float to an integer field unchecked, undefined behaviour for 1e12 (found
  // by tests/fuzz/fuzz_config): integer keys must hold integers, and "size" one that fits an int.
  for (const char* key : {"size", "recon_width", "discr_width", "init_seed", "batch", "epochs", "seed",
                          "log_every", "checkpoint_every", "procedural_textures", "max_textures"})
    if (j.contains(key) && !j[key].is_number_integer())
      throw ConfigError(where + ": '" + key + "' must be an integer, not " + j[key].dump());
  if (j.contains("size") && (j["size"].is_number_unsigned() ? j["size"].get<uint64_t>() > 1u << 20
                                                             : j["size"].get<int64_t>() > 1 << 20))
    throw ConfigError(where + ": size " + j["size"].dump() + " is too large");
  try {
    if (j.contains("preset") && j["preset"] != c.preset) c = preset_named(j["preset"].get<std::string>());
    c.size = j.value("size", c.size);
    c.model.recon_width = j.value("recon_width", c.model.recon_width);
    c.model.discr_width = j.value("discr_width", c.model.discr_width);
    c.model.y_pass_batch_stats = j.value("y_pass_batch_stats", c.model.y_pass_batch_stats);
    c.model.adam.lr = j.value("lr", c.model.adam.lr);
    c.model.seed = j.value("init_seed", c.model.seed);
    c.batch = j.value("batch", c.batch);
    c.epochs = j.value("epochs", c.epochs);
    c.mode = j.value("mode", c.mode);
    c.simulation_kind = j.value("simulation_kind", c.simulation_kind);
    if (j.contains("simulation")) {
      json merged = sim_config_to_json(c.simulation);
      merged.update(j["simulation"]);
      c.simulation = sim_config_from_json(merged, where + ": simulation");
    }
    c.seed = j.value("seed", c.seed);
    c.log_every = j.value("log_every", c.log_every);
    c.checkpoint_every = j.value("checkpoint_every", c.checkpoint_every);
    c.textures = j.value("textures", c.textures);
    c.procedural_textures = j.value("procedural_textures", c.procedural_textures);
    c.max_textures = j.value("max_textures", c.max_textures);
    c.classes = j.value("classes", c.classes);
    c.precision = j.value("precision", c.precision);
    c.algorithms = j.value("algorithms", c.algorithms);
    c.layout = j.value("layout", c.layout);
    c.activations = j.value("activations", c.activations);
    if (j.contains("graph") && !j["graph"].is_boolean())
      throw ConfigError(where + ": 'graph' must be true or false, not " + j["graph"].dump());
    c.graph = j.value("graph", c.graph);
  } catch (const json::exception& e) {
    throw ConfigError(where + ": " + e.what());
  }
  auto require = [&](bool ok, const std::string& what) {
    if (!ok) throw ConfigError(where + ": " + what);
  };
  require(c.size >= 32 && c.size % 32 == 0, "size must be a positive multiple of 32 (5 poolings)");
  require(c.model.recon_width > 0 && c.model.discr_width > 0, "network widths must be positive");
  require(c.batch >= 1 && c.epochs >= 1, "batch and epochs must be at least 1");
  require(c.precision == "tf32" || c.precision == "fp32" || c.precision == "bf16",
          "precision must be \"tf32\", \"bf16\" or \"fp32\"");
  require(c.algorithms == "deterministic" || c.algorithms == "fastest" || c.algorithms == "reproducible",
          "algorithms must be \"deterministic\", \"fastest\" or \"reproducible\"");
  require(c.layout == "nchw" || c.layout == "nhwc", "layout must be \"nchw\" or \"nhwc\"");
  require(c.layout == "nchw" || c.precision == "bf16",
          "layout \"nhwc\" (channels-last convolutions) needs precision \"bf16\"");
  require(c.activations == "fp32" || c.activations == "bf16", "activations must be \"fp32\" or \"bf16\"");
  require(c.activations == "fp32" || c.precision == "bf16", "activations \"bf16\" needs precision \"bf16\"");
  require(c.mode == "split" || c.mode == "draem", "mode must be \"split\" or \"draem\"");
  require(c.simulation_kind == "caf" || c.simulation_kind == "draem",
          "simulation_kind must be \"caf\" or \"draem\"");
  require(c.log_every >= 1 && c.checkpoint_every >= 1, "log_every and checkpoint_every must be >= 1");
  require(c.model.adam.lr > 0, "lr must be positive");
  require(c.procedural_textures >= 1, "procedural_textures must be >= 1");
  return c;
}

namespace {

void write_text_atomic(const std::string& path, const std::string& text) { write_file_atomic(path, {text}); }

std::string format_duration(double s) {
  char buf[32];
  const long t = long(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

Tensor sample(const Tensor& images, const BatchSlots& s, int64_t batch) {
  const Device d = images.device();
  const int64_t per_image = images.dim(1) * images.dim(2) * images.dim(3);
  Tensor out = Tensor::empty({batch, images.dim(1), images.dim(2), images.dim(3)}, DType::f32, d);
  sample_batch(d, s, images.data<uint8_t>(), out.data<float>(), batch, per_image);
  return out;
}

}  // namespace

TrainResult train(const TrainConfig& cfg, const TrainOptions& opt) {
  auto print = [&](const std::string& line) {
    if (opt.print) opt.print(line);
    else std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  const auto started = std::chrono::steady_clock::now();
  const Device d = opt.device;
  allocator(d).reset_peak();  // the log's peak_mib: this run's high-water mark of bytes in use
  // The run's arithmetic, restored on the way out: precision and determinism are process-wide.
  struct ArithmeticScope {
    Precision precision_before = precision();
    bool deterministic_before = deterministic();
    bool timed_before = timed_algorithms();
    bool channels_last_before = channels_last_convs();
    bool bf16_activations_before = bf16_activations();
    ~ArithmeticScope() {
      set_bf16_activations(bf16_activations_before);
      set_precision(precision_before);
      set_deterministic(deterministic_before);
      set_timed_algorithms(timed_before);
      set_channels_last_convs(channels_last_before);
    }
  } arithmetic_scope;
  set_precision(parse_precision(cfg.precision));
  set_deterministic(cfg.algorithms != "fastest");
  set_timed_algorithms(cfg.algorithms != "reproducible");
  set_channels_last_convs(cfg.layout == "nhwc");
  set_bf16_activations(cfg.activations == "bf16");
  if (cfg.activations == "bf16" && !bf16_activations_active())
    throw ConfigError("activations \"bf16\" needs the fused batch norm + ReLU, which CAF_FUSE=0 turned off");

  std::vector<std::string> warnings;
  const std::string class_dir = resolve_class_dir(opt.data, opt.class_name);
  TrainSet set = load_train_set(class_dir, cfg.size, &warnings);
  for (const std::string& w : warnings) print("warning: " + w);
  const int64_t n_images = set.images.dim(0);
  if (cfg.mode == "split" && n_images < 2)
    throw ConfigError(class_dir + ": split training needs at least 2 training images");
  const Tensor images = set.images.to(d);  // uploaded once, as bytes

  TextureBank bank;
  if (cfg.textures.empty()) {
    bank = texture_bank_procedural(cfg.procedural_textures, cfg.size, cfg.seed + 1, d);
    print("no texture folder: using " + std::to_string(cfg.procedural_textures) +
          " procedural textures (fractal noise, stripes, checks, blotches); pass --textures DIR for DTD");
  } else {
    bank = texture_bank_load(cfg.textures, cfg.size, d, cfg.max_textures);
  }
  ClassSelection selection = class_selection(opt.class_name, cfg.classes);
  SimConfig sim_cfg = cfg.simulation;
  if (cfg.simulation_kind == "draem") {
    // DRAEM's simulation: Perlin + texture with opacity U(0.2, 1), every class rotated 30% of
    // the time with black corners.
    for (bool& g : selection.generators) g = false;
    selection.generators[int(Generator::transparent) - 1] = true;
    selection.rotation = true;
    sim_cfg.beta_lo = 0.2f;
    sim_cfg.beta_hi = 1.f;
    sim_cfg.rotation_reflect = false;
  }
  print("class " + selection.describe() + "; " + std::to_string(bank.count()) + " textures (" + bank.source + ")");
  Simulator sim(sim_cfg, selection, std::move(bank), cfg.seed);

  {
    std::error_code ec;
    fs::create_directories(opt.out_dir, ec);
    if (ec) throw IoError(opt.out_dir + ": cannot create the output folder (" + ec.message() + ")",
                          "is a part of the path a file, or the disk read-only?");
  }
  const std::string ckpt = (fs::path(opt.out_dir) / "checkpoint.safetensors").string();
  const std::string final_path = (fs::path(opt.out_dir) / "model.safetensors").string();
  const std::string log_path = (fs::path(opt.out_dir) / "train_log.jsonl").string();
  write_text_atomic((fs::path(opt.out_dir) / "config.json").string(), cfg.to_json().dump(2) + "\n");

  Model m(cfg.model, d);
  if (opt.resume) {
    if (!fs::exists(ckpt))
      throw IoError(ckpt + ": no checkpoint to resume from", "train without --resume to start afresh");
    load_checkpoint(ckpt, m);
    print("resumed from " + ckpt + " at step " + std::to_string(m.step));
  }
  std::ofstream log(log_path, opt.resume ? std::ios::app : std::ios::trunc);
  if (!log) throw IoError(log_path + ": cannot open for writing (" + std::strerror(errno) + ")",
                        "is the output folder on a full or read-only disk?");

  const int64_t steps_per_epoch = (n_images + cfg.batch - 1) / cfg.batch;
  const int64_t total = steps_per_epoch * cfg.epochs;
  const int64_t per_step_images = cfg.mode == "split" ? 2 * cfg.batch : cfg.batch;
  print("training " + std::to_string(n_images) + " images of " + class_dir + ": " + std::to_string(cfg.epochs) +
        " epochs x " + std::to_string(steps_per_epoch) + " steps, batch " + std::to_string(cfg.batch) +
        (cfg.mode == "split" ? " per half (split training)" : " (DRAEM protocol)") + ", " +
        std::to_string(cfg.size) + "x" + std::to_string(cfg.size) + ", widths " +
        std::to_string(cfg.model.recon_width) + "/" + std::to_string(cfg.model.discr_width) + ", on " +
        device_name(d));

  TrainResult result;
  result.total_steps = total;
  int64_t last_good_step = m.step;  // the loss was finite when read at this step
  int64_t saved_step = opt.resume ? m.step : -1;  // the step of the last checkpoint written
  auto check_finite = [&](const std::map<std::string, float>& v) {
    for (const auto& [name, value] : v)
      if (!std::isfinite(value))
        throw Error("training diverged: the " + name + " loss is " + std::to_string(value) + " at step " +
                        std::to_string(m.step) + " (finite at step " + std::to_string(last_good_step) + ")",
                    saved_step >= 0 ? "the last good checkpoint is " + ckpt + " (step " +
                                          std::to_string(saved_step) + "); lower lr and --resume"
                                    : "lower lr or check the input images");
    last_good_step = m.step;
  };
  auto save = [&](const std::string& path) {
    // A finite loss does not prove finite weights (the update after it may have overflowed), so
    // a checkpoint is written only when the weights sum to a finite value.
    NoGradGuard no_grad;
    const float wr = sum(m.recon.params().params_flat()).item(), ws = sum(m.discr.params().params_flat()).item();
    if (!std::isfinite(wr) || !std::isfinite(ws))
      throw Error("training diverged: the weights are no longer finite after step " + std::to_string(m.step),
                  saved_step >= 0 ? "the last good checkpoint is " + ckpt + " (step " + std::to_string(saved_step) +
                                        "); lower lr and --resume"
                                  : "lower lr or check the input images");
    save_checkpoint(path, m);
    saved_step = m.step;
  };

  // One training step queued on the device: sampling, simulation, the networks, Adam. step_ptr
  // (graph mode) makes sampling and simulation read the step number from device memory.
  auto queue_step = [&](uint32_t step, const uint32_t* step_ptr) {
    if (cfg.mode == "split") {
      const int64_t nx = (n_images + 1) / 2, ny = n_images / 2;
      const Tensor x = sample(images, {cfg.seed, step, 0, 0, 2, nx, step_ptr}, cfg.batch);
      const Tensor y = sample(images, {cfg.seed, step, uint32_t(cfg.batch), 1, 2, ny, step_ptr}, cfg.batch);
      const Simulator::Batch sx = sim.run(x, step, 0, step_ptr), sy = sim.run(y, step, uint32_t(cfg.batch), step_ptr);
      return split_step(m, {sx.target, sx.image, sy.image, sy.mask});
    }
    const Tensor x = sample(images, {cfg.seed, step, 0, 0, 1, n_images, step_ptr}, cfg.batch);
    const Simulator::Batch s = sim.run(x, step, 0, step_ptr);
    return draem_step(m, s.target, s.image, s.mask);
  };
  Buffer step_counter(d, sizeof(uint32_t));
  uint32_t* const step_counter_ptr = static_cast<uint32_t*>(step_counter.data());
  StepGraph graph(d);
  bool graph_captured = false;

  auto window_start = std::chrono::steady_clock::now();
  int64_t window_steps = 0;
  const int64_t first_step = m.step;
  StepLosses latest;
  while (m.step < total) {
    if (opt.stop_requested && opt.stop_requested()) {
      if (latest.l2.defined()) check_finite(latest.values());  // never checkpoint a diverged model
      save(ckpt);
      print("interrupted at step " + std::to_string(m.step) + ": saved " + ckpt + " (continue with --resume)");
      result.interrupted = true;
      result.model_path = ckpt;
      break;
    }
    const int64_t epoch = m.step / steps_per_epoch;
    const double lr = multistep_lr(cfg.model.adam.lr, epoch, cfg.epochs);
    m.opt_recon->set_lr(lr);
    m.opt_discr->set_lr(lr);
    StepLosses& losses = latest;
    if (cfg.graph && !graph_captured && m.step > first_step) {
      // The first step ran eagerly (cuDNN plans, workspaces, the texture upload); capture the next
      // one, reading its number from the device counter the graph advances; replay it from now on.
      const uint32_t next = uint32_t(m.step);
      copy_bytes(d, step_counter_ptr, Device::cpu, &next, sizeof next);
      const int64_t before = m.step;
      graph.capture([&, next] {  // by value: on the CPU the function outlives this block
        latest = queue_step(next, step_counter_ptr);
        advance_counter(d, step_counter_ptr);
      });
      m.step = before;  // capturing ran the host side of the step, not the step
      graph_captured = true;
      print("CUDA graph: the step is captured (" + std::to_string(graph.nodes()) + " nodes) and replayed from now on");
    }
    if (graph_captured) {
      const int64_t before = m.step;
      graph.replay();  // on a GPU no host code runs: the step's host-side count is kept here
      m.step = before + 1;
    } else {
      losses = queue_step(uint32_t(m.step), nullptr);
    }
    ++window_steps;
    const bool last = m.step == total;
    if (m.step % cfg.log_every == 0 || last) {
      const std::map<std::string, float> v = losses.values();  // the one host sync of the window
      check_finite(v);
      const auto now = std::chrono::steady_clock::now();
      const double window_s = std::chrono::duration<double>(now - window_start).count();
      const double elapsed = std::chrono::duration<double>(now - started).count();
      const double per_s = double(window_steps * per_step_images) / window_s;
      const double eta = double(total - m.step) * window_s / double(window_steps);
      const double peak_mib = double(allocator(d).stats().peak_bytes) / 1048576.0;  // a host counter
      char line[352];
      std::snprintf(line, sizeof line,
                    "epoch %lld/%lld step %lld/%lld | l2 %.5f ssim %.5f focal %.5f | lr %.1e | %.1f img/s | "
                    "peak %.0f MiB | ETA %s",
                    (long long)(epoch + 1), (long long)cfg.epochs, (long long)m.step, (long long)total,
                    double(v.at("l2")), double(v.at("ssim")), double(v.at("focal")), lr, per_s, peak_mib,
                    format_duration(eta).c_str());
      print(line);
      log << json{{"step", m.step},        {"epoch", epoch + 1},    {"l2", v.at("l2")},
                  {"ssim", v.at("ssim")},  {"focal", v.at("focal")}, {"lr", lr},
                  {"images_per_s", per_s}, {"elapsed_s", elapsed},  {"peak_mib", peak_mib}}
                 .dump()
          << "\n"
          << std::flush;
      if (!log) throw IoError(log_path + ": cannot append (" + std::strerror(errno) + ")",
                            "disk full or read-only? the last checkpoint is intact: free space and --resume");
      window_start = now;
      window_steps = 0;
    }
    if (m.step % cfg.checkpoint_every == 0 && !last) {
      check_finite(losses.values());
      save(ckpt);
    }
  }
  if (!result.interrupted) {
    save(final_path);
    save(ckpt);
    result.model_path = final_path;
  }
  result.steps = m.step - first_step;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace caf
