#include "augment/simulator.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "augment/simulate.h"
#include "kernels/dispatch.h"
#include "kernels/error.h"
#include "kernels/graph.h"

namespace caf {

extern const char* const kBuiltinClassTable;  // configs/mvtec_classes.json, embedded by CMake

namespace {

using nlohmann::json;

void read_range(const json& j, const char* key, float& lo, float& hi, const std::string& where) {
  if (!j.contains(key)) return;
  const json& v = j.at(key);
  if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number())
    throw ConfigError(where + ": '" + key + "' must be [low, high]");
  lo = v[0].get<float>();
  hi = v[1].get<float>();
  if (!(lo <= hi)) throw ConfigError(where + ": '" + key + "' has low > high");
}

void check_probability(float p, const char* key, const std::string& where) {
  if (!(p >= 0.f && p <= 1.f)) throw ConfigError(where + ": '" + key + "' must be in [0, 1]");
}

}  // namespace

SimConfig sim_config_from_json(const json& j, const std::string& where) {
  static const char* const keys[] = {"p_anomaly",  "beta",           "rotation_p",     "rotation_deg",
                                     "rotation_fill", "perlin_threshold", "ndaa_size",
                                     "ndaa_amplitude", "ndaa_frequency", "ndaa_tau", "ndaa_block"};
  if (!j.is_object()) throw ConfigError(where + ": the simulation settings must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (const char* k : keys) ok = ok || it.key() == k;
    if (!ok) {
      std::string known;
      for (const char* k : keys) known += std::string(known.empty() ? "" : ", ") + k;
      throw ConfigError(where + ": unknown simulation key '" + it.key() + "'", "known keys: " + known);
    }
  }
  // A float or huge integer cast to int is undefined behaviour (tests/fuzz/fuzz_config found it).
  if (j.contains("ndaa_block") &&
      (!j["ndaa_block"].is_number_integer() || j["ndaa_block"].get<int64_t>() < 1 ||
       j["ndaa_block"].get<int64_t>() > 256))
    throw ConfigError(where + ": 'ndaa_block' must be an integer 1..256");
  SimConfig c;
  try {
    c.p_anomaly = j.value("p_anomaly", c.p_anomaly);
    read_range(j, "beta", c.beta_lo, c.beta_hi, where);
    c.rotation_p = j.value("rotation_p", c.rotation_p);
    c.rotation_deg = j.value("rotation_deg", c.rotation_deg);
    const std::string fill = j.value("rotation_fill", std::string("reflect"));
    if (fill != "reflect" && fill != "zero")
      throw ConfigError(where + ": rotation_fill must be \"reflect\" or \"zero\", not \"" + fill + "\"");
    c.rotation_reflect = fill == "reflect";
    c.perlin_threshold = j.value("perlin_threshold", c.perlin_threshold);
    read_range(j, "ndaa_size", c.ndaa_size_lo, c.ndaa_size_hi, where);
    read_range(j, "ndaa_amplitude", c.ndaa_amp_lo, c.ndaa_amp_hi, where);
    read_range(j, "ndaa_frequency", c.ndaa_freq_lo, c.ndaa_freq_hi, where);
    c.ndaa_tau = j.value("ndaa_tau", c.ndaa_tau);
    c.ndaa_block = j.value("ndaa_block", c.ndaa_block);
  } catch (const json::exception& e) {
    throw ConfigError(where + ": " + e.what());
  }
  check_probability(c.p_anomaly, "p_anomaly", where);
  check_probability(c.rotation_p, "rotation_p", where);
  check_probability(c.beta_lo, "beta", where);
  check_probability(c.beta_hi, "beta", where);
  if (!(c.ndaa_size_lo > 0.f && c.ndaa_size_hi <= 1.f))
    throw ConfigError(where + ": 'ndaa_size' must lie in (0, 1] (a fraction of the image side)");
  if (c.ndaa_block < 1 || c.ndaa_block > 256) throw ConfigError(where + ": 'ndaa_block' must be 1..256");
  return c;
}

