// tools/bench_augment.cpp: `caf bench augment`: throughput of the anomaly simulation (images/s),
// the whole batch pipeline of augment/simulate.h as the trainer calls it, on either device.
//
// Clean images and textures are procedural (or --textures DIR), so the benchmark needs no data.
// Two numbers: the median latency of one call including a device synchronisation, and the
// throughput of --steps calls queued back to back with one synchronisation at the end (what a
// training loop without host round trips sees). Every sample gets an anomaly unless --mix is
// given (then the class's mix: half the samples stay normal, which is cheaper).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "augment/simulator.h"
#include "kernels/error.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"

namespace caf {

namespace {

struct Args {
  std::string device = "auto", class_name = "bottle", textures;
  int64_t size = 256, batch = 8, steps = 20, warmup = 2;
  bool mix = false;
};

Args parse(int argc, char** argv) {
  Args a;
  const char* options = "options: --device cpu|cuda|auto --batch B --size S --steps N --warmup N "
                        "--class NAME --textures DIR --mix";
  for (int i = 0; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw ConfigError("bench augment: " + k + " needs a value", options);
      return argv[++i];
    };
    auto num = [&](int64_t least) {
      const std::string v = val();
      try {
        size_t used = 0;
        const long long n = std::stoll(v, &used);
        if (used != v.size() || n < least) throw 0;
        return int64_t(n);
      } catch (...) {
        throw ConfigError("bench augment: " + k + " expects an integer >= " + std::to_string(least) +
                          ", got '" + v + "'");
      }
    };
    if (k == "--device") a.device = val();
    else if (k == "--batch") a.batch = num(1);
    else if (k == "--size") a.size = num(16);
    else if (k == "--steps") a.steps = num(1);
    else if (k == "--warmup") a.warmup = num(0);
    else if (k == "--class") a.class_name = val();
    else if (k == "--textures") a.textures = val();
    else if (k == "--mix") a.mix = true;
    else throw ConfigError("bench augment: unknown option '" + k + "'", options);
  }
  return a;
}

}  // namespace

int bench_augment(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const Device d = parse_device(a.device.c_str());
  TextureBank bank = a.textures.empty() ? texture_bank_procedural(64, int(a.size), 1, d)
                                        : texture_bank_load(a.textures, int(a.size), d, 2000);
  ClassSelection sel = class_selection(a.class_name);
  SimConfig cfg;
  if (!a.mix) cfg.p_anomaly = 1.f;
  Simulator sim(cfg, sel, std::move(bank), 1);
  const std::vector<uint8_t> bytes =
      texture_bank_procedural(a.batch, int(a.size), 2, Device::cpu).images.to_bytes();
  std::vector<float> f(bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) f[i] = float(bytes[i]) / 255.f;
  const Tensor clean = Tensor::from_vector({a.batch, 3, a.size, a.size}, f, d);

  std::printf("bench augment: device %s (%s), %lldx%lld, batch %lld, %lld textures (%s)\n",
              device_name(d), device_description(d), (long long)a.size, (long long)a.size,
              (long long)a.batch, (long long)sim.bank().count(), sim.bank().source.c_str());
  std::printf("  selection %s; %s\n", sel.describe().c_str(),
              a.mix ? "the class's mix (half the samples normal)" : "every sample anomalous");
  if (d == Device::cpu) std::printf("  CPU threads: %d\n", omp_get_max_threads());

  uint32_t step = 0;
  for (int64_t i = 0; i < a.warmup; ++i) sim.run(clean, step++);
  synchronize(d);
  const int64_t allocs_before = allocator(d).stats().device_allocs;
  std::vector<double> ms;
  for (int64_t i = 0; i < a.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    sim.run(clean, step++);
    synchronize(d);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < a.steps; ++i) sim.run(clean, step++);
  synchronize(d);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double per_s = double(a.batch * a.steps) / total;
  std::printf("  latency: median %.3f ms per batch (min %.3f, max %.3f over %lld calls)\n", med,
              ms.front(), ms.back(), (long long)a.steps);
  std::printf("  throughput: %.1f images/s (%lld batches queued back to back)\n", per_s,
              (long long)a.steps);
  if (d == Device::cpu)
    std::printf("  per CPU thread: %.1f images/s\n", per_s / double(omp_get_max_threads()));
  std::printf("  %lld new device allocations while timing\n",
              (long long)(allocator(d).stats().device_allocs - allocs_before));
  return 0;
}

}  // namespace caf
