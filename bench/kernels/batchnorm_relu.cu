// bench/kernels/batchnorm_relu.cu: kernel-development harness (STYLE 9) for the fused batch norm
// + ReLU on bf16 activations, planar and channels-last: every pass is first checked against the
// CPU reference, then timed with CUDA events at the paper's shapes, and printed as ms, GB/s and
// the share of the device's memory bandwidth. These passes are memory-bound, so GB/s against the
// ceiling says how much a kernel could still gain, which a step's per-op breakdown cannot.
//
// Key decisions:
//  - The product's passes are called through kernels/batchnorm.h, as nn/ops.cpp calls them; the
//    statistics alone are the forward's time less the apply pass's (the finaliser between them
//    is one thread per channel).
//  - A candidate kernel lives here, beside the product's, until a GPU has timed both; then it
//    moves into the product or goes. The last one, `stats2` (channels-last statistics with two
//    channels per thread), timed 1.9-3.2x faster in run 9 on an H200 and is now the product's
//    (kernels/cuda/batchnorm_relu.cu, stats_partials_last2), so "stats (forward - apply)" times it.
//  - Bytes are the compulsory traffic of each pass (each tensor read or written once per pass,
//    bf16 2 bytes, fp32 4): stats reads x; apply and eval read x and write y; the forward is
//    stats + apply; the backward's sums read x and gy, its apply pass reads x and gy and writes
//    gx (overwrite, as write-first gradients run it), gy and gx fp32 (4 bytes) or bf16 (2: bf16
//    gradients, kernels/runtime.h). Per-channel vectors are left out.
//
// Dimension letters: N, C, H, W of the logical shape; M = N*H*W rows of a channels-last [M][C].
// Usage: kdev_batchnorm_relu [--quick] [--json FILE]; --quick: small shapes and one trial (the
// CPU emulator, tests/emu, runs it that way: its times are not a GPU's).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/batchnorm.h"
#include "kernels/cast.h"
#include "kernels/cuda/check.h"
#include "kernels/error.h"
#include "kernels/host_rng.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"
#include "train/atomic_file.h"