json sim_config_to_json(const SimConfig& c) {
  return {{"p_anomaly", c.p_anomaly},
          {"beta", {c.beta_lo, c.beta_hi}},
          {"rotation_p", c.rotation_p},
          {"rotation_deg", c.rotation_deg},
          {"rotation_fill", c.rotation_reflect ? "reflect" : "zero"},
          {"perlin_threshold", c.perlin_threshold},
          {"ndaa_size", {c.ndaa_size_lo, c.ndaa_size_hi}},
          {"ndaa_amplitude", {c.ndaa_amp_lo, c.ndaa_amp_hi}},
          {"ndaa_frequency", {c.ndaa_freq_lo, c.ndaa_freq_hi}},
          {"ndaa_tau", c.ndaa_tau},
          {"ndaa_block", c.ndaa_block}};
}

Generator generator_from_name(const std::string& name, const std::string& where) {
  for (int g = 1; g <= kGeneratorCount; ++g)
    if (name == generator_name(Generator(g))) return Generator(g);
  std::string hint = "training generators are transparent, opaque and ndaa";
  if (name == "cutpaste" || name == "nsa")
    hint = name + " only builds the simulated benchmark (METHOD 4.7); " + hint;
  throw ConfigError(where + ": unknown generator '" + name + "'", hint);
}

std::string ClassSelection::describe() const {
  std::string s = name + ":";
  const char* sep = " ";
  for (int g = 0; g < kGeneratorCount; ++g)
    if (generators[g]) {
      s += sep;
      s += generator_name(Generator(g + 1));
      sep = ", ";
    }
  s += rotation ? "; rotation" : "; no rotation";
  if (!known) s += " (not in " + source + ": its default)";
  return s;
}

ClassSelection class_selection(const std::string& class_name, const std::string& table_path) {
  if (table_path.empty()) {
    ClassSelection s =
        class_selection_from_text(class_name, kBuiltinClassTable, "built-in class table");
    s.source = "the built-in table";
    return s;
  }
  std::ifstream f(table_path);
  if (!f) throw IoError(table_path + ": cannot open the class table", "check the --classes path");
  std::stringstream ss;
  ss << f.rdbuf();
  return class_selection_from_text(class_name, ss.str(), table_path);
}

ClassSelection class_selection_from_text(const std::string& class_name, const std::string& text,
                                         const std::string& where) {
  json table;
  try {
    table = json::parse(text);
  } catch (const json::exception& e) {
    throw ConfigError(where + ": not valid JSON: " + e.what());
  }
  if (!table.is_object() || !table.contains("default") || !table.contains("classes") ||
      !table["classes"].is_object())
    throw ConfigError(where + ": expected {\"default\": {...}, \"classes\": {...}}",
                      "see configs/mvtec_classes.json");
  ClassSelection s;
  s.name = class_name;
  s.source = where;
  s.known = table["classes"].contains(class_name);
  const json& entry = s.known ? table["classes"][class_name] : table["default"];
  const std::string at = where + ": " + (s.known ? "class '" + class_name + "'" : "default");
  if (!entry.is_object()) throw ConfigError(at + ": expected an object");
  for (auto it = entry.begin(); it != entry.end(); ++it)
    if (it.key() != "generators" && it.key() != "rotation" && it.key() != "note")
      throw ConfigError(at + ": unknown key '" + it.key() + "'", "keys: generators, rotation, note");
  if (!entry.contains("generators") || !entry["generators"].is_array())
    throw ConfigError(at + ": 'generators' must be a list of names");
  for (bool& g : s.generators) g = false;
  for (const json& g : entry["generators"]) {
    if (!g.is_string()) throw ConfigError(at + ": generator names must be strings");
    s.generators[int(generator_from_name(g.get<std::string>(), at)) - 1] = true;
  }
  const json rotation = entry.value("rotation", json(false));
  if (!rotation.is_boolean()) throw ConfigError(at + ": 'rotation' must be true or false");
  s.rotation = rotation.get<bool>();
  return s;
}

