// tests/emu/cuda_emu.h: just enough of CUDA's device language to compile caf's own kernel sources
// (kernels/cuda/*.cu) with g++ and run them on the CPU, for machines without a GPU.
//
// What it is: every CUDA thread of a block is a fiber (its own stack; switched by a few
// instructions on x86-64, by ucontext elsewhere) on one OS thread; the blocks of a grid run one
// after another. __syncthreads() and warp shuffles are barriers between the fibers, so code that
// synchronises runs as it does on a GPU, deterministically. __shared__ variables become statics
// (one block runs at a time, so a static is the block's shared memory; unlike a GPU's, it keeps
// its values from the previous block). "Device" memory is host memory (tests/emu/emu_runtime.cpp),
// filled with 0xFF bytes (NaN as floats) when allocated, and in a CAF_EMU build whenever caf's
// allocator hands a block out, so an output a kernel forgets to write shows.
//
// What it catches: wrong indexing and grid sizes, an output element not written, reductions that
// sum the wrong values, a __syncthreads() or shuffle not reached by every thread of its block or
// warp (a deadlock, or an error when thread 0 passed none), arithmetic that differs from the CPU
// reference (the emulated kernels are compiled without floating-point contraction, as nvcc
// -fmad=false), copies and fills through pointers that are not device allocations.
// What it cannot catch: data races (fibers switch only at barriers), out-of-bounds accesses by
// kernels (device memory is plain host memory; an AddressSanitizer build, CAF_EMU_ASAN=1
// tools/emu_check.sh, does catch them outside a graph's pool), timing, the GPU's own library functions (expf,
// logf, rsqrtf: the host's are used), the __CUDA_ARCH__ branches of shared headers (one host pass
// compiles everything), cuDNN's and cuBLAS's own behaviour (a CAF_EMU build emulates their
// interfaces over caf's CPU references; the kernel tests leave them out). So an emulated pass is
// not a GPU pass: docs/gpu-validation.md keeps the two apart.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

#include "cuda_runtime.h"  // tests/emu/include: the emulated runtime API

// ---- CUDA's built-in types ---------------------------------------------------------------------
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
using uint3 = dim3;
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };
struct alignas(8) uint2 { unsigned x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }

// ---- the emulator's interface -------------------------------------------------------------------
namespace caf_emu {

struct Coords {
  dim3 thread, block, block_dim, grid_dim;
};
extern Coords g_coords;  // the running fiber's

// Runs a kernel's body once per thread of every block of the grid (blocks in order). Thread 0 of
// each block runs first, as a fiber; if it meets no barrier, threads [1, n) run as plain calls
// through rest(typed, 1, n, block) (the body's own type: inlined), else every thread is a fiber.
using RunThreads = void (*)(const void* typed, unsigned from, unsigned to, dim3 block);
void launch(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body, RunThreads rest,
            const void* typed);
void syncthreads();
// The values of the lanes of the calling warp, exchanged: every lane of the warp must call it.
uint64_t warp_exchange(uint64_t mine, unsigned src_lane);
unsigned lane_id();

// The release policy every block uses from now on (0-5, see emu_runtime.cpp), or -1 (the default):
// a policy per block, rotating with the block's index and the launch count.
void force_policy(int policy);
constexpr int kPolicies = 6;

struct Stats {  // since the process started
  uint64_t launches = 0, blocks = 0, fiber_blocks = 0, threads = 0, barriers = 0, shuffles = 0;
};
Stats stats();

template <class T>
T shfl_down(T v, unsigned delta) {
  static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  const unsigned lane = lane_id();
  bits = warp_exchange(bits, lane + delta < 32 ? lane + delta : lane);
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}

}  // namespace caf_emu

#define threadIdx (::caf_emu::g_coords.thread)
#define blockIdx (::caf_emu::g_coords.block)
#define blockDim (::caf_emu::g_coords.block_dim)
#define gridDim (::caf_emu::g_coords.grid_dim)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __syncthreads() ::caf_emu::syncthreads()

template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta) {
  if (mask != 0xffffffffu) std::abort();  // caf's kernels shuffle full warps only
  return caf_emu::shfl_down(v, delta);
}
// Device intrinsics with exact host equivalents (round to nearest, no contraction).
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }  // the GPU's is approximate (2 ulp)
// Fibers switch only at barriers, so an atomic is a plain read-modify-write here.
template <class T>
T atomicAdd(T* p, T v) {
  T old = *p;
  *p = old + v;
  return old;
}
// CUDA's integer min and max overloads in the global namespace.
template <class T>
constexpr T min(T a, T b) { return b < a ? b : a; }
template <class T>
constexpr T max(T a, T b) { return a < b ? b : a; }

namespace caf_emu {
// Runs work now, or records it as a graph node while a stream is being captured (copies, fills,
// the emulated cuDNN and cuBLAS calls, launches).
void enqueue(std::function<void()> work);
bool capturing();
// For calls a GPU forbids inside a capture (cuDNN's algorithm search, creating library handles):
// true while capturing, and the capture then ends with cudaErrorStreamCaptureInvalidated.
bool refuse_while_capturing();

template <class Body>
void run_threads(const void* typed, unsigned from, unsigned to, dim3 d) {
  const Body& body = *static_cast<const Body*>(typed);
  for (unsigned t = from; t < to; ++t) {
    g_coords.thread = d.y == 1 && d.z == 1 ? dim3(t) : dim3(t % d.x, (t / d.x) % d.y, t / (d.x * d.y));
    body();
  }
}

// What tests/emu/translate.pl turns `kernel<<<grid, block, shared, stream>>>(args)` into: runs the
// grid now, or, while the stream is being captured, records it as a node of the graph.
template <class Body>
void launch_kernel(const Body& body, dim3 grid, dim3 block, size_t shared = 0, cudaStream_t = nullptr) {
  auto run = [body, grid, block, shared] {
    const std::function<void()> f = body;
    launch(grid, block, shared, f, &run_threads<Body>, &body);
  };
  if (capturing()) enqueue(run);
  else run();
}

// The launch's body: the kernel called with the arguments copied at the launch (each call copies
// them again into the kernel's by-value parameters, as every CUDA thread gets its own).
template <class F, class... A>
auto bind_kernel(F f, A... a) {
  return [f, a...] { f(a...); };
}
}  // namespace caf_emu
