#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>

#include "augment/simulator.h"
#include "augment/texture_bank.h"
#include "kernels/error.h"
#include "kernels/graph.h"
#include "kernels/host_rng.h"
#include "kernels/memory.h"
#include "kernels/profile.h"
#include "nn/autograd.h"
#include "nn/losses.h"
#include "nn/ops.h"
#include "nn/safetensors.h"
#include "train/model.h"
#include "tests/test_util.h"

using namespace caf;

namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.recon_width = 8;
  c.discr_width = 4;
  c.seed = 5;
  return c;
}

// A deterministic batch for step k: images in [0, 1], a rectangle of noise as the anomaly.
SplitBatch batch(int k, Device d = Device::cpu) {
  auto img = [&](uint64_t seed) { return Tensor::uniform({2, 3, 32, 32}, seed, 0, 1, d); };
  SplitBatch b{img(100 + k), Tensor(), img(200 + k), Tensor()};
  std::vector<float> x = b.x_clean.to_vector(), mask(2 * 32 * 32, 0.f), y = b.y_aug.to_vector();
  HostRng rng(300 + k);
  for (int n = 0; n < 2; ++n)
    for (int r = 8; r < 20; ++r)
      for (int c = 4; c < 16 + 8 * n; ++c) {
        mask[(n * 32 + r) * 32 + c] = 1.f;
        for (int ch = 0; ch < 3; ++ch) {
          x[((n * 3 + ch) * 32 + r) * 32 + c] = float(rng.uniform());
          y[((n * 3 + ch) * 32 + r) * 32 + c] = float(rng.uniform());
        }
      }
  b.x_aug = Tensor::from_vector({2, 3, 32, 32}, x, d);
  b.y_aug = Tensor::from_vector({2, 3, 32, 32}, y, d);
  b.y_mask = Tensor::from_vector({2, 1, 32, 32}, mask, d);
  return b;
}

std::string temp_path(const char* name) { return std::string("/tmp/caf_test_") + name; }

}  // namespace

// One step captured as a graph and replayed 3 times against 3 eager steps of an identical model:
// the anomaly simulation reads the step number from a device counter the graph advances, Adam
// counts on the device, so each replay must be the next step. Bit-identical on the same device
// (same kernels, deterministic algorithms). On the CPU, StepGraph replays by running the code.
static void check_graph_replay(Device d) {
  Model ma(small_config(), d), mb(small_config(), d);
  auto bank = [] { return texture_bank_procedural(4, 32, 3, Device::cpu); };
  Simulator sim_a(SimConfig{}, class_selection("bottle"), bank(), 1), sim_b(SimConfig{}, class_selection("bottle"), bank(), 1);
  const SplitBatch base = batch(0, d);
  auto step = [&](Model& m, Simulator& sim, uint32_t n, const uint32_t* sp) {
    const Simulator::Batch x = sim.run(base.x_clean, n, 0, sp), y = sim.run(base.y_aug, n, 2, sp);
    return split_step(m, {x.target, x.image, y.image, y.mask});
  };
  step(ma, sim_a, 0, nullptr);  // warm-up, eagerly, on both
  step(mb, sim_b, 0, nullptr);
  Buffer counter(d, sizeof(uint32_t));
  auto* cp = static_cast<uint32_t*>(counter.data());
  const uint32_t first = 1;
  copy_bytes(d, cp, Device::cpu, &first, sizeof first);
  StepGraph g(d);
  StepLosses lb;
  g.capture([&] {
    lb = step(mb, sim_b, 0, cp);
    advance_counter(d, cp);
  });
  for (uint32_t n = 1; n <= 3; ++n) {
    CAPTURE(n);
    const StepLosses la = step(ma, sim_a, n, nullptr);
    g.replay();
    CHECK(la.total.item() == lb.total.item());
    CHECK(la.focal.item() == lb.focal.item());
  }
  CHECK(ma.recon.params().params_flat().to_vector() == mb.recon.params().params_flat().to_vector());
  CHECK(ma.discr.params().params_flat().to_vector() == mb.discr.params().params_flat().to_vector());
  CHECK(ma.opt_recon->steps() == 4);
  CHECK(mb.opt_recon->steps() == 4);
  uint32_t c = 0;
  copy_bytes(Device::cpu, &c, d, cp, sizeof c);
  CHECK(c == 4);
}