Simulator::Simulator(const SimConfig& config, const ClassSelection& selection, TextureBank bank,
                     uint64_t seed)
    : config_(config), selection_(selection), bank_(std::move(bank)), seed_(seed) {
  if (bank_.count() == 0) throw ConfigError("Simulator: the texture bank is empty");
  if (bank_.images.dtype() != DType::u8 || bank_.images.ndim() != 4 || bank_.images.dim(1) != 3)
    throw ShapeError("Simulator: the texture bank must be u8 [T, 3, H, W], not " +
                     bank_.images.describe());
}

PlanSettings Simulator::settings(uint32_t step, uint32_t first_sample) const {
  PlanSettings s;
  s.seed = seed_;
  s.step = step;
  s.first_sample = first_sample;
  s.height = bank_.images.dim(2);
  s.width = bank_.images.dim(3);
  s.texture_count = int32_t(bank_.count());
  for (int g = 0; g < kGeneratorCount; ++g) s.enabled[g] = selection_.generators[g];
  s.rotation = selection_.rotation;
  s.p_anomaly = config_.p_anomaly;
  s.beta_lo = config_.beta_lo;
  s.beta_hi = config_.beta_hi;
  s.rotation_p = config_.rotation_p;
  s.rotation_deg = config_.rotation_deg;
  s.ndaa_size_lo = config_.ndaa_size_lo;
  s.ndaa_size_hi = config_.ndaa_size_hi;
  s.ndaa_amp_lo = config_.ndaa_amp_lo;
  s.ndaa_amp_hi = config_.ndaa_amp_hi;
  s.ndaa_freq_lo = config_.ndaa_freq_lo;
  s.ndaa_freq_hi = config_.ndaa_freq_hi;
  return s;
}

std::vector<SamplePlan> Simulator::plans(int64_t n, uint32_t step, uint32_t first_sample) const {
  const PlanSettings s = settings(step, first_sample);
  std::vector<SamplePlan> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = plan_sample(s, uint32_t(i));
  return out;
}

Simulator::Batch Simulator::run(const Tensor& clean, uint32_t step, uint32_t first_sample,
                               const uint32_t* step_ptr) {
  const Device d = clean.device();
  if (clean.dtype() != DType::f32 || clean.ndim() != 4 || clean.dim(1) != 3 ||
      clean.dim(2) != bank_.images.dim(2) || clean.dim(3) != bank_.images.dim(3))
    throw ShapeError("Simulator::run: expected f32 [N, 3, " + std::to_string(bank_.images.dim(2)) +
                         ", " + std::to_string(bank_.images.dim(3)) + "] clean images, got " +
                         clean.describe(),
                     "images and textures must have the same size (both are resized on loading)");
  if (bank_.images.device() != d) bank_.images = bank_.images.to(d);  // uploaded once

  SimulateArgs a;
  a.plan = settings(step, first_sample);
  a.plan.step_ptr = step_ptr;
  a.n = clean.dim(0);
  a.threshold = config_.perlin_threshold;
  a.tau = config_.ndaa_tau;
  a.block = config_.ndaa_block;
  a.reflect = config_.rotation_reflect;
  const size_t bytes = simulate_workspace_bytes(a);
  if (workspace_.bytes() < bytes || workspace_.device() != d) {
    keep_for_graphs(std::move(workspace_));  // a captured graph may still address the old one
    workspace_ = Buffer(d, bytes);
  }
  simulate_workspace_bind(a, workspace_.data());

  Batch out;
  out.target = selection_.rotation ? Tensor::empty(clean.shape(), DType::f32, d) : clean;
  out.image = Tensor::empty(clean.shape(), DType::f32, d);
  out.mask = Tensor::empty({a.n, 1, clean.dim(2), clean.dim(3)}, DType::f32, d);
  a.clean = clean.data<float>();
  a.bank = bank_.images.data<uint8_t>();
  a.target = selection_.rotation ? out.target.data<float>() : nullptr;
  a.image = out.image.data<float>();
  a.mask = out.mask.data<float>();
  if (d == Device::cuda) {
    if constexpr (kCudaBuild) {
      cuda::simulate(a);
      return out;
    }
    detail::throw_no_cuda("simulate", false);
  }
  cpu::simulate(a);
  return out;
}

}  // namespace caf
