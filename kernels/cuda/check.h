// kernels/cuda/check.h: CUDA/cuDNN/cuBLAS check macros and the per-process CUDA context.
//
// Only CUDA-build sources include this header (nn/ never does). Every check throws the typed
// exception of its library with the call text, file:line and a hint; the CAF_WARN_CUDA variant
// only prints, for destructors. CAF_CHECK_LAUNCH follows every kernel launch.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdio>
#include <string>

#include "kernels/error.h"

namespace caf::cuda {

const char* cublas_status_name(cublasStatus_t s);
std::string cuda_hint(cudaError_t e);

// The one stream every caf kernel, cuDNN and cuBLAS call runs on (created on first use).
cudaStream_t stream();
cudnnHandle_t cudnn();
cublasHandle_t cublas();

// One shared scratch buffer for cuDNN, grown (never shrunk) to the largest request.
void* workspace(size_t bytes);
size_t workspace_size();

void after_launch(const char* what, const char* file, int line);
void clear_library_error(const char* call, const char* file, int line);

}  // namespace caf::cuda

#define CAF_CHECK_CUDA(call)                                                                \
  do {                                                                                      \
    cudaError_t caf_err_ = (call);                                                          \
    if (caf_err_ != cudaSuccess) {                                                          \
      cudaGetLastError(); /* reported here: do not let the next launch check see it again */ \
      throw ::caf::CudaError(::caf::format_error("CUDA", #call, __FILE__, __LINE__,         \
                                                 cudaGetErrorString(caf_err_)),             \
                             ::caf::cuda::cuda_hint(caf_err_));                             \
    }                                                                                       \
  } while (0)

// On success the CUDA runtime's last-error slot is cleared: cuDNN tries algorithms internally
// (cudnnFind*, heuristics) whose failed launches it handles itself but leaves recorded there, and
// the next CAF_CHECK_LAUNCH would blame an innocent kernel. Our own launches are checked at once,
// so nothing of ours is lost; CAF_SYNC_DEBUG=1 names the cuDNN call that left the error.
#define CAF_CHECK_CUDNN(call)                                                               \
  do {                                                                                      \
    cudnnStatus_t caf_st_ = (call);                                                         \
    if (caf_st_ != CUDNN_STATUS_SUCCESS)                                                    \
      throw ::caf::CudnnError(::caf::format_error("cuDNN", #call, __FILE__, __LINE__,       \
                                                  cudnnGetErrorString(caf_st_)),            \
                              "check tensor shapes and that the cuDNN library matches " \
                              "the one caf was built against");                         \
    ::caf::cuda::clear_library_error(#call, __FILE__, __LINE__);                            \
  } while (0)

#define CAF_CHECK_CUBLAS(call)                                                              \
  do {                                                                                      \
    cublasStatus_t caf_st_ = (call);                                                        \
    if (caf_st_ != CUBLAS_STATUS_SUCCESS)                                                   \
      throw ::caf::CublasError(::caf::format_error("cuBLAS", #call, __FILE__, __LINE__,     \
                                                   ::caf::cuda::cublas_status_name(caf_st_)), \
                               "check matrix shapes and leading dimensions");             \
    ::caf::cuda::clear_library_error(#call, __FILE__, __LINE__);                            \
  } while (0)

// Non-throwing variant for destructors and cleanup paths.
#define CAF_WARN_CUDA(call)                                                                 \
  do {                                                                                      \
    cudaError_t caf_err_ = (call);                                                          \
    if (caf_err_ != cudaSuccess)                                                            \
      std::fprintf(stderr, "caf: warning: %s failed at %s:%d: %s\n", #call, __FILE__,       \
                   __LINE__, cudaGetErrorString(caf_err_));                                 \
  } while (0)

// After every kernel launch: launch errors always; with CAF_SYNC_DEBUG=1 also execution errors.
#define CAF_CHECK_LAUNCH(what) ::caf::cuda::after_launch(what, __FILE__, __LINE__)
