// kernels/graph.h: a whole training step recorded once and replayed (CUDA graphs).
//
//   StepGraph g(device);
//   g.capture([&] { ... queue one step ... });   // CUDA: records, runs nothing
//   for (...) g.replay();                          // one launch per step, no host work
//
// Key decisions: capture uses caf's one stream in relaxed mode, after the caller's eager warm-up
// steps made every cuDNN plan and workspace; memory allocated while capturing comes from a private
// pool of the caching allocator (kernels/memory.h) that no other allocation can take, since every
// replay writes it, and tensors the work leaves behind (losses, the batch) stay valid and are
// refreshed by each replay. Anything that must differ between replays has to live in device
// memory (a step counter advanced by the graph itself: advance_counter; Adam's step count), because
// kernel arguments are frozen at capture. On the CPU there is nothing to record: capture() keeps
// the function and replay() runs it, so code written for graphs runs (and is tested) there too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "kernels/common.h"
#include "kernels/memory.h"

namespace caf {

class StepGraph {
 public:
  explicit StepGraph(Device d);
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  void capture(std::function<void()> work);  // throws (and records nothing) if work throws or
                                             // does something a graph cannot hold (a host sync)
  void replay();
  size_t nodes() const { return nodes_; }    // kernels and library calls recorded (0 on the CPU)
  Device device() const { return device_; }

 private:
  Device device_;
  std::function<void()> work_;
  // Used only by the CUDA build's code paths (hence [[maybe_unused]] for the CPU-only build).
  [[maybe_unused]] void* graph_ = nullptr;  // cudaGraph_t
  void* exec_ = nullptr;                    // cudaGraphExec_t
  size_t nodes_ = 0;
  [[maybe_unused]] int pool_ = 0;           // the allocator's private pool of this graph (released with it)
  [[maybe_unused]] bool counted_ = false;   // in live_graphs()
};

// Buffers a captured graph may still address (caf's cuDNN workspace, a Simulator's workspace)
// must not return to the general cache while graphs exist: code that replaces such a buffer
// passes the old one here, which keeps it until the last graph is destroyed.
void keep_for_graphs(Buffer old);
int live_graphs();

// *counter += 1 on the device that holds it (queued on caf's stream): the per-step number a
// replayed graph reads (PlanSettings::step_ptr, BatchSlots::step_ptr).
void advance_counter(Device d, uint32_t* counter);

namespace cpu {
void advance_counter(uint32_t* counter);
}
namespace cuda {
void advance_counter(uint32_t* counter);
}

}  // namespace caf
