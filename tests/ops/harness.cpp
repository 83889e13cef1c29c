// tests/ops/harness.cpp: the modes of the op-table harness (see harness.h).
#include "tests/ops/harness.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "kernels/error.h"
#include "kernels/host_rng.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"
#include "tests/fixture.h"

namespace caf::test {

int64_t numel(const Dims& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

Shape4 shape4(const Dims& d) {
  int64_t v[4] = {1, 1, 1, 1};
  for (size_t i = 0; i < d.size() && i < 4; ++i) v[4 - d.size() + i] = d[i];
  return {v[0], v[1], v[2], v[3]};
}

std::vector<RegisteredCase>& registry() {
  static std::vector<RegisteredCase> r;
  return r;
}

const std::vector<std::string>& op_names() {
  static const std::vector<std::string> names = {
      "add", "sub", "mul", "div", "scale", "add_scalar", "relu", "sigmoid", "exp", "log", "square",
      "clamp", "sum", "mean", "sum_channels", "mean_channels", "softmax_channels",
      "concat_channels", "slice_channels", "conv2d", "batchnorm2d_train", "batchnorm_relu2d_train", "batchnorm2d_eval",
      "batchnorm_relu2d_eval",
      "maxpool2d", "upsample_bilinear2x", "avg_pool2d", "gaussian_blur", "matmul"};
  return names;
}

namespace {

using Host = std::vector<double>;

bool selected(const OpCase& c, const std::string& filter) {
  return filter.empty() || c.name.find(filter) != std::string::npos;
}

// Device-side arrays for one run of a case in scalar type T.
template <class T>
struct Arrays {
  Device dev;
  std::vector<Buffer> in, out, gin, gout;
  OpIO<T> io;

  Arrays(Device d, const OpCase& c) : dev(d) {
    io.dev = d;
    for (const auto& s : c.inputs) {
      in.emplace_back(d, numel(s.shape) * sizeof(T));
      gin.emplace_back(s.grad ? Buffer(d, numel(s.shape) * sizeof(T)) : Buffer());
    }
    for (const auto& s : c.outputs) {
      out.emplace_back(d, numel(s.shape) * sizeof(T));
      gout.emplace_back(s.grad ? Buffer(d, numel(s.shape) * sizeof(T)) : Buffer());
    }
    for (auto& b : in) io.in.push_back(static_cast<T*>(b.data()));
    for (auto& b : gin) io.gin.push_back(static_cast<T*>(b.data()));
    for (auto& b : out) io.out.push_back(static_cast<T*>(b.data()));
    for (auto& b : gout) io.gout.push_back(static_cast<T*>(b.data()));
  }

  void put(Buffer& b, const Host& h) {
    std::vector<T> t(h.begin(), h.end());
    copy_bytes(dev, b.data(), Device::cpu, t.data(), t.size() * sizeof(T));
  }
  Host get(const Buffer& b) const {
    std::vector<T> t(b.bytes() / sizeof(T));
    copy_bytes(Device::cpu, t.data(), dev, b.data(), b.bytes());
    return Host(t.begin(), t.end());
  }
  void poison_outputs() {
    for (auto& b : out)
      fill<T>(dev, static_cast<T*>(b.data()), int64_t(b.bytes() / sizeof(T)),
              std::numeric_limits<T>::quiet_NaN());
  }
};

template <class T>
void run(const RegisteredCase& c, OpIO<T>& io, bool backward);
template <>
void run<double>(const RegisteredCase& c, OpIO<double>& io, bool backward) { c.run_d(io, backward); }
template <>
void run<float>(const RegisteredCase& c, OpIO<float>& io, bool backward) { c.run_f(io, backward); }

Host random_host(HostRng& rng, int64_t n, double lo, double hi) {
  Host h(static_cast<size_t>(n));
  for (auto& v : h) v = rng.uniform(lo, hi);
  return h;
}

std::vector<Host> random_inputs(const OpCase& c, uint64_t seed) {
  HostRng rng(seed);
  std::vector<Host> x;
  for (const auto& s : c.inputs) x.push_back(random_host(rng, numel(s.shape), s.lo, s.hi));
  return x;
}

bool all_finite(const Host& h) {
  for (double v : h)
    if (!std::isfinite(v)) return false;
  return true;
}

double l2(const Host& a) {
  double s = 0;
  for (double v : a) s += v * v;
  return std::sqrt(s);
}

// Normalised mean squared error of a against the reference b (ggml's metric).
double nmse(const Host& a, const Host& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? num / den : num;
}

void report(Tally& t, bool ok, const std::string& name, const std::string& what) {
  if (ok) {
    t.passed++;
  } else {
    t.failed++;
  }
  std::printf("  %-4s %-40s %s\n", ok ? "ok" : "FAIL", name.c_str(), what.c_str());
}

// L = sum_j r_j . out_j over differentiable outputs.
double projection(const std::vector<Host>& outs, const std::vector<Host>& r, const OpCase& c) {
  double l = 0;
  for (size_t j = 0; j < outs.size(); ++j)
    if (c.outputs[j].grad)
      for (size_t k = 0; k < outs[j].size(); ++k) l += r[j][k] * outs[j][k];
  return l;
}

template <class T>
std::vector<Host> forward(const RegisteredCase& c, Arrays<T>& a, const std::vector<Host>& x) {
  for (size_t i = 0; i < x.size(); ++i) a.put(a.in[i], x[i]);
  a.poison_outputs();
  run<T>(c, a.io, false);
  std::vector<Host> outs;
  for (auto& b : a.out) outs.push_back(a.get(b));
  return outs;
}

// Backward with prefilled input gradients; returns (gin - prefill) per input, empty where none.
template <class T>
std::vector<Host> backward(const RegisteredCase& c, Arrays<T>& a, const std::vector<Host>& gout,
                           const std::vector<Host>& prefill) {
  for (size_t j = 0; j < gout.size(); ++j)
    if (c.outputs[j].grad) a.put(a.gout[j], gout[j]);
  for (size_t i = 0; i < prefill.size(); ++i)
    if (c.inputs[i].grad) a.put(a.gin[i], prefill[i]);
  run<T>(c, a.io, true);
  std::vector<Host> g(c.inputs.size());
  for (size_t i = 0; i < g.size(); ++i)
    if (c.inputs[i].grad) {
      g[i] = a.get(a.gin[i]);
      for (size_t k = 0; k < g[i].size(); ++k) g[i][k] -= prefill[i][k];
    }
  return g;
}

char buf[512];
constexpr size_t kMaxProbes = 256;

std::string check_grad(const RegisteredCase& c) {
  const uint64_t seed = hash_name(c.name.c_str());
  std::vector<Host> x = random_inputs(c, seed);
  Arrays<double> a(Device::cpu, c);
  std::vector<Host> outs = forward(c, a, x);
  for (size_t j = 0; j < outs.size(); ++j)
    if (!all_finite(outs[j])) return "output " + std::to_string(j) + " not fully written (NaN)";
  HostRng rng(seed ^ 0x5555);
  std::vector<Host> r, prefill;
  for (const auto& s : c.outputs) r.push_back(random_host(rng, numel(s.shape), -1, 1));
  for (const auto& s : c.inputs) prefill.push_back(random_host(rng, numel(s.shape), -1, 1));
  std::vector<Host> g = backward(c, a, r, prefill);
  double worst = 0;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].grad) continue;
    if (!all_finite(g[i])) return "gradient of input " + std::to_string(i) + " not finite";
    // Every element of small inputs; a fixed random sample of large ones (each numeric
    // derivative costs two full forward passes).
    std::vector<size_t> picks;
    for (size_t k = 0; k < x[i].size(); ++k) picks.push_back(k);
    if (picks.size() > kMaxProbes) {
      for (size_t k = 0; k < kMaxProbes; ++k) std::swap(picks[k], picks[k + rng.next() % (picks.size() - k)]);
      picks.resize(kMaxProbes);
    }
    Host num, ana;
    for (size_t k : picks) {
      const double x0 = x[i][k], h = 1e-6 * std::max(1.0, std::fabs(x0));
      x[i][k] = x0 + h;
      double lp = projection(forward(c, a, x), r, c);
      x[i][k] = x0 - h;
      double lm = projection(forward(c, a, x), r, c);
      x[i][k] = x0;
      num.push_back((lp - lm) / (2 * h));
      ana.push_back(g[i][k]);
    }
    Host diff(num.size());
    for (size_t k = 0; k < num.size(); ++k) diff[k] = ana[k] - num[k];
    double rel = l2(diff) / std::max(l2(num), 1e-12);
    worst = std::max(worst, rel);
    if (rel > c.grad_tol) {
      std::snprintf(buf, sizeof buf, "input %zu: relative error %.3g > %.3g", i, rel, c.grad_tol);
      return buf;
    }
  }
  std::snprintf(buf, sizeof buf, "max relative error %.2e", worst);
  return std::string("ok ") + buf;
}

}  // namespace

