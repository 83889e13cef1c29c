// tests/ops/main.cpp: command line of the op-table harness.
//   caf_ops grad|parity|fixtures|perf [filter]   run one mode over the cases whose name contains filter
//   caf_ops list | coverage
#include <cstdio>
#include <cstring>
#include <string>

#include "kernels/error.h"
#include "tests/fixture.h"
#include "tests/ops/harness.h"

using namespace caf::test;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: caf_ops grad|parity|fixtures|perf [filter] | list | coverage\n");
    return 2;
  }
  const std::string mode = argv[1], filter = argc > 2 ? argv[2] : "";
  const std::string fixture = fixture_dir() + "/ops.cafx";
  register_all_cases();
  try {
    if (mode == "list" || mode == "--list") {
      run_list();
      return 0;
    }
    if (mode == "coverage" || mode == "--coverage") return run_coverage(fixture);
    Tally t;
    if (mode == "grad") t = run_grad(filter);
    else if (mode == "parity") t = run_parity(filter);
    else if (mode == "fixtures") t = run_fixtures(fixture, filter);
    else if (mode == "perf") t = run_perf(filter);
    else {
      std::fprintf(stderr, "caf_ops: unknown mode '%s'\n", mode.c_str());
      return 2;
    }
    std::printf("%s: %d passed, %d failed, %d skipped\n", mode.c_str(), t.passed, t.failed,
                t.skipped);
    return t.failed == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "caf_ops: %s\n", caf::describe(e).c_str());
    return 1;
  }
}
