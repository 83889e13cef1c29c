// The trainer (train/trainer.h): configs, batch sampling, exact resume, divergence, outputs.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "augment/batch_sampler.h"
#include "augment/image_io.h"
#include "kernels/error.h"
#include "kernels/host_rng.h"
#include "nn/autograd.h"
#include "nn/safetensors.h"
#include "train/evaluate.h"
#include "kernels/runtime.h"
#include "train/trainer.h"
#include "tests/test_util.h"

using namespace caf;
namespace fs = std::filesystem;

namespace {

// A class folder with n smooth random 40 x 48 training images (resized to 32 on loading).
struct TempClass {
  fs::path root;
  explicit TempClass(int n, const std::string& tag) {
    root = fs::temp_directory_path() / ("caf_trainer_" + tag + "_" + std::to_string(HostRng(uint64_t(n)).next() % 100000));
    fs::remove_all(root);
    fs::create_directories(root / "toy" / "train" / "good");
    HostRng rng(7);
    for (int i = 0; i < n; ++i) {
      Image im;
      im.height = 40;
      im.width = 48;
      im.channels = 3;
      im.pixels.resize(40 * 48 * 3);
      const double fx = rng.uniform(0.1, 0.4), fy = rng.uniform(0.1, 0.4);
      for (int y = 0; y < 40; ++y)
        for (int x = 0; x < 48; ++x)
          for (int c = 0; c < 3; ++c)
            im.at(y, x, c) = uint8_t(127 + 100 * std::sin(fx * x + fy * y + c));
      char name[32];
      std::snprintf(name, sizeof name, "%03d.png", i);
      image_write_png((root / "toy" / "train" / "good" / name).string(), im);
    }
  }
  ~TempClass() { fs::remove_all(root); }
};

TrainConfig small_config() {
  TrainConfig c = TrainConfig::preset_named("tiny");
  c.size = 32;
  c.model.recon_width = 4;
  c.model.discr_width = 2;
  c.batch = 2;
  c.epochs = 3;  // 6 images, batch 2: 3 steps per epoch, 9 steps
  c.log_every = 1;
  c.checkpoint_every = 4;
  c.procedural_textures = 4;
  return c;
}

std::vector<nlohmann::json> read_log(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream f(p);
  for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Options for a silent run on the toy class in `data`, writing to data.root / out.
TrainOptions quiet_options(const TempClass& data, const std::string& out, Device d = Device::cpu) {
  TrainOptions opt;
  opt.data = data.root.string();
  opt.class_name = "toy";
  opt.device = d;
  opt.print = [](const std::string&) {};
  opt.out_dir = (data.root / out).string();
  return opt;
}

}  // namespace

// Graph mode against eager training: one eager run; one graph-mode run interrupted after 6 steps
// and resumed. On the CPU StepGraph replays by running the step's code, so this checks the
// trainer's side of graph mode (the step number through the device counter, the host-side step
// count, checkpoints, capturing again after a resume); on a GPU it checks the captured graph too.
// Two runs of 9 steps logged the same losses, bit for bit, and wrote the same model bytes.
static void check_same_run(const fs::path& dir_a, const fs::path& dir_b) {
  const std::vector<nlohmann::json> a = read_log(dir_a / "train_log.jsonl");
  const std::vector<nlohmann::json> b = read_log(dir_b / "train_log.jsonl");
  REQUIRE(a.size() == 9);
  REQUIRE(b.size() == 9);
  for (size_t i = 0; i < 9; ++i) {
    CAPTURE(i);
    CHECK(a[i]["step"] == b[i]["step"]);
    CHECK(a[i]["l2"].get<double>() == b[i]["l2"].get<double>());
    CHECK(a[i]["ssim"].get<double>() == b[i]["ssim"].get<double>());
    CHECK(a[i]["focal"].get<double>() == b[i]["focal"].get<double>());
  }
  const SafetensorsFile fa = read_safetensors((dir_a / "model.safetensors").string());
  const SafetensorsFile fb = read_safetensors((dir_b / "model.safetensors").string());
  int64_t differing = 0, model_bytes = 0;
  for (const auto& [name, t] : fa.tensors) {
    differing += t.bytes != fb.tensors.at(name).bytes;
    model_bytes += int64_t(t.bytes.size());
  }
  CHECK(differing == 0);
  // The logged peak: the run's high-water mark of bytes in use, at least everything the model
  // file holds (weights, running statistics, Adam's moments: all on the device while training),
  // and never falling within one uninterrupted run (a; b may have been resumed, a new process).
  auto peak = [](const nlohmann::json& line) { return line["peak_mib"].get<double>() * 1048576.0; };
  for (const auto* log : {&a, &b})
    for (const nlohmann::json& line : *log) CHECK(peak(line) >= double(model_bytes));
  for (size_t i = 1; i < a.size(); ++i) CHECK(peak(a[i]) >= peak(a[i - 1]));
  CHECK(fb.metadata.at("step") == "9");
  CHECK(fb.metadata.at("adam_steps_recon") == "9");
}

static void check_graph_training(Device d, const std::string& precision = "tf32",
                                 const std::string& activations = "fp32") {
  TempClass data(6, std::string(d == Device::cuda ? "graph_gpu_" : "graph_") + precision + "_" + activations);
  TrainConfig cfg = small_config();
  cfg.precision = precision;
  cfg.activations = activations;
  TrainOptions opt = quiet_options(data, "eager", d);
  train(cfg, opt);
  cfg.graph = true;
  opt.out_dir = (data.root / "graph").string();
  int polls = 0;
  opt.stop_requested = [&] { return ++polls > 6; };  // interrupt after 6 steps, then resume
  CHECK(train(cfg, opt).steps == 6);
  opt.stop_requested = nullptr;
  opt.resume = true;
  CHECK(train(cfg, opt).steps == 3);
  check_same_run(data.root / "eager", data.root / "graph");
}

// A process-wide switch that must change no bit of training (on, its default, against off), in
// TF32 and in bf16 mixed precision: the recompute of activations in the backward, write-first
// gradients.
static void check_switch_is_exact(Device d, const std::string& name, void (*set)(bool), bool (*get)()) {
  for (const char* precision : {"tf32", "bf16"}) {
    CAPTURE(precision);
    TempClass data(6, name + (d == Device::cuda ? "_gpu_" : "_") + precision);
    TrainConfig cfg = small_config();
    cfg.precision = precision;
    TrainOptions opt = quiet_options(data, "on", d);
    REQUIRE(get());
    train(cfg, opt);
    set(false);
    opt.out_dir = (data.root / "off").string();
    try {
      train(cfg, opt);
    } catch (...) {
      set(true);
      throw;
    }
    set(true);
    check_same_run(data.root / "on", data.root / "off");
  }
}
static void check_recompute_training(Device d) {
  check_switch_is_exact(d, "recompute", set_recompute_activations, recompute_activations);
}
static void check_write_first_training(Device d) {
  check_switch_is_exact(d, "write_first", set_write_first_gradients, write_first_gradients);
}

// bf16 activations: recomputing them (the default) or keeping them changes no bit; on the CPU the
// channels-last convolutions change no bit either; against bf16 with fp32 activations the first
// losses agree within bf16's precision (one more rounding per upsampling), and every loss is finite.
static void check_bf16_activations_training(Device d) {
  test::RuntimeSwitches pinned;  // write-first and bf16 gradients on (their defaults), restored after
  set_write_first_gradients(true);
  set_bf16_gradients(true);
  TempClass data(6, d == Device::cuda ? "bf16act_gpu" : "bf16act");
  TrainConfig cfg = small_config();
  cfg.precision = "bf16";
  cfg.activations = "bf16";
  cfg.model.recon_width = 8;  // channels-last needs multiples of 8: most convolutions qualify
  cfg.model.discr_width = 8;
  TrainOptions opt = quiet_options(data, "recompute", d);
  REQUIRE(recompute_activations());
  train(cfg, opt);
  CHECK(!bf16_activations());  // train() restores the process-wide switch
  set_recompute_activations(false);
  opt.out_dir = (data.root / "keep").string();
  try {
    train(cfg, opt);
  } catch (...) {
    set_recompute_activations(true);
    throw;
  }
  set_recompute_activations(true);
  check_same_run(data.root / "recompute", data.root / "keep");
  if (d == Device::cpu) {
    cfg.layout = "nhwc";
    opt.out_dir = (data.root / "nhwc").string();
    train(cfg, opt);
    check_same_run(data.root / "recompute", data.root / "nhwc");
    cfg.layout = "nchw";
  }
  // bf16 gradients (on by default) against fp32 gradient buffers: the same bits in either layout.
  // (Each batch norm's input gradient, and a convolution's into a batch norm whose output it alone
  // reads.) The runs above made some (pinned on above, whatever the environment says).
  const int64_t given = bf16_gradients_given();
  CHECK(given > 0);
  for (const char* layout : {"nchw", "nhwc"}) {
    CAPTURE(layout);
    cfg.layout = layout;
    const std::string on = std::string("bf16_grads_") + layout, off = std::string("fp32_grads_") + layout;
    opt.out_dir = (data.root / on).string();
    train(cfg, opt);
    set_bf16_gradients(false);  // restored by `pinned` if train throws
    opt.out_dir = (data.root / off).string();
    const int64_t before_off = bf16_gradients_given();
    train(cfg, opt);
    set_bf16_gradients(true);
    CHECK(bf16_gradients_given() == before_off);
    check_same_run(data.root / on, data.root / off);
  }
  CHECK(bf16_gradients_given() > given);
  cfg.layout = "nchw";
  cfg.activations = "fp32";
  opt.out_dir = (data.root / "fp32_activations").string();
  train(cfg, opt);
  const std::vector<nlohmann::json> a = read_log(data.root / "recompute" / "train_log.jsonl");
  const std::vector<nlohmann::json> b = read_log(data.root / "fp32_activations" / "train_log.jsonl");
  REQUIRE(a.size() == b.size());
  for (const char* loss : {"l2", "ssim", "focal"}) {
    CAPTURE(loss);
    const double la = a[0][loss].get<double>(), lb = b[0][loss].get<double>();
    CHECK(std::abs(la - lb) <= 0.05 * std::abs(lb));
    for (const auto& line : a) CHECK(std::isfinite(line[loss].get<double>()));
  }
}

TEST_SUITE("train") {
TEST_CASE("trainer: presets and JSON configs") {
  const TrainConfig tiny = TrainConfig::preset_named("tiny"), paper = TrainConfig::preset_named("paper");
  CHECK(tiny.size == 64);
  CHECK((paper.size == 256 && paper.model.recon_width == 128 && paper.model.discr_width == 64 &&
         paper.batch == 8 && paper.epochs == 700));
  CHECK_THROWS_AS(TrainConfig::preset_named("huge"), ConfigError);
  const TrainConfig c = TrainConfig::from_json(
      nlohmann::json{{"epochs", 5}, {"simulation", {{"ndaa_tau", 0.1}}}, {"mode", "draem"}}, "test", tiny);
  CHECK(c.epochs == 5);
  CHECK(c.simulation.ndaa_tau == doctest::Approx(0.1));
  CHECK(c.simulation.beta_lo == doctest::Approx(0.2));  // untouched keys keep their values
  CHECK(c.mode == "draem");
  CHECK(TrainConfig::from_json(c.to_json(), "round trip", paper).to_json() == c.to_json());
  CHECK(TrainConfig::from_json(nlohmann::json{{"preset", "paper"}}, "test", tiny).size == 256);
  auto message = [&](const nlohmann::json& j) {
    try {
      TrainConfig::from_json(j, "my.json", tiny);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message({{"epoch", 3}}).find("my.json: unknown key 'epoch'") != std::string::npos);
  CHECK(message({{"size", 100}}).find("multiple of 32") != std::string::npos);
  CHECK(message({{"mode", "joint"}}).find("mode") != std::string::npos);
  CHECK(message({{"simulation", {{"beta", {0.9, 0.1}}}}}).find("beta") != std::string::npos);
  // cuDNN's algorithm choice: three settings, anything else named with the three.
  for (const char* algorithms : {"deterministic", "fastest", "reproducible"})
    CHECK(TrainConfig::from_json(nlohmann::json{{"algorithms", algorithms}}, "test", tiny).algorithms == algorithms);
  CHECK(message({{"algorithms", "benchmark"}}).find("\"deterministic\", \"fastest\" or \"reproducible\"") !=
        std::string::npos);
}

TEST_CASE("trainer: the split halves draw only their own images, statelessly") {
  std::vector<int> seen(11, 0);
  for (uint32_t step = 0; step < 200; ++step)
    for (int64_t slot = 0; slot < 8; ++slot) {
      const int64_t x = BatchSlots{5, step, 0, 0, 2, 6}.image(slot);   // X of 11 images: 0, 2, .., 10
      const int64_t y = BatchSlots{5, step, 8, 1, 2, 5}.image(slot);   // Y: 1, 3, .., 9
      REQUIRE((x % 2 == 0 && x <= 10 && y % 2 == 1 && y <= 9));
      seen[size_t(x)]++;
      seen[size_t(y)]++;
    }
  for (int c : seen) CHECK(c > 80);  // 1600 draws each half over 6 or 5 images: ~270 / ~320
  // The gathered batch is the images' bytes / 255.
  std::vector<uint8_t> imgs(4 * 3 * 2 * 2);
  for (size_t i = 0; i < imgs.size(); ++i) imgs[i] = uint8_t(i * 5);
  std::vector<float> out(2 * 12);
  const BatchSlots s{1, 3, 0, 1, 2, 2};
  sample_batch(Device::cpu, s, imgs.data(), out.data(), 2, 12);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t e = 0; e < 12; ++e)
      CHECK(out[size_t(b * 12 + e)] == float(imgs[size_t(s.image(b) * 12 + e)]) / 255.f);
}

TEST_CASE("trainer: --algorithms sets cuDNN's choice for the run and restores it; the CPU has none to make") {
  TempClass data(6, "algorithms");
  TrainConfig cfg = small_config();
  struct Seen {
    bool deterministic, timed;
  };
  const auto run = [&](const std::string& algorithms) {
    cfg.algorithms = algorithms;
    TrainOptions opt = quiet_options(data, algorithms);
    Seen seen{};
    opt.stop_requested = [&] {  // asked once per step, inside the run
      seen = {deterministic(), timed_algorithms()};
      return false;
    };
    train(cfg, opt);
    CHECK((deterministic() && timed_algorithms()));  // the defaults again
    return seen;
  };
  const Seen det = run("deterministic"), fast = run("fastest"), repro = run("reproducible");
  CHECK((det.deterministic && det.timed));
  CHECK((!fast.deterministic && fast.timed));
  CHECK((repro.deterministic && !repro.timed));
  // The default since run 9 on an H200 ("reproducible" resumed bit for bit there, "deterministic"
  // did not, at the same speed for TF32): every preset's runs repeat and resume exactly on a GPU.
  CHECK(TrainConfig{}.algorithms == "reproducible");
  for (const char* preset : {"tiny", "paper"}) CHECK(TrainConfig::preset_named(preset).algorithms == "reproducible");
  // The CPU's convolutions have one algorithm: the same run, bit for bit, whatever the setting.
  check_same_run(data.root / "deterministic", data.root / "reproducible");
  check_same_run(data.root / "deterministic", data.root / "fastest");
}

TEST_CASE("trainer: an interrupted run resumes exactly; outputs are written") {
  TempClass data(6, "resume");
  const TrainConfig cfg = small_config();
  TrainOptions opt = quiet_options(data, "full");
  const TrainResult full = train(cfg, opt);
  CHECK(full.steps == 9);
  CHECK(!full.interrupted);
  for (const char* f : {"config.json", "train_log.jsonl", "model.safetensors", "checkpoint.safetensors"})
    CHECK(fs::exists(data.root / "full" / f));

  // Stop after 5 steps (a Ctrl-C), then resume.
  opt.out_dir = (data.root / "split").string();
  int polls = 0;
  opt.stop_requested = [&] { return ++polls > 5; };
  const TrainResult first = train(cfg, opt);
  CHECK(first.interrupted);
  CHECK(first.steps == 5);
  CHECK(!fs::exists(data.root / "split" / "model.safetensors"));
  opt.stop_requested = nullptr;
  opt.resume = true;
  const TrainResult second = train(cfg, opt);
  CHECK(second.steps == 4);

  const std::vector<nlohmann::json> a = read_log(data.root / "full" / "train_log.jsonl");
  const std::vector<nlohmann::json> b = read_log(data.root / "split" / "train_log.jsonl");
  REQUIRE(a.size() == 9);
  REQUIRE(b.size() == 9);
  for (size_t i = 0; i < 9; ++i) {
    CHECK(a[i]["step"] == b[i]["step"]);
    CHECK(a[i]["l2"].get<double>() == b[i]["l2"].get<double>());  // bit-identical on the CPU
    CHECK(a[i]["focal"].get<double>() == b[i]["focal"].get<double>());
  }
  const SafetensorsFile fa = read_safetensors((data.root / "full" / "model.safetensors").string());
  const SafetensorsFile fb = read_safetensors((data.root / "split" / "model.safetensors").string());
  int64_t differing = 0, model_bytes = 0;
  for (const auto& [name, t] : fa.tensors) {
    differing += t.bytes != fb.tensors.at(name).bytes;
    model_bytes += int64_t(t.bytes.size());
  }
  CHECK(differing == 0);
  // The logged peak: the run's high-water mark of bytes in use, at least everything the model
  // file holds (weights, running statistics, Adam's moments: all on the device while training),
  // and never falling within one uninterrupted run (a; b may have been resumed, a new process).
  auto peak = [](const nlohmann::json& line) { return line["peak_mib"].get<double>() * 1048576.0; };
  for (const auto* log : {&a, &b})
    for (const nlohmann::json& line : *log) CHECK(peak(line) >= double(model_bytes));
  for (size_t i = 1; i < a.size(); ++i) CHECK(peak(a[i]) >= peak(a[i - 1]));

  // The trained model loads back for evaluation with its config.
  const TrainedModel tm = load_trained_model((data.root / "full").string(), Device::cpu);
  CHECK(tm.config.size == 32);
  CHECK(tm.model->step == 9);
}

TEST_CASE("trainer: graph mode (one eager step, then a captured step replayed) trains the same") {
  check_graph_training(Device::cpu);
  check_graph_training(Device::cpu, "bf16", "bf16");  // bf16 activations, write-first, recompute
}

TEST_CASE("trainer: recomputing activations in the backward trains exactly as keeping them") {
  check_recompute_training(Device::cpu);
}

TEST_CASE("trainer: write-first gradients train exactly as zero-filled ones") {
  check_write_first_training(Device::cpu);
}

TEST_CASE("trainer: bf16 with channels-last convolutions trains exactly as planar ones (CPU)") {
  TempClass data(6, "channels_last");
  TrainConfig cfg = small_config();
  cfg.precision = "bf16";
  cfg.model.recon_width = 8;  // channels-last needs multiples of 8: most convolutions qualify
  cfg.model.discr_width = 8;
  TrainOptions opt = quiet_options(data, "planar");
  train(cfg, opt);
  cfg.layout = "nhwc";
  opt.out_dir = (data.root / "nhwc").string();
  train(cfg, opt);
  CHECK(!channels_last_convs());  // train() restores the process-wide switch
  check_same_run(data.root / "planar", data.root / "nhwc");
  cfg.precision = "tf32";
  CHECK_THROWS_AS(TrainConfig::from_json(cfg.to_json(), "config.json", cfg), ConfigError);  // nhwc needs bf16
}

TEST_CASE("trainer: bf16 activations train bit for bit with recompute on or off, either layout (CPU)") {
  check_bf16_activations_training(Device::cpu);
  TrainConfig cfg = small_config();
  cfg.activations = "bf16";  // with precision tf32
  CHECK_THROWS_AS(TrainConfig::from_json(cfg.to_json(), "config.json", cfg), ConfigError);
  cfg.activations = "bf8";
  cfg.precision = "bf16";
  CHECK_THROWS_AS(TrainConfig::from_json(cfg.to_json(), "config.json", cfg), ConfigError);
  // With the fused batch norm + ReLU off (CAF_FUSE=0) bf16 activations cannot run: an error, not
  // a silent fp32 run under a config that says bf16.
  TempClass data(6, "bf16act_unfused");
  cfg.activations = "bf16";
  TrainOptions opt = quiet_options(data, "run");
  set_fused_bn_relu(false);
  CHECK_THROWS_WITH_AS(train(cfg, opt), doctest::Contains("CAF_FUSE=0"), ConfigError);
  set_fused_bn_relu(true);
  CHECK(!bf16_activations());
}

TEST_CASE("trainer: a diverging run stops with the step and keeps the last good checkpoint") {
  TempClass data(6, "nan");
  TrainConfig cfg = small_config();
  cfg.model.adam.lr = 1e36;  // the first update throws the weights out of float range
  cfg.checkpoint_every = 1;
  TrainOptions opt = quiet_options(data, "run");
  std::string what;
  try {
    train(cfg, opt);
  } catch (const Error& e) {
    what = e.what();
  }
  MESSAGE(what);
  CHECK(what.find("diverged") != std::string::npos);
  CHECK(what.find("step") != std::string::npos);
  CHECK(!fs::exists(data.root / "run" / "model.safetensors"));
}

TEST_CASE("trainer: clear errors for a missing class folder and a resume without checkpoint") {
  TempClass data(6, "errors");
  TrainOptions opt = quiet_options(data, "run");
  opt.class_name = "nothing";
  CHECK_THROWS_AS(train(small_config(), opt), IoError);
  opt.class_name = "toy";
  opt.resume = true;
  try {
    train(small_config(), opt);
    FAIL("expected an error");
  } catch (const IoError& e) {
    CHECK(std::string(e.what()).find("checkpoint") != std::string::npos);
  }
}

TEST_CASE("trainer: loading a model folder names what is wrong") {
  TempClass data(6, "load");
  const fs::path dir = data.root / "model";
  fs::create_directories(dir);
  auto message = [&] {
    try {
      load_trained_model(dir.string(), Device::cpu);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message().find("config.json: missing") != std::string::npos);
  TrainConfig cfg = small_config();
  std::ofstream(dir / "config.json") << cfg.to_json().dump();
  CHECK(message().find("neither model.safetensors nor checkpoint.safetensors") != std::string::npos);
  // A checkpoint of other widths than the config says: every mismatch is named.
  ModelConfig other;
  other.recon_width = 8;
  other.discr_width = 2;
  Model m(other, Device::cpu);
  save_checkpoint((dir / "model.safetensors").string(), m);
  const std::string mismatch = message();
  CHECK(mismatch.find("model.safetensors") != std::string::npos);
  CHECK(mismatch.find("recon.encoder.block1.0.weight") != std::string::npos);
}
}

TEST_SUITE("gpu") {
TEST_CASE("gpu: the trainer's graph mode trains exactly as eager steps (deterministic algorithms)") {
  CAF_NEED_GPU();
  check_graph_training(Device::cuda);
  check_graph_training(Device::cuda, "bf16", "bf16");
}
TEST_CASE("gpu: recomputing activations trains exactly as keeping them (TF32, bf16)") {
  CAF_NEED_GPU();
  check_recompute_training(Device::cuda);
}
TEST_CASE("gpu: write-first gradients train exactly as zero-filled ones (TF32, bf16)") {
  CAF_NEED_GPU();
  check_write_first_training(Device::cuda);
}
TEST_CASE("gpu: bf16 activations train exactly with recompute on or off, and track fp32 activations") {
  CAF_NEED_GPU();
  check_bf16_activations_training(Device::cuda);
}
}