Tally run_grad(const std::string& filter) {
  Tally t;
  std::printf("grad: finite differences in double on the CPU reference\n");
  for (const auto& c : registry()) {
    if (c.perf_only || !selected(c, filter)) continue;
    std::string msg;
    try {
      msg = check_grad(c);
    } catch (const std::exception& e) {
      msg = std::string("threw: ") + e.what();
    }
    bool ok = msg.rfind("ok ", 0) == 0;
    report(t, ok, c.name, ok ? msg.substr(3) : msg);
  }
  return t;
}

namespace {

std::string check_parity(const RegisteredCase& c) {
  const uint64_t seed = hash_name(c.name.c_str());
  std::vector<Host> x = random_inputs(c, seed);
  // Inputs rounded to float once, so both sides see identical values.
  for (auto& h : x)
    for (auto& v : h) v = float(v);
  Arrays<float> cpu(Device::cpu, c), gpu(Device::cuda, c);
  std::vector<Host> oc = forward(c, cpu, x), og = forward(c, gpu, x);
  double worst = 0;
  auto compare = [&](const Host& g, const Host& ref, const std::string& what) -> std::string {
    if (!all_finite(g)) return what + ": not finite or not written on the GPU";
    double e = nmse(g, ref);
    worst = std::max(worst, e);
    if (e > c.parity_tol) {
      std::snprintf(buf, sizeof buf, "%s: NMSE %.3g > %.3g", what.c_str(), e, c.parity_tol);
      return buf;
    }
    return {};
  };
  for (size_t j = 0; j < oc.size(); ++j)
    if (auto m = compare(og[j], oc[j], "output " + std::to_string(j)); !m.empty()) return m;
  for (size_t i = 0; i < c.inputs.size(); ++i)
    if (c.inputs[i].state)
      if (auto m = compare(gpu.get(gpu.in[i]), cpu.get(cpu.in[i]), "state " + std::to_string(i));
          !m.empty())
        return m;
  HostRng rng(seed ^ 0x7777);
  std::vector<Host> gout, prefill;
  for (const auto& s : c.outputs) gout.push_back(random_host(rng, numel(s.shape), -1, 1));
  for (const auto& s : c.inputs) prefill.push_back(random_host(rng, numel(s.shape), -1, 1));
  for (auto* v : {&gout, &prefill})
    for (auto& h : *v)
      for (auto& e : h) e = float(e);
  std::vector<Host> gc = backward(c, cpu, gout, prefill), gg = backward(c, gpu, gout, prefill);
  for (size_t i = 0; i < gc.size(); ++i)
    if (c.inputs[i].grad)
      if (auto m = compare(gg[i], gc[i], "grad " + std::to_string(i)); !m.empty()) return m;
  std::snprintf(buf, sizeof buf, "max NMSE %.2e (tol %.0e)", worst, c.parity_tol);
  return std::string("ok ") + buf;
}

}  // namespace

