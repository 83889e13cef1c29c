// tests/ops/harness.h: the op-table harness. One registry of cases; every op registers at least
// one. Modes (tests/ops/main.cpp):
//   grad      finite differences in double on the CPU reference (runs everywhere)
//   parity    CUDA against CPU in float, every output and input gradient (needs a GPU)
//   fixtures  CPU float against PyTorch's outputs and gradients (tests/reference/ops.cafx)
//   perf      timing of forward and backward on each available device
//   list, coverage
// Guards: outputs are poisoned with NaN before each forward, so an unwritten element fails;
// input gradients are prefilled with random values before each backward and subtracted after, so
// an op that overwrites instead of accumulating fails.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kernels/common.h"

namespace caf::test {

using Dims = std::vector<int64_t>;
int64_t numel(const Dims& d);
Shape4 shape4(const Dims& d);  // up to 4 dims, right-aligned: {C,H,W} -> {1,C,H,W}

struct InputSpec {
  Dims shape;
  double lo = -1, hi = 1;  // uniform range of generated values
  bool grad = true;        // receives a gradient
  bool state = false;      // updated in place by the forward (compared in parity)
};

struct OutputSpec {
  Dims shape;
  bool grad = true;  // differentiable: the backward reads its gradient
};

template <class T>
struct OpIO {
  using scalar = T;
  Device dev = Device::cpu;
  std::vector<T*> in, out, gin, gout;  // gin[i] / gout[j] null where the spec has no gradient
};

struct OpCase {
  std::string op;    // one of op_names()
  std::string name;  // unique, "op/variant"; also the fixture prefix
  std::vector<InputSpec> inputs;
  std::vector<OutputSpec> outputs;
  double grad_tol = 1e-6;      // relative L2 error of the analytic against the numeric gradient
  double parity_tol = 1e-10;   // NMSE of CUDA against CPU (float)
  double fixture_tol = 1e-10;  // NMSE of caf's CPU float against PyTorch (float)
  std::string reason;          // why these tolerances
  double flops = 0;            // forward FLOPs, for perf mode's GFLOP/s
  double bytes = 0;            // forward bytes read + written, for perf mode's GB/s
  bool perf_only = false;      // large shapes for perf mode; skipped by grad/parity/fixtures
};

// A case with its body, instantiated for double (CPU reference) and float (CPU and CUDA).
struct RegisteredCase : OpCase {
  std::function<void(OpIO<double>&, bool backward)> run_d;
  std::function<void(OpIO<float>&, bool backward)> run_f;
};

std::vector<RegisteredCase>& registry();
const std::vector<std::string>& op_names();  // every op that must have cases

// Registers a case whose body is a generic lambda (auto& io, bool backward), instantiated for
// double (CPU reference) and float (CPU and CUDA).
template <class F>
void add_case(OpCase c, F body) {
  RegisteredCase r;
  static_cast<OpCase&>(r) = std::move(c);
  r.run_d = body;
  r.run_f = body;
  registry().push_back(std::move(r));
}

void register_all_cases();  // tests/ops/cases.cpp

struct Tally {
  int passed = 0, failed = 0, skipped = 0;
};
Tally run_grad(const std::string& filter);
Tally run_parity(const std::string& filter);
Tally run_fixtures(const std::string& path, const std::string& filter);
Tally run_perf(const std::string& filter);
int run_coverage(const std::string& fixture_path);
void run_list();

}  // namespace caf::test

// In a case body: the scalar type of this instantiation.
#define CAF_CASE_T using T = typename std::decay_t<decltype(io)>::scalar