namespace caf::kdev {

// ---- the harness ----
namespace {

template <class T>
struct DeviceArray {
  Buffer b;
  int64_t n = 0;
  explicit DeviceArray(int64_t count) : b(Device::cuda, size_t(std::max<int64_t>(count, 1)) * sizeof(T)), n(count) {}
  T* get() const { return static_cast<T*>(b.data()); }
  void put(const std::vector<T>& h) { copy_bytes(Device::cuda, b.data(), Device::cpu, h.data(), h.size() * sizeof(T)); }
  std::vector<T> fetch() const {
    std::vector<T> h(static_cast<size_t>(n));
    copy_bytes(Device::cpu, h.data(), Device::cuda, b.data(), h.size() * sizeof(T));
    return h;
  }
};

// The inputs of one shape: x as a convolution's raw bf16 output with its bias (the order of x's
// elements is the layout's), the parameters, an output gradient. For the checks x is normal;
// for timing (tens of millions of values: the host's time counts against a lent GPU's) uniform
// from 24 random bits each, which moves the same bytes.
struct Problem {
  BatchNormArgs a;
  std::vector<uint16_t> x, gy16;  // gy16: gy rounded (bf16 gradients)
  std::vector<float> bias, gamma, beta, gy, running_mean, running_var;
  Problem(const Shape4& s, bool nhwc, uint64_t seed, bool normal = true) {
    a.s = s;
    a.nhwc = nhwc;
    HostRng rng(seed);
    x.resize(size_t(s.numel()));
    gy.resize(x.size());
    const auto unit = [&] { return float(rng.next() >> 40) * (1.f / 16777216.f); };  // [0, 1)
    for (auto& v : x) v = f32_to_bf16(normal ? float(rng.normal() * 1.5 + 0.25) : -2.f + 4.5f * unit());
    for (auto& v : gy) v = normal ? float(rng.uniform(-1, 1)) : 2.f * unit() - 1.f;
    for (float v : gy) gy16.push_back(f32_to_bf16(v));
    for (int64_t c = 0; c < s.c; ++c) {
      bias.push_back(float(rng.uniform(-0.5, 0.5)));
      gamma.push_back(float(rng.uniform(0.5, 1.5)));
      beta.push_back(float(rng.uniform(-0.2, 0.2)));
      running_mean.push_back(float(rng.uniform(-0.1, 0.1)));
      running_var.push_back(float(rng.uniform(0.8, 1.2)));
    }
  }
};

struct OnDevice {
  DeviceArray<uint16_t> x, y, gy16, gx16;
  DeviceArray<float> bias, gamma, beta, gy, gx, mean, invstd, rmean, rvar, ggamma, gbeta;
  explicit OnDevice(const Problem& p)
      : x(p.a.s.numel()), y(p.a.s.numel()), gy16(p.a.s.numel()), gx16(p.a.s.numel()), bias(p.a.s.c), gamma(p.a.s.c), beta(p.a.s.c),
        gy(p.a.s.numel()), gx(p.a.s.numel()), mean(p.a.s.c), invstd(p.a.s.c), rmean(p.a.s.c),
        rvar(p.a.s.c), ggamma(p.a.s.c), gbeta(p.a.s.c) {
    x.put(p.x), bias.put(p.bias), gamma.put(p.gamma), beta.put(p.beta), gy.put(p.gy), gy16.put(p.gy16);
    rmean.put(p.running_mean), rvar.put(p.running_var);
  }
};

// What the CPU reference computes for one problem.
struct Expected {
  std::vector<uint16_t> y, y_eval, gx16;  // gx16: the backward with a bf16 gy (p.gy rounded) and gx
  std::vector<float> mean, invstd, rmean, rvar, gx, ggamma, gbeta;
};
Expected cpu_reference(const Problem& p) {
  const Shape4& s = p.a.s;
  Expected e;
  e.y.resize(size_t(s.numel()));
  e.y_eval.resize(e.y.size());
  e.gx.resize(e.y.size());
  e.mean.resize(size_t(s.c)), e.invstd.resize(size_t(s.c));
  e.rmean = p.running_mean, e.rvar = p.running_var;
  e.ggamma.assign(size_t(s.c), 0.f), e.gbeta.assign(size_t(s.c), 0.f);
  BatchNormArgs a = p.a;
  cpu::batchnorm_relu_train_forward_bf16(p.x.data(), p.bias.data(), p.gamma.data(), p.beta.data(), e.y.data(),
                                         e.mean.data(), e.invstd.data(), e.rmean.data(), e.rvar.data(), a);
  cpu::batchnorm_relu_eval_forward_bf16(p.x.data(), p.bias.data(), p.gamma.data(), p.beta.data(),
                                        p.running_mean.data(), p.running_var.data(), e.y_eval.data(), a);
  a.overwrite_gx = true;
  cpu::batchnorm_relu_train_backward_bf16(p.x.data(), p.bias.data(), p.gamma.data(), p.beta.data(), p.gy.data(),
                                          e.mean.data(), e.invstd.data(), e.gx.data(), e.ggamma.data(),
                                          e.gbeta.data(), a);
  std::vector<float> gg(size_t(s.c), 0.f), gb(size_t(s.c), 0.f);
  e.gx16.resize(e.y.size());
  a.gy_bf16 = a.gx_bf16 = true;
  cpu::batchnorm_relu_train_backward_bf16(p.x.data(), p.bias.data(), p.gamma.data(), p.beta.data(), p.gy16.data(),
                                          e.mean.data(), e.invstd.data(), e.gx16.data(), gg.data(), gb.data(), a);
  return e;
}

// Normalised mean squared error of got against want (float, or bf16 widened: kernels/cast.h),
// infinite on a NaN or infinity.
template <class T>
double nmse(const std::vector<T>& got, const std::vector<T>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = caf::widen(got[i]), w = caf::widen(want[i]);
    if (!std::isfinite(g)) return INFINITY;
    num += (g - w) * (g - w);
    den += w * w;
  }
  return den > 0 ? num / den : num;
}
double max_rel(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / std::max(1e-30, std::fabs(double(want[i]))));
  }
  return worst;
}