Tally run_parity(const std::string& filter) {
  Tally t;
  std::printf("parity: CUDA against the CPU reference, float\n");
  if (!cuda_available()) {
    std::printf("  skipped: %s\n", cuda_compiled() ? "no usable GPU on this machine"
                                                   : "this build has no CUDA");
    for (const auto& c : registry())
      if (!c.perf_only && selected(c, filter)) t.skipped++;
    return t;
  }
  std::printf("  device: %s\n", device_description(Device::cuda));
  for (const auto& c : registry()) {
    if (c.perf_only || !selected(c, filter)) continue;
    std::string msg;
    try {
      msg = check_parity(c);
    } catch (const std::exception& e) {
      msg = std::string("threw: ") + describe(e);
    }
    bool ok = msg.rfind("ok ", 0) == 0;
    report(t, ok, c.name, ok ? msg.substr(3) : msg);
  }
  return t;
}

namespace {
const char* kRegen = "regenerate with: python3 tests/reference/make_op_fixtures.py (needs python3-torch)";

Host to_host(const FixtureTensor& t) { return Host(t.data.begin(), t.data.end()); }
}  // namespace

Tally run_fixtures(const std::string& path, const std::string& filter) {
  Tally t;
  std::printf("fixtures: CPU float against PyTorch (%s)\n", path.c_str());
  Fixture fx = load_fixture(path, kRegen);
  for (const auto& c : registry()) {
    if (c.perf_only || !selected(c, filter)) continue;
    const std::string p = c.name + "/";
    if (!fx.count(p + "in0")) continue;
    std::string msg;
    try {
      std::vector<Host> x;
      for (size_t i = 0; i < c.inputs.size(); ++i) {
        const auto& ft = fx.at(p + "in" + std::to_string(i));
        if (ft.shape != c.inputs[i].shape)
          throw Error(p + "in" + std::to_string(i) + ": shape differs from the case", kRegen);
        x.push_back(to_host(ft));
      }
      Arrays<float> a(Device::cpu, c);
      std::vector<Host> outs = forward(c, a, x);
      double worst = 0;
      // Compares `got` with fixture tensor `key` when the fixture has it; sets msg on failure.
      auto compare = [&](const Host& got, const std::string& key, const char* what, size_t k) {
        auto it = fx.find(p + key);
        if (!msg.empty() || it == fx.end()) return;
        double e = all_finite(got) ? nmse(got, to_host(it->second)) : INFINITY;
        worst = std::max(worst, e);
        if (e > c.fixture_tol) {
          std::snprintf(buf, sizeof buf, "%s %zu: NMSE %.3g > %.3g", what, k, e, c.fixture_tol);
          msg = buf;
        }
      };
      for (size_t j = 0; j < outs.size(); ++j) compare(outs[j], "out" + std::to_string(j), "output", j);
      if (msg.empty()) {
        std::vector<Host> gout, zero;
        for (size_t j = 0; j < c.outputs.size(); ++j) {
          auto it = fx.find(p + "gout" + std::to_string(j));
          gout.push_back(it != fx.end() ? to_host(it->second) : Host(size_t(numel(c.outputs[j].shape)), 0.0));
        }
        for (const auto& s : c.inputs) zero.push_back(Host(size_t(numel(s.shape)), 0.0));
        std::vector<Host> g = backward(c, a, gout, zero);
        for (size_t i = 0; i < g.size(); ++i)
          if (c.inputs[i].grad) compare(g[i], "gin" + std::to_string(i), "grad", i);
      }
      if (msg.empty()) {
        std::snprintf(buf, sizeof buf, "ok max NMSE %.2e", worst);
        msg = buf;
      }
    } catch (const std::exception& e) {
      msg = std::string("threw: ") + describe(e);
    }
    bool ok = msg.rfind("ok ", 0) == 0;
    report(t, ok, c.name, ok ? msg.substr(3) : msg);
  }
  return t;
}