TEST_SUITE("train") {
TEST_CASE("graph mode: one captured step replays as the next steps (CPU emulation)") {
  check_graph_replay(Device::cpu);
}

TEST_CASE("allocator: a private pool's blocks never serve other allocations") {
  // A size class nothing else in the tests uses (33..40 MiB), so the free lists hold only ours.
  constexpr size_t kBytes = size_t(35) << 20;
  Allocator& a = allocator(Device::cpu);
  const int id = a.begin_private_pool();
  CHECK(id > 0);
  void* p = a.allocate(kBytes);
  a.end_private_pool();
  a.release(p, kBytes);
  void* q = a.allocate(kBytes);  // the same size class, outside the pool: not the pool's block
  CHECK(q != p);
  const int id2 = a.begin_private_pool();
  void* r = a.allocate(kBytes);  // a new pool: not the old pool's block either
  CHECK(r != p);
  a.end_private_pool();
  a.release(q, kBytes);
  a.release(r, kBytes);
  // The first graph is gone: its pool's block serves general allocations again.
  a.release_private_pool(id);
  void* u = a.allocate(kBytes);
  void* v = a.allocate(kBytes);
  CHECK((u == p || v == p));
  CHECK(u != r);
  CHECK(v != r);
  a.release(u, kBytes);
  a.release(v, kBytes);
  a.release_private_pool(id2);
}

TEST_CASE("losses: closed-form values") {
  Tensor a = Tensor::uniform({1, 3, 16, 16}, 1, 0, 1);
  CHECK(l2_loss(a, a).item() == 0.f);
  CHECK(l2_loss(a, add_scalar(a, 0.5f)).item() == doctest::Approx(0.25));
  CHECK(ssim_loss(a, a).item() == doctest::Approx(0.0).epsilon(1e-6));
  CHECK(ssim_loss(a, Tensor::uniform({1, 3, 16, 16}, 2, 0, 1)).item() > 0.5f);
  CHECK(ssim_dynamic_range(a) == 1.f);
  CHECK(ssim_dynamic_range(add_scalar(a, -1.f)) == 2.f);    // min < -0.5: range [-1, 1]
  CHECK(ssim_dynamic_range(scale(a, 255.f)) == 255.f);      // max > 128: range [0, 255]
  CHECK(ssim_dynamic_range(scale(add_scalar(a, -0.5f), 600.f)) == 256.f);  // both: [-1, 255]
  const std::vector<float> c = ssim_constants(scale(a, 255.f)).to_vector();
  CHECK(c[0] == (0.01f * 255.f) * (0.01f * 255.f));
  CHECK(c[1] == (0.03f * 255.f) * (0.03f * 255.f));
  // Focal: logits (0, 0) give p = 0.5 everywhere: loss = -(0.5 - 1e-5)^2 ... per pixel.
  Tensor logits = Tensor::zeros({1, 2, 4, 4}), mask = Tensor::zeros({1, 1, 4, 4});
  const double pt = (1 - 1e-5) * 0.5 + 1e-5 * 0.5 + 1e-5;
  CHECK(focal_loss(logits, mask).item() == doctest::Approx(-(1 - pt) * (1 - pt) * std::log(pt)));
  CHECK_THROWS_AS(focal_loss(logits, Tensor::zeros({1, 1, 4, 5})), ShapeError);
}

TEST_CASE("adam: one step matches the closed form, and MultiStepLR drops at 80% and 90%") {
  ReconstructiveNet r(3, 3, 2);
  r.params().finalize(Device::cpu, 1);
  Adam opt(r.params(), {0.01, 0.9, 0.999, 1e-8, 0});
  std::vector<float> p0 = r.params().params_flat().to_vector();
  r.params().grads_flat().fill_(0.5f);
  opt.step();
  std::vector<float> p1 = r.params().params_flat().to_vector();
  // t = 1: m = 0.05, v = 0.00025, m_hat / (sqrt(v_hat) + eps) = 1 -> p -= lr
  for (size_t i = 0; i < p0.size(); i += 97) CHECK(p1[i] == doctest::Approx(p0[i] - 0.01).epsilon(1e-6));
  CHECK(multistep_lr(1e-4, 0, 700) == 1e-4);
  CHECK(multistep_lr(1e-4, 559, 700) == 1e-4);
  CHECK(multistep_lr(1e-4, 560, 700) == doctest::Approx(2e-5));
  CHECK(multistep_lr(1e-4, 630, 700) == doctest::Approx(4e-6));
}

TEST_CASE("split step: the focal loss never reaches R; losses fall on a fixed batch") {
  SplitBatch b = batch(0);
  // R's gradient from the whole split objective equals its gradient from SSIM + L2 alone.
  Model with(small_config(), Device::cpu), without(small_config(), Device::cpu);
  Tensor rw = with.recon.forward(b.x_aug, true);
  Tensor ry;
  {
    NoGradGuard no_grad;
    ry = with.recon.forward(b.y_aug, false);
  }
  Tensor focal = focal_loss(with.discr.forward(concat_channels(b.y_aug, ry), true), b.y_mask);
  add(add(l2_loss(rw, b.x_clean), ssim_loss(rw, b.x_clean)), focal).backward();
  Tensor ro = without.recon.forward(b.x_aug, true);
  add(l2_loss(ro, b.x_clean), ssim_loss(ro, b.x_clean)).backward();
  CHECK(with.recon.params().grads_flat().to_vector() == without.recon.params().grads_flat().to_vector());
  CHECK(with.discr.params().grads_flat().to_vector() != std::vector<float>(size_t(with.discr.params().num_params()), 0.f));

  Model m(small_config(), Device::cpu);
  auto first = split_step(m, b).values();
  for (int i = 0; i < 15; ++i) split_step(m, b);
  auto last = split_step(m, b).values();
  CHECK(last["total"] < first["total"]);
  CHECK(m.step == 17);
  CHECK(m.opt_recon->steps() == 17);
}

// The step as one summed objective with one backward (the order DRAEM's code and our PyTorch
// reference use): both forwards, then the backward of L2 + SSIM + focal through both graphs.
static StepLosses one_backward_split_step(Model& m, const SplitBatch& b) {
  m.recon.params().zero_grad();
  m.discr.params().zero_grad();
  std::optional<profile::Scope> phase("R forward");  // the census's labels, as split_step's
  Tensor rec = m.recon.forward(b.x_aug, true);
  Tensor l2 = l2_loss(rec, b.x_clean), ssim = ssim_loss(rec, b.x_clean), rec_y;
  {
    NoGradGuard no_grad;
    rec_y = m.recon.forward(b.y_aug, false);
  }
  phase.reset();
  phase.emplace("S forward");
  Tensor focal = focal_loss(m.discr.forward(concat_channels(b.y_aug, rec_y), true), b.y_mask);
  phase.reset();
  Tensor total = add(add(l2, ssim), focal);
  total.backward();
  m.opt_recon->step();
  m.opt_discr->step();
  m.step++;
  return {l2.detach(), ssim.detach(), focal.detach(), total.detach()};
}

TEST_CASE("split step: R goes backward before S goes forward; the same training, at a lower peak") {
  test::RuntimeSwitches keep;
  set_precision(Precision::fp32);
  Model split(small_config(), Device::cpu), joint(small_config(), Device::cpu);
  Allocator& a = allocator(Device::cpu);
  int64_t split_peak = 0, joint_peak = 0;
  bool split_both = true, joint_both = false;  // R's and S's forward allocations alive together
  auto run = [&](auto step, Model& m, const SplitBatch& b, int64_t& peak, bool& both) {
    a.set_census(true);
    a.reset_peak();
    const int64_t base = a.stats().bytes_in_use;  // parameters, Adam's moments, the batch
    StepLosses l = step(m, b);
    peak = a.stats().peak_bytes - base;
    bool r = false, s = false;
    for (const CensusRow& row : a.census().rows) {
      r |= row.label.rfind("R forward ·", 0) == 0;
      s |= row.label.rfind("S forward ·", 0) == 0;
    }
    both = r && s;
    a.set_census(false);
    return l.values();
  };
  for (int k = 0; k < 3; ++k) {
    CAPTURE(k);
    const SplitBatch b = batch(k);
    // Same seeds, same batches: bit-identical losses, and after Adam, parameters and moments.
    auto ls = run(split_step, split, b, split_peak, split_both);
    auto lj = run(one_backward_split_step, joint, b, joint_peak, joint_both);
    CHECK(ls == lj);
    CHECK(split.recon.params().params_flat().to_vector() == joint.recon.params().params_flat().to_vector());
    CHECK(split.discr.params().params_flat().to_vector() == joint.discr.params().params_flat().to_vector());
    CHECK(split.opt_recon->exp_avg_sq().to_vector() == joint.opt_recon->exp_avg_sq().to_vector());
    CHECK(split.opt_discr->exp_avg().to_vector() == joint.opt_discr->exp_avg().to_vector());
  }
  // At the step's peak R's forward allocations (its saved activations) and S's are never alive
  // together; so the peak above the parameters is lower than one backward's, where they are.
  CHECK_FALSE(split_both);
  CHECK(joint_both);  // the census tells them apart
  CHECK(split_peak < joint_peak);
  MESSAGE("peak above parameters and batch: split step " << split_peak << " B, one backward " << joint_peak << " B");
}

TEST_CASE("steps make no host round trip: no copy, no synchronisation (a CUDA graph can hold them)") {
  // The counters see every copy_bytes and synchronize() on every device, so this CPU test guards
  // the code path a GPU step takes: the SSIM constants stay on the device, Adam's scalars are
  // kernel arguments, the backward seed is a fill.
  Model m(small_config(), Device::cpu);
  SplitBatch b = batch(0);
  split_step(m, b);  // warm-up (first allocations)
  const HostSyncCounts before = host_sync_counts();
  StepLosses l = split_step(m, b);
  draem_step(m, b.x_clean, b.x_aug, b.y_mask);
  const HostSyncCounts after = host_sync_counts();
  CHECK(after.copies - before.copies == 0);
  CHECK(after.syncs - before.syncs == 0);
  l.values();  // reading the losses is the caller's choice, and is counted
  CHECK(host_sync_counts().copies - after.copies == 4);
}

TEST_SUITE("gpu") {
TEST_CASE("gpu: one captured split step (with augmentation) replays as the next steps, bit-identical") {
  CAF_NEED_GPU();
  check_graph_replay(Device::cuda);
}

TEST_CASE("gpu: a split step on the GPU makes no host round trip") {
  CAF_NEED_GPU();
  Model m(small_config(), Device::cuda);
  SplitBatch b = batch(0, Device::cuda);
  split_step(m, b);  // warm-up: cuDNN plans, first allocations
  const HostSyncCounts before = host_sync_counts();
  split_step(m, b);
  const HostSyncCounts after = host_sync_counts();
  CHECK(after.copies - before.copies == 0);
  CHECK(after.syncs - before.syncs == 0);
}
}

TEST_CASE("DRAEM step: one batch trains both networks and the focal loss reaches R") {
  SplitBatch b = batch(1);
  Model m(small_config(), Device::cpu);
  auto v = draem_step(m, b.x_clean, b.x_aug, b.y_mask).values();
  for (auto& [k, x] : v) CHECK(std::isfinite(x));
  CHECK(v["total"] == doctest::Approx(v["l2"] + v["ssim"] + v["focal"]));
  // The same first step's R gradient without the focal term differs: S's loss flows into R.
  Model ref(small_config(), Device::cpu);
  Tensor r = ref.recon.forward(b.x_aug, true);
  add(l2_loss(r, b.x_clean), ssim_loss(r, b.x_clean)).backward();
  Model again(small_config(), Device::cpu);
  Tensor ra = again.recon.forward(b.x_aug, true);
  Tensor focal = focal_loss(again.discr.forward(concat_channels(b.x_aug, ra), true), b.y_mask);
  add(add(l2_loss(ra, b.x_clean), ssim_loss(ra, b.x_clean)), focal).backward();
  CHECK(again.recon.params().grads_flat().to_vector() != ref.recon.params().grads_flat().to_vector());
  CHECK(m.step == 1);
}

TEST_CASE("determinism: train 5, save, train 5; reload and train the same 5: identical losses") {
  const std::string path = temp_path("determinism.safetensors");
  Model a(small_config(), Device::cpu);
  for (int k = 0; k < 5; ++k) split_step(a, batch(k));
  save_checkpoint(path, a);
  std::vector<std::map<std::string, float>> first, second;
  for (int k = 5; k < 10; ++k) first.push_back(split_step(a, batch(k)).values());
  Model b(small_config(), Device::cpu);
  load_checkpoint(path, b);
  CHECK(b.step == 5);
  for (int k = 5; k < 10; ++k) second.push_back(split_step(b, batch(k)).values());
  for (int k = 0; k < 5; ++k) {
    CAPTURE(k);
    CHECK(first[k] == second[k]);  // bit-identical, not approximately equal
  }
  CHECK(a.recon.params().params_flat().to_vector() == b.recon.params().params_flat().to_vector());
  std::remove(path.c_str());
}

TEST_CASE("checkpoints: safetensors layout, metadata, and clear errors") {
  const std::string path = temp_path("layout.safetensors");
  Model m(small_config(), Device::cpu);
  split_step(m, batch(0));
  save_checkpoint(path, m);
  SafetensorsFile f = read_safetensors(path);
  CHECK(f.metadata.at("format") == "caf-checkpoint-1");
  CHECK(f.metadata.at("step") == "1");
  CHECK(ModelConfig::from_json(f.metadata.at("config")).recon_width == 8);
  const SafeTensor& w = f.tensors.at("recon.encoder.block1.0.weight");
  CHECK(w.dtype == "F32");
  CHECK(w.shape == Dims{8, 3, 3, 3});
  std::vector<float> v(w.bytes.size() / 4);
  std::memcpy(v.data(), w.bytes.data(), w.bytes.size());
  CHECK(v == m.recon.params().param(0).to_vector());
  CHECK(f.tensors.count("discr.decoder_segment.fin_out.0.bias") == 1);
  CHECK(f.tensors.count("recon.encoder.block1.1.running_var") == 1);
  CHECK(f.tensors.at("optim.recon.exp_avg").shape == Dims{m.recon.params().num_params()});

  ModelConfig other = small_config();
  other.recon_width = 16;
  Model wrong(other, Device::cpu);
  try {
    load_checkpoint(path, wrong);
    FAIL("expected IoError");
  } catch (const IoError& e) {
    std::string msg = e.what();
    CHECK(msg.find("mismatch: recon.encoder.block1.0.weight") != std::string::npos);
    CHECK(msg.find(path) != std::string::npos);
  }
  {  // a truncated file
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(path + ".cut", std::ios::binary);
    out.write(bytes.data(), std::streamsize(bytes.size() / 2));
  }
  CHECK_THROWS_AS(load_checkpoint(path + ".cut", m), IoError);
  CHECK_THROWS_AS(load_checkpoint("/nonexistent/x.safetensors", m), IoError);
  // A foreign safetensors file (no caf metadata).
  write_safetensors(path + ".foreign", {{"w", Tensor::zeros({2})}});
  CHECK_THROWS_AS(load_checkpoint(path + ".foreign", m), IoError);
  for (const char* s : {"", ".cut", ".foreign"}) std::remove((path + s).c_str());
}
}