// Tolerances, with their reasons:
// - kStatsRel: the device sums in double in another order than the CPU (and the two layouts in
//   different orders again), so the float mean, invstd and running statistics may differ in the
//   last bit: 2 float ulps.
// - kNmse: y and gx follow from those statistics (and gx from per-channel sums, also in double in
//   another order): a last-bit change of a statistic moves some bf16 y by one ulp (2^-8
//   relative) and gx by a float ulp; a real indexing or arithmetic error gives NMSE near 1.
// - The apply and inference passes, given the same statistics, are the CPU's arithmetic element
//   for element (kernels/batchnorm.h): compared bit for bit.
constexpr double kStatsRel = 2.4e-7, kNmse = 1e-9;

int g_failures = 0;
void verdict(const std::string& what, bool ok, const std::string& detail) {
  std::printf("  %-58s %s  %s\n", what.c_str(), ok ? "ok  " : "FAIL", detail.c_str());
  if (!ok) ++g_failures;
}
std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}
std::string describe(const Shape4& s, bool nhwc) {
  char b[96];
  std::snprintf(b, sizeof b, "%lldx%lldx%lldx%lld %s", (long long)s.n, (long long)s.c, (long long)s.h,
                (long long)s.w, nhwc ? "nhwc" : "nchw");
  return b;
}

// Every pass on the device against the CPU reference.
void validate(const Shape4& s, bool nhwc) {
  const std::string tag = describe(s, nhwc);
  const Problem p(s, nhwc, hash_name(tag.c_str()));
  const Expected e = cpu_reference(p);
  OnDevice d(p);
  BatchNormArgs a = p.a;
  // bf16 NaNs in y before every pass that writes it: an unwritten element fails.
  const auto poison_y = [&] { fill(Device::cuda, reinterpret_cast<uint8_t*>(d.y.get()), 2 * s.numel(), uint8_t(0xff)); };
  poison_y();
  cuda::batchnorm_relu_train_forward_bf16(d.x.get(), d.bias.get(), d.gamma.get(), d.beta.get(), d.y.get(),
                                          d.mean.get(), d.invstd.get(), d.rmean.get(), d.rvar.get(), a);
  const double stats = std::max({max_rel(d.mean.fetch(), e.mean), max_rel(d.invstd.fetch(), e.invstd),
                                 max_rel(d.rmean.fetch(), e.rmean), max_rel(d.rvar.fetch(), e.rvar)});
  const double ey = nmse(d.y.fetch(), e.y);
  verdict(tag + " forward", stats <= kStatsRel && ey <= kNmse,
          fmt("statistics max rel %.2g, ", stats) + fmt("y NMSE %.2g", ey));
  // From here on the device runs on the CPU's statistics, so apply and inference are exact.
  d.mean.put(e.mean), d.invstd.put(e.invstd);
  poison_y();
  cuda::batchnorm_relu_apply_bf16(d.x.get(), d.bias.get(), d.gamma.get(), d.beta.get(), d.mean.get(),
                                  d.invstd.get(), d.y.get(), a);
  verdict(tag + " apply", d.y.fetch() == e.y, "bit for bit");
  d.rmean.put(p.running_mean), d.rvar.put(p.running_var);
  poison_y();
  cuda::batchnorm_relu_eval_forward_bf16(d.x.get(), d.bias.get(), d.gamma.get(), d.beta.get(), d.rmean.get(),
                                         d.rvar.get(), d.y.get(), a);
  verdict(tag + " inference", d.y.fetch() == e.y_eval, "bit for bit");
  a.overwrite_gx = true;
  fill(Device::cuda, d.gx.get(), s.numel(), NAN);  // an unwritten element fails
  fill(Device::cuda, d.ggamma.get(), s.c, 0.f), fill(Device::cuda, d.gbeta.get(), s.c, 0.f);
  cuda::batchnorm_relu_train_backward_bf16(d.x.get(), d.bias.get(), d.gamma.get(), d.beta.get(), d.gy.get(),
                                           d.mean.get(), d.invstd.get(), d.gx.get(), d.ggamma.get(),
                                           d.gbeta.get(), a);
  const double egx = nmse(d.gx.fetch(), e.gx);
  const double ep = std::max(nmse(d.ggamma.fetch(), e.ggamma), nmse(d.gbeta.fetch(), e.gbeta));
  verdict(tag + " backward (gx overwritten)", egx <= kNmse && ep <= kNmse,
          fmt("gx NMSE %.2g, ", egx) + fmt("ggamma/gbeta NMSE %.2g", ep));
  // bf16 gy and gx: gx is the fp32 gx rounded, so a float-ulp difference from the CPU's flips a
  // bf16 gx by one ulp only where it straddles a rounding boundary (about 2^-16 of them): kNmse.
  BatchNormArgs a16 = a;
  a16.gy_bf16 = a16.gx_bf16 = true;
  fill(Device::cuda, reinterpret_cast<uint8_t*>(d.gx16.get()), 2 * s.numel(), uint8_t(0xff));
  cuda::batchnorm_relu_train_backward_bf16(d.x.get(), d.bias.get(), d.gamma.get(), d.beta.get(), d.gy16.get(),
                                           d.mean.get(), d.invstd.get(), d.gx16.get(), nullptr, nullptr, a16);
  const double egx16 = nmse(d.gx16.fetch(), e.gx16);
  verdict(tag + " backward, bf16 gy and gx", egx16 <= kNmse, fmt("gx NMSE %.2g", egx16));
}

