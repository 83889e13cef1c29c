// tests/emu/shadow/kernels/cuda/check.h: stands in for kernels/cuda/check.h when caf's kernel
// sources are compiled for the CPU emulator (tests/emu/cuda_emu.h): no CUDA, cuDNN or cuBLAS
// headers, only what the emulated .cu files use. The build puts this folder ahead of the
// repository root on the include path.
#pragma once

#include <string>

#include "kernels/error.h"
#include "tests/emu/cuda_emu.h"

namespace caf::cuda {
cudaStream_t stream();
void after_launch(const char* what, const char* file, int line);
}  // namespace caf::cuda

#define CAF_CHECK_CUDA(call)                                                                \
  do {                                                                                      \
    cudaError_t caf_err_ = (call);                                                          \
    if (caf_err_ != cudaSuccess)                                                            \
      throw ::caf::CudaError(::caf::format_error("CUDA", #call, __FILE__, __LINE__,         \
                                                 cudaGetErrorString(caf_err_)), "emulated"); \
  } while (0)
#define CAF_CHECK_LAUNCH(what) ::caf::cuda::after_launch(what, __FILE__, __LINE__)