Tally run_perf(const std::string& filter) {
  Tally t;
  std::vector<Device> devs = {Device::cpu};
  if (cuda_available()) devs.push_back(Device::cuda);
  std::printf("%-36s %-5s %10s %10s %10s %10s %10s\n", "case", "dev", "fwd ms", "bwd ms", "fwd GF/s",
              "bwd GF/s", "fwd GB/s");
  for (const auto& c : registry()) {
    if (!selected(c, filter)) continue;
    for (Device d : devs) {
      Arrays<float> a(d, c);
      std::vector<Host> x = random_inputs(c, 1);
      for (size_t i = 0; i < x.size(); ++i) a.put(a.in[i], x[i]);
      HostRng rng(2);
      for (size_t j = 0; j < c.outputs.size(); ++j)
        if (c.outputs[j].grad) a.put(a.gout[j], random_host(rng, numel(c.outputs[j].shape), -1, 1));
      auto time = [&](bool bwd) {
        run<float>(c, a.io, bwd);  // warm-up (cuDNN plans, caches)
        synchronize(d);
        int reps = 0;
        auto t0 = std::chrono::steady_clock::now();
        double el = 0;
        do {
          run<float>(c, a.io, bwd);
          synchronize(d);
          ++reps;
          el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        } while (el < 0.3 && reps < 1000);
        return el / reps * 1e3;
      };
      double f = time(false), b = time(true);
      // backward of a conv-like op does twice the forward's work (data + filter gradients)
      std::printf("%-36s %-5s %10.3f %10.3f %10.1f %10.1f %10.1f\n", c.name.c_str(), device_name(d), f,
                  b, c.flops / f * 1e-6, 2 * c.flops / b * 1e-6, c.bytes / f * 1e-6);
      t.passed++;
    }
  }
  return t;
}

