// kernels/cuda/context.cpp: the process-wide stream, library handles and cuDNN workspace.
//
// Created lazily on first use (never from static initialisers) and kept for the life of the
// process; one stream keeps every operation ordered, so the caching allocator can hand a freed
// block to the next request without events.
#include <mutex>
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/graph.h"
#include "kernels/memory.h"
#include "kernels/runtime.h"

namespace caf::cuda {

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}

std::string cuda_hint(cudaError_t e) {
  switch (e) {
    case cudaErrorMemoryAllocation: return "the GPU is out of memory: reduce the batch size";
    case cudaErrorNoKernelImageForDevice:
      return "no kernel for this GPU: rebuild with -DCMAKE_CUDA_ARCHITECTURES=<its sm number>";
    case cudaErrorInsufficientDriver: return "the NVIDIA driver is older than the CUDA runtime";
    case cudaErrorIllegalAddress:
      return "a kernel read or wrote out of bounds: rerun with CAF_SYNC_DEBUG=1 to find which";
    default: return "rerun with CAF_SYNC_DEBUG=1 to locate asynchronous faults";
  }
}

namespace {
struct Context {
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cublasHandle_t cublas = nullptr;
  Buffer workspace;
};

Context& ctx() {
  static Context* c = [] {
    auto* n = new Context();  // leaked on purpose: handles must outlive every static tensor
    CAF_CHECK_CUDA(cudaStreamCreateWithFlags(&n->stream, cudaStreamNonBlocking));
    return n;
  }();
  return *c;
}
std::mutex g_mutex;
}  // namespace

cudaStream_t stream() { return ctx().stream; }

cudnnHandle_t cudnn() {
  Context& c = ctx();
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!c.cudnn) {
    CAF_CHECK_CUDNN(cudnnCreate(&c.cudnn));
    CAF_CHECK_CUDNN(cudnnSetStream(c.cudnn, c.stream));
  }
  return c.cudnn;
}

cublasHandle_t cublas() {
  Context& c = ctx();
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!c.cublas) {
    CAF_CHECK_CUBLAS(cublasCreate(&c.cublas));
    CAF_CHECK_CUBLAS(cublasSetStream(c.cublas, c.stream));
    // Default math never uses TF32 for fp32: results stay comparable with the CPU reference.
    CAF_CHECK_CUBLAS(cublasSetMathMode(c.cublas, CUBLAS_DEFAULT_MATH));
  }
  return c.cublas;
}

void* workspace(size_t bytes) {
  Context& c = ctx();
  if (bytes > c.workspace.bytes()) {
    // Free first so the old block can be reused for the larger one, unless a captured graph may
    // still address it (kernels/graph.h).
    keep_for_graphs(std::move(c.workspace));
    c.workspace = Buffer();
    // The memory census files it under its own name, not the op that happened to grow it: every
    // convolution shares it, and how large it gets is cuDNN's choice (the algorithms Find picks).
    static const std::string kLabel = "cuDNN workspace";
    struct Relabel {
      CensusLabel saved = census_label();
      Relabel() { census_label() = {&kLabel, nullptr, false}; }
      ~Relabel() { census_label() = saved; }
    } relabel;
    c.workspace = Buffer(Device::cuda, bytes);
  }
  return c.workspace.data();
}

size_t workspace_size() { return ctx().workspace.bytes(); }

void after_launch(const char* what, const char* file, int line) {
  cudaError_t e = cudaGetLastError();
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  if (e == cudaSuccess && sync_debug() && cudaStreamIsCapturing(stream(), &capturing) == cudaSuccess &&
      capturing == cudaStreamCaptureStatusNone)  // a stream being captured cannot synchronise
    e = cudaStreamSynchronize(stream());
  if (e != cudaSuccess)
    throw CudaError(format_error("kernel launch", what, file, line, cudaGetErrorString(e)),
                    cuda_hint(e));
}

void clear_library_error(const char* call, const char* file, int line) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess && sync_debug())
    std::fprintf(stderr, "caf: note: %s succeeded but left CUDA error '%s' behind (%s:%d); cleared\n",
                 call, cudaGetErrorString(e), file, line);
}

}  // namespace caf::cuda
