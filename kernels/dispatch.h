// kernels/dispatch.h: the one place where an op picks its CPU or CUDA implementation.
//
// Every op header declares cpu::name<T> (templated so gradient checks can run in double) and
// cuda::name (float only), then defines caf::name<T> with CAF_DISPATCH. In a CPU-only build the
// CUDA branch is discarded at compile time, so cuda::name is never referenced there.
#pragma once

#include <type_traits>

#include "kernels/common.h"

namespace caf::detail {
[[noreturn]] void throw_no_cuda(const char* op, bool double_precision);
}  // namespace caf::detail

#define CAF_DISPATCH(T, dev, name, ...)                                      \
  do {                                                                       \
    if ((dev) == ::caf::Device::cuda) {                                      \
      if constexpr (::caf::kCudaBuild && std::is_same_v<T, float>) {         \
        ::caf::cuda::name(__VA_ARGS__);                                      \
        return;                                                              \
      } else {                                                               \
        ::caf::detail::throw_no_cuda(#name, std::is_same_v<T, double>);      \
      }                                                                      \
    }                                                                        \
    ::caf::cpu::name<T>(__VA_ARGS__);                                        \
  } while (0)

// For ops with one float-only signature shared by cpu:: and cuda:: (no template parameter).
#if defined(CAF_WITH_CUDA)
#define CAF_DISPATCH_PLAIN(dev, name, ...)     \
  do {                                         \
    if ((dev) == ::caf::Device::cuda) {        \
      ::caf::cuda::name(__VA_ARGS__);          \
      return;                                  \
    }                                          \
    ::caf::cpu::name(__VA_ARGS__);             \
  } while (0)
#else
#define CAF_DISPATCH_PLAIN(dev, name, ...)                                  \
  do {                                                                      \
    if ((dev) == ::caf::Device::cuda) ::caf::detail::throw_no_cuda(#name, false); \
    ::caf::cpu::name(__VA_ARGS__);                                          \
  } while (0)
#endif
