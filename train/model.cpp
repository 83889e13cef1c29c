#include "train/model.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "kernels/error.h"
#include "kernels/profile.h"
#include "nn/autograd.h"
#include "nn/losses.h"
#include "nn/safetensors.h"

namespace caf {

std::string ModelConfig::to_json() const {
  nlohmann::json j = {{"recon_width", recon_width}, {"discr_width", discr_width},
                      {"y_pass_batch_stats", y_pass_batch_stats}, {"seed", seed},
                      {"adam", {{"lr", adam.lr}, {"beta1", adam.beta1}, {"beta2", adam.beta2},
                                {"eps", adam.eps}, {"weight_decay", adam.weight_decay}}}};
  return j.dump();
}

ModelConfig ModelConfig::from_json(const std::string& text) {
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    ModelConfig c;
    c.recon_width = j.at("recon_width").get<int64_t>();
    c.discr_width = j.at("discr_width").get<int64_t>();
    c.y_pass_batch_stats = j.value("y_pass_batch_stats", false);
    c.seed = j.value("seed", uint64_t(0));
    if (j.contains("adam")) {
      const auto& a = j["adam"];
      c.adam = {a.value("lr", 1e-4), a.value("beta1", 0.9), a.value("beta2", 0.999),
                a.value("eps", 1e-8), a.value("weight_decay", 0.0)};
    }
    if (c.recon_width <= 0 || c.discr_width <= 0) throw ConfigError("network widths must be positive");
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(std::string("model config: ") + e.what());
  }
}

Model::Model(const ModelConfig& cfg, Device d)
    : config(cfg), device(d), recon(3, 3, cfg.recon_width), discr(6, 2, cfg.discr_width) {
  recon.params().finalize(d, cfg.seed * 2 + 1);
  discr.params().finalize(d, cfg.seed * 2 + 2);
  opt_recon = std::make_unique<Adam>(recon.params(), cfg.adam);
  opt_discr = std::make_unique<Adam>(discr.params(), cfg.adam);
}

std::map<std::string, float> StepLosses::values() const {
  return {{"l2", l2.item()}, {"ssim", ssim.item()}, {"focal", focal.item()}, {"total", total.item()}};
}

namespace {
// One backward pass, as a phase; inside it the autograd opens "<tag> backward" ranges by node tag.
void backward(const char* phase, const Tensor& loss) {
  profile::Scope p(phase);
  loss.backward();
}

StepLosses optimize(Model& m, const Tensor& l2, const Tensor& ssim, const Tensor& focal) {
  {
    profile::Scope p("optimizer");
    m.opt_recon->step();
    m.opt_discr->step();
  }
  m.step++;
  // Keep only the values: the graphs were released by backward, the tensors hold one float each.
  Tensor l2v = l2.detach(), ssimv = ssim.detach(), focalv = focal.detach();
  return {l2v, ssimv, focalv, add(add(l2v, ssimv), focalv)};
}

// The start of both steps: clear both gradient slabs, reconstruct in training mode, and R's losses
// (sum = L2 + SSIM loss, the part of the objective that reaches only R in split training).
struct Reconstruction {
  Tensor rec, l2, ssim, sum;
};
Reconstruction reconstruct(Model& m, const Tensor& aug, const Tensor& clean) {
  {
    profile::Scope p("zero grad");
    m.recon.params().zero_grad();
    m.discr.params().zero_grad();
  }
  Reconstruction r;
  {
    profile::Scope p("R forward", "R");
    r.rec = m.recon.forward(aug, true);
  }
  profile::Scope p("losses R", "R loss");
  r.l2 = l2_loss(r.rec, clean);
  r.ssim = ssim_loss(r.rec, clean);
  r.sum = add(r.l2, r.ssim);
  return r;
}
}  // namespace

StepLosses split_step(Model& m, const SplitBatch& b) {
  // R's graph (the X batch) and S's (the Y batch) share nothing: the Y pass of R is detached. So R
  // goes backward before S goes forward, and the activations R's and its losses' backward needs are
  // freed before S allocates its own: the peak is the larger network's, not the sum of both. The
  // gradients are the summed loss's, bit for bit: each graph is seeded with 1 either way, and the
  // two networks' gradient slabs are separate.
  Reconstruction x = reconstruct(m, b.x_aug, b.x_clean);
  backward("backward (R)", x.sum);
  x.rec = x.sum = Tensor();
  Tensor rec_y;
  {
    profile::Scope p("R forward (Y, no grad)", "R");
    NoGradGuard no_grad;  // the focal loss never reaches R
    rec_y = m.recon.forward(b.y_aug, m.config.y_pass_batch_stats);
  }
  Tensor logits, focal;
  {
    profile::Scope p("S forward", "S");
    Tensor input = concat_channels(b.y_aug, rec_y);
    rec_y = Tensor();  // S's first convolution reads only the concatenation
    logits = m.discr.forward(input, true);
  }
  {
    profile::Scope p("losses S", "S loss");
    focal = focal_loss(logits, b.y_mask);
  }
  backward("backward (S)", focal);
  return optimize(m, x.l2, x.ssim, focal);
}

