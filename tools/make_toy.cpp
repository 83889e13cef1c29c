// tools/make_toy.cpp: `caf make-toy`: writes caf's built-in toy class (train/toy.h) and says
// what to run next, so a first session needs no dataset download.
#include <chrono>
#include <cstdio>
#include <string>

#include "kernels/error.h"
#include "tools/cli.h"
#include "train/toy.h"

namespace caf {

namespace {

constexpr const char* kUsage =
    "usage: caf make-toy --out DIR [--kind texture|object] [--seed S] [--size PX] [--train N]\n"
    "       [--test-good N] [--test-per-defect N] [--name NAME]";

}  // namespace

int make_toy(int argc, char** argv) {
  ToyOptions o;
  std::string out;
  for (int i = 0; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw ConfigError("make-toy: " + k + " needs a value", kUsage);
      return argv[++i];
    };
    auto num = [&](const std::string& v, long long lo, long long hi) {
      return cli_integer("make-toy: " + k, v, lo, hi, kUsage);
    };
    if (k == "--out")
      out = val();
    else if (k == "--kind")
      o.kind = val();
    else if (k == "--seed")
      o.seed = uint64_t(num(val(), 0, (1LL << 62)));
    else if (k == "--size")
      o.size = int(num(val(), 32, 4096));
    else if (k == "--train")
      o.train = int(num(val(), 1, 100000));
    else if (k == "--test-good")
      o.test_good = int(num(val(), 1, 100000));
    else if (k == "--test-per-defect")
      o.test_per_defect = int(num(val(), 1, 100000));
    else if (k == "--name")
      o.name = val();
    else
      throw ConfigError("make-toy: unknown option '" + k + "'", kUsage);
  }
  if (out.empty()) throw ConfigError("make-toy: --out DIR is required", kUsage);
  toy_validate(o);

  const auto t0 = std::chrono::steady_clock::now();
  const ToySummary s = make_toy(out, o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s (%s, seed %llu, %d x %d px) in %.2f s\n", s.class_dir.c_str(),
              o.kind.c_str(), (unsigned long long)o.seed, o.size, o.size, secs);
  std::printf("  %-28s %lld\n", "train/good", (long long)s.train);
  std::printf("  %-28s %lld\n", "test/good", (long long)s.test_good);
  for (const std::string& d : s.defects)
    std::printf("  %-28s %d (masks in ground_truth/%s)\n", ("test/" + d).c_str(), o.test_per_defect,
                d.c_str());
  std::printf("next: caf preview --data %s --class %s --out preview.png\n", out.c_str(),
              toy_class_name(o).c_str());
  return 0;
}

}  // namespace caf
