// kernels/profile.h: named phase ranges for the training step: NVTX for Nsight, and, while a
// collection is open, timings (CUDA events on the GPU, the steady clock on the CPU) that
// `caf bench step` turns into a phase breakdown and a Chrome trace.
//
// Key decisions: a Scope is always an NVTX range (free when no tool listens) and is timed only
// between start() and stop(), so the trainer pays nothing. CUDA events are recorded on caf's one
// stream and read only in stop(), which synchronises once: no host sync inside the ranges.
// A Scope may carry a tag ("R", "S", "R loss"): ops recorded by autograd inside it remember the tag,
// and the backward pass opens "<tag> backward" ranges as it walks from one tag's nodes to
// another's, so the backward pass splits by network without any per-op bookkeeping.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/common.h"

namespace caf::profile {

struct Range {
  std::string name;
  int depth = 0;           // nesting level (0 = outermost)
  double start_ms = 0;     // from start()
  double duration_ms = 0;
};

void start(Device d);        // open a collection on device d (clears the previous one)
std::vector<Range> stop();   // synchronise d, close the collection, ranges in start order
bool collecting();

class Scope {
 public:
  explicit Scope(std::string name, const char* tag = nullptr);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  int index_ = -1;  // into the open collection, or -1 when not collecting
  int generation_ = 0;
  const char* previous_tag_ = nullptr;
  bool sets_tag_ = false;
  std::string label_;                           // this range's name, for the memory census
  const std::string* previous_label_ = nullptr;
};

// Op-level ranges ("fwd conv2d", "bwd batchnorm2d_train", ...) around every nn op and every
// backward node: off by default (an event pair per op), on for `caf bench step --ops`.
void set_op_ranges(bool on);
bool op_ranges();
// A Scope names the phase and an OpScope the op of the allocations made inside it for the memory
// census (CensusLabel, kernels/memory.h), whether or not anything is being timed.
class OpScope {
 public:
  explicit OpScope(const char* op, bool backward = false);
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  std::optional<Scope> scope_;
  const char* previous_op_ = nullptr;
  bool previous_backward_ = false;
};

// The innermost open Scope's tag on this thread (null outside any tagged scope).
const char* current_tag();

// Chrome trace-event JSON (an array of complete "X" events, microseconds) of ranges, one step
// after another; opens in Perfetto (ui.perfetto.dev) and chrome://tracing.
std::string chrome_trace(const std::vector<Range>& ranges);

}  // namespace caf::profile