int run_coverage(const std::string& fixture_path) {
  Fixture fx;
  try {
    fx = load_fixture(fixture_path, kRegen);
  } catch (const std::exception& e) {
    std::printf("coverage: %s\n", describe(e).c_str());
  }
  std::set<std::string> known(op_names().begin(), op_names().end());
  int missing = 0;
  std::printf("%-22s %6s %9s\n", "op", "cases", "fixtures");
  for (const auto& op : op_names()) {
    int cases = 0, fixtures = 0;
    for (const auto& c : registry())
      if (c.op == op && !c.perf_only) {
        cases++;
        fixtures += fx.count(c.name + "/in0") ? 1 : 0;
      }
    bool ok = cases > 0 && fixtures > 0;
    missing += ok ? 0 : 1;
    std::printf("%-22s %6d %9d%s\n", op.c_str(), cases, fixtures, ok ? "" : "   <- MISSING");
  }
  for (const auto& c : registry())
    if (!known.count(c.op)) {
      std::printf("case %s names unknown op '%s'\n", c.name.c_str(), c.op.c_str());
      missing++;
    }
  std::printf("coverage: %zu ops, %d missing\n", op_names().size(), missing);
  return missing == 0 ? 0 : 1;
}

void run_list() {
  for (const auto& c : registry()) {
    std::printf("%-36s in:", c.name.c_str());
    for (const auto& s : c.inputs) {
      std::printf(" [");
      for (size_t k = 0; k < s.shape.size(); ++k) std::printf(k ? "x%lld" : "%lld", (long long)s.shape[k]);
      std::printf("]");
    }
    std::printf("  tol grad %.0e parity %.0e fixture %.0e%s\n      %s\n", c.grad_tol, c.parity_tol,
                c.fixture_tol, c.perf_only ? " (perf only)" : "", c.reason.c_str());
  }
}

}  // namespace caf::test