// Median over trials of the mean time of one call, from CUDA events on caf's stream.
template <class F>
double time_ms(F f, int trials, int calls) {
  cudaEvent_t t0, t1;
  CAF_CHECK_CUDA(cudaEventCreate(&t0));
  CAF_CHECK_CUDA(cudaEventCreate(&t1));
  f(), f();  // warm-up: the caching allocator's blocks, the first launches
  std::vector<double> ms;
  for (int t = 0; t < trials; ++t) {
    CAF_CHECK_CUDA(cudaEventRecord(t0, cuda::stream()));
    for (int i = 0; i < calls; ++i) f();
    CAF_CHECK_CUDA(cudaEventRecord(t1, cuda::stream()));
    CAF_CHECK_CUDA(cudaEventSynchronize(t1));
    float e = 0;
    CAF_CHECK_CUDA(cudaEventElapsedTime(&e, t0, t1));
    ms.push_back(double(e) / calls);
  }
  CAF_CHECK_CUDA(cudaEventDestroy(t0));
  CAF_CHECK_CUDA(cudaEventDestroy(t1));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Nominal memory bandwidth (bytes/s) from the memory clock and bus width: double data rate. 0 when
// the device does not say (the emulator).
double memory_ceiling() {
  int khz = 0, bits = 0;
  if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, 0) != cudaSuccess ||
      cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, 0) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return 2.0 * khz * 1e3 * bits / 8.0;
}

struct Row {
  std::string shape, pass;
  double ms, bytes;
};

void time_shape(const Shape4& s, bool nhwc, int trials, int calls, std::vector<Row>& rows) {
  const Problem p(s, nhwc, 7, false);
  OnDevice d(p);
  BatchNormArgs a = p.a;
  const double n = double(s.numel());
  auto forward = [&] {
    cuda::batchnorm_relu_train_forward_bf16(d.x.get(), d.bias.get(), d.gamma.get(), d.beta.get(), d.y.get(),
                                            d.mean.get(), d.invstd.get(), d.rmean.get(), d.rvar.get(), a);
  };
  forward();  // statistics for the passes that read them
  auto apply = [&] {
    cuda::batchnorm_relu_apply_bf16(d.x.get(), d.bias.get(), d.gamma.get(), d.beta.get(), d.mean.get(),
                                    d.invstd.get(), d.y.get(), a);
  };
  auto eval = [&] {
    cuda::batchnorm_relu_eval_forward_bf16(d.x.get(), d.bias.get(), d.gamma.get(), d.beta.get(), d.rmean.get(),
                                           d.rvar.get(), d.y.get(), a);
  };
  BatchNormArgs b = a;
  b.overwrite_gx = true;
  auto backward = [&] {
    cuda::batchnorm_relu_train_backward_bf16(d.x.get(), d.bias.get(), d.gamma.get(), d.beta.get(), d.gy.get(),
                                             d.mean.get(), d.invstd.get(), d.gx.get(), d.ggamma.get(),
                                             d.gbeta.get(), b);
  };
  const std::string tag = describe(s, nhwc);
  const double f = time_ms(forward, trials, calls), ap = time_ms(apply, trials, calls);
  rows.push_back({tag, "forward (stats + apply)", f, 6 * n});
  rows.push_back({tag, "apply", ap, 4 * n});
  rows.push_back({tag, "stats (forward - apply)", f - ap, 2 * n});
  rows.push_back({tag, "inference", time_ms(eval, trials, calls), 4 * n});
  rows.push_back({tag, "backward (sums + apply, gx =)", time_ms(backward, trials, calls), 16 * n});
  BatchNormArgs b16 = b;
  b16.gy_bf16 = b16.gx_bf16 = true;
  auto backward16 = [&] {
    cuda::batchnorm_relu_train_backward_bf16(d.x.get(), d.bias.get(), d.gamma.get(), d.beta.get(), d.gy16.get(),
                                             d.mean.get(), d.invstd.get(), d.gx16.get(), d.ggamma.get(),
                                             d.gbeta.get(), b16);
  };
  rows.push_back({tag, "backward, bf16 gy and gx", time_ms(backward16, trials, calls), 10 * n});
}

