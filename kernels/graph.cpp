#include "kernels/graph.h"

#include <mutex>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/error.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"

#if defined(CAF_WITH_CUDA)
#include <cuda_runtime.h>

#include "kernels/cuda/check.h"
#endif

namespace caf {

namespace {
std::mutex g_graphs_mutex;
int g_live_graphs = 0;
std::vector<Buffer>* g_kept = new std::vector<Buffer>();  // leaked: may outlive static destructors
}  // namespace

int live_graphs() {
  std::lock_guard<std::mutex> lock(g_graphs_mutex);
  return g_live_graphs;
}

void keep_for_graphs(Buffer old) {
  std::lock_guard<std::mutex> lock(g_graphs_mutex);
  if (g_live_graphs > 0 && old.data()) g_kept->push_back(std::move(old));
}

StepGraph::StepGraph(Device d) : device_(d) {}

StepGraph::~StepGraph() {
#if defined(CAF_WITH_CUDA)
  if (exec_ || graph_ || pool_) {
    cudaStreamSynchronize(cuda::stream());  // replays still queued write the pool
    if (exec_) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
    if (graph_) cudaGraphDestroy(static_cast<cudaGraph_t>(graph_));
    if (pool_) allocator(device_).release_private_pool(pool_);
  }
  if (counted_) {
    std::lock_guard<std::mutex> lock(g_graphs_mutex);
    if (--g_live_graphs == 0) g_kept->clear();
  }
#endif
}

void StepGraph::capture(std::function<void()> work) {
  CAF_REQUIRE(!work_ && !exec_, "StepGraph::capture: already captured");
  if (device_ == Device::cpu) {
    work_ = std::move(work);
    return;
  }
#if defined(CAF_WITH_CUDA)
  synchronize(device_);
  allocator(device_).empty_cache();  // the warm-up's blocks: the graph gets its own pool
  {
    // Counted from the start of the capture: a buffer replaced while capturing may already be in
    // the graph (keep_for_graphs).
    std::lock_guard<std::mutex> lock(g_graphs_mutex);
    ++g_live_graphs;
    counted_ = true;
  }
  pool_ = allocator(device_).begin_private_pool();
  CAF_CHECK_CUDA(cudaStreamBeginCapture(cuda::stream(), cudaStreamCaptureModeRelaxed));
  std::string error;
  try {
    work();
  } catch (const std::exception& e) {
    error = e.what();
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(cuda::stream(), &graph);
  allocator(device_).end_private_pool();
  if (!error.empty() || end != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw CudaError("capturing the step as a CUDA graph failed: " +
                        (error.empty() ? std::string(cudaGetErrorString(end)) : error),
                    "something in the step waits for the host or copies through it; run it eagerly "
                    "(without --graph) and look at 'host round trips per step'");
  }
  graph_ = graph;
  CAF_CHECK_CUDA(cudaGraphGetNodes(graph, nullptr, &nodes_));
  cudaGraphExec_t exec = nullptr;
  CAF_CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  exec_ = exec;
#else
  throw Error("StepGraph: CUDA memory in a build without CUDA");
#endif
}

void StepGraph::replay() {
  if (device_ == Device::cpu) {
    CAF_REQUIRE(bool(work_), "StepGraph::replay before capture");
    work_();
    return;
  }
#if defined(CAF_WITH_CUDA)
  CAF_REQUIRE(exec_ != nullptr, "StepGraph::replay before capture");
  CAF_CHECK_CUDA(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), cuda::stream()));
  if (sync_debug()) synchronize(device_);
#endif
}

namespace cpu {
void advance_counter(uint32_t* counter) { *counter += 1; }
}  // namespace cpu

void advance_counter(Device d, uint32_t* counter) {
  if (d == Device::cuda) {
#if defined(CAF_WITH_CUDA)
    cuda::advance_counter(counter);
    return;
#else
    detail::throw_no_cuda("advance_counter", false);
#endif
  }
  cpu::advance_counter(counter);
}

}  // namespace caf
