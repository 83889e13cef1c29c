// kernels/common.h: the few types and macros every kernel shares, on the CPU and on the GPU.
//
// Key decision: per-element math is written once as CAF_HD code (host+device under nvcc, plain
// inline under g++), so the CPU reference and the CUDA kernel run the very same arithmetic.
#pragma once

#include <cstdint>
#include <type_traits>

#if defined(__CUDACC__)
#define CAF_HD __host__ __device__ __forceinline__
#else
#define CAF_HD inline
#endif

namespace caf {

#if defined(CAF_WITH_CUDA)
inline constexpr bool kCudaBuild = true;
#else
inline constexpr bool kCudaBuild = false;
#endif

enum class Device : uint8_t { cpu, cuda };

const char* device_name(Device d);

// NCHW extents of a 4-D activation. Dimension letters are fixed across kernels/:
// N batch, C channels, H rows, W columns.
struct Shape4 {
  int64_t n = 1, c = 1, h = 1, w = 1;
  CAF_HD int64_t numel() const { return n * c * h * w; }
  CAF_HD int64_t hw() const { return h * w; }
};

// Accumulator type for sums in CPU references: double for float data, so the reference is the
// more accurate side of every CPU/GPU comparison.
template <class T>
using acc_t = std::conditional_t<std::is_same_v<T, float>, double, T>;

}  // namespace caf