int run(int argc, char** argv) {
  bool quick = false;
  std::string json;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--quick") quick = true;
    else if (k == "--json" && i + 1 < argc) json = argv[++i];
    else throw ConfigError("unknown argument '" + k + "'", "usage: kdev_batchnorm_relu [--quick] [--json FILE]");
  }
  if (!cuda_available()) {
    std::printf("kdev_batchnorm_relu: no GPU (or CAF_DEVICE=cpu): nothing to check or time\n");
    return 0;
  }
  std::printf("device: %s\n", device_description(Device::cuda));
  std::printf("check against the CPU reference (bf16 activations with a bias; tolerances in the source):\n");
  const std::vector<Shape4> checks = {{2, 72, 33, 31}, {2, 6, 20, 20}, {3, 40, 45, 47}, {2, 5, 9, 7}};
  for (const Shape4& s : checks)
    for (bool nhwc : {false, true}) validate(s, nhwc);
  if (g_failures) {
    std::printf("%d check(s) failed: nothing timed\n", g_failures);
    return 1;
  }
  // The fused op's shapes in DRAEM's networks at the paper's 256x256, batch 8 (R width 128: 128
  // to 1024 channels; S width 64), one per (channels, size) pair that differs in work.
  const std::vector<Shape4> shapes =
      quick ? std::vector<Shape4>{{2, 64, 16, 16}}
            : std::vector<Shape4>{{8, 64, 256, 256}, {8, 128, 256, 256}, {8, 256, 128, 128},
                                  {8, 512, 64, 64},  {8, 1024, 32, 32},  {8, 1024, 16, 16}};
  const int trials = quick ? 1 : 5, calls = quick ? 1 : 10;
  const double ceiling = memory_ceiling();
  std::vector<Row> rows;
  for (const Shape4& s : shapes)
    for (bool nhwc : {false, true}) time_shape(s, nhwc, trials, calls, rows);
  std::printf("\ntimes (median of %d trials of %d calls, CUDA events; GB/s from the compulsory bytes; "
              "ceiling %s):\n", trials, calls, ceiling > 0 ? fmt("%.0f GB/s nominal", ceiling * 1e-9).c_str() : "unknown");
  std::printf("  %-26s %-34s %9s %9s %7s\n", "shape", "pass", "ms", "GB/s", "% peak");
  nlohmann::json out = nlohmann::json::array();
  for (const Row& r : rows) {
    const double gbs = r.ms > 0 ? r.bytes / (r.ms * 1e-3) * 1e-9 : 0;
    std::printf("  %-26s %-34s %9.4f %9.1f %7s\n", r.shape.c_str(), r.pass.c_str(), r.ms, gbs,
                ceiling > 0 ? fmt("%.1f", 100 * gbs * 1e9 / ceiling).c_str() : "-");
    out.push_back({{"shape", r.shape}, {"pass", r.pass}, {"ms", r.ms}, {"bytes", r.bytes}, {"gb_per_s", gbs}});
  }
  if (!json.empty()) {
    const nlohmann::json j = {{"tool", "kdev_batchnorm_relu"}, {"device", device_description(Device::cuda)},
                              {"ceiling_gb_per_s", ceiling * 1e-9}, {"quick", quick}, {"rows", out}};
    write_file_atomic(json, {j.dump(2) + "\n"});
    std::printf("json: %s\n", json.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace caf::kdev

int main(int argc, char** argv) {
  try {
    return caf::kdev::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kdev_batchnorm_relu: %s\n", caf::describe(e).c_str());
    return 2;
  }
}