StepLosses draem_step(Model& m, const Tensor& clean, const Tensor& aug, const Tensor& mask) {
  Reconstruction r = reconstruct(m, aug, clean);
  Tensor logits, total;
  {
    profile::Scope p("S forward", "S");
    logits = m.discr.forward(concat_channels(aug, r.rec), true);
  }
  Tensor focal;
  {
    profile::Scope p("losses S", "S loss");
    focal = focal_loss(logits, mask);
    total = add(r.sum, focal);
  }
  backward("backward", total);  // one graph: the focal loss reaches R through its reconstruction
  return optimize(m, r.l2, r.ssim, focal);
}

Tensor anomaly_map(const Model& m, const Tensor& x) {
  NoGradGuard no_grad;
  Tensor rec = m.recon.forward(x, false);
  return slice_channels(softmax_channels(m.discr.forward(concat_channels(x, rec), false)), 1, 2);
}

namespace {
const char* kFormat = "caf-checkpoint-1";

std::vector<std::pair<std::string, Tensor>> checkpoint_tensors(const Model& m) {
  auto t = m.recon.params().named_tensors();
  for (auto& p : m.discr.params().named_tensors()) t.push_back(p);
  t.emplace_back("optim.recon.exp_avg", m.opt_recon->exp_avg());
  t.emplace_back("optim.recon.exp_avg_sq", m.opt_recon->exp_avg_sq());
  t.emplace_back("optim.discr.exp_avg", m.opt_discr->exp_avg());
  t.emplace_back("optim.discr.exp_avg_sq", m.opt_discr->exp_avg_sq());
  return t;
}
}  // namespace

void save_checkpoint(const std::string& path, const Model& m) {
  write_safetensors(path, checkpoint_tensors(m),
                    {{"format", kFormat},
                     {"step", std::to_string(m.step)},
                     {"adam_steps_recon", std::to_string(m.opt_recon->steps())},
                     {"adam_steps_discr", std::to_string(m.opt_discr->steps())},
                     {"config", m.config.to_json()}});
}

ModelConfig read_checkpoint_config(const std::string& path) {
  SafetensorsFile f = read_safetensors(path);
  if (f.metadata["format"] != kFormat)
    throw IoError(path + ": not a caf checkpoint (format '" + f.metadata["format"] + "')",
                  "checkpoints are written by caf train");
  return ModelConfig::from_json(f.metadata["config"]);
}

void load_checkpoint(const std::string& path, Model& m) {
  SafetensorsFile f = read_safetensors(path);
  if (f.metadata["format"] != kFormat)
    throw IoError(path + ": not a caf checkpoint (format '" + f.metadata["format"] + "')",
                  "checkpoints are written by caf train");
  std::string problems;
  auto expected = checkpoint_tensors(m);
  std::map<std::string, bool> used;
  for (auto& [name, t] : expected) {
    auto it = f.tensors.find(name);
    if (it == f.tensors.end()) {
      problems += "\n  missing: " + name + " " + dims_str(t.shape());
      continue;
    }
    used[name] = true;
    if (it->second.dtype != "F32" || it->second.shape != t.shape())
      problems += "\n  mismatch: " + name + " is " + it->second.dtype + dims_str(it->second.shape) +
                  " in the file, F32" + dims_str(t.shape()) + " in the model";
  }
  for (auto& [name, t] : f.tensors)
    if (!used.count(name)) problems += "\n  unexpected: " + name + " " + dims_str(t.shape);
  if (!problems.empty())
    throw IoError(path + ": checkpoint does not fit this model:" + problems,
                  "was it written with other network widths? (config: " + f.metadata["config"] + ")");
  for (auto& [name, t] : expected) {
    const SafeTensor& s = f.tensors.at(name);
    std::vector<float> v(s.bytes.size() / 4);
    std::memcpy(v.data(), s.bytes.data(), s.bytes.size());
    Tensor dst = t;  // a view into the model's slabs (or the optimiser's moments)
    dst.copy_(Tensor::from_vector(t.shape(), v));
  }
  const int64_t sr = std::stoll(f.metadata["adam_steps_recon"]), sd = std::stoll(f.metadata["adam_steps_discr"]);
  m.opt_recon->set_step_count(sr);
  m.opt_discr->set_step_count(sd);
  m.step = std::stoll(f.metadata["step"]);
}

}  // namespace caf
