// tests/emu/emu_runtime.cpp: the CPU emulator's scheduler (tests/emu/cuda_emu.h) and the CUDA
// runtime API it stands in for (tests/emu/include/cuda_runtime.h).
//
// Scheduling. A block's threads are fibers with their own stacks, on the calling thread. A fiber
// runs until it finishes or parks at a barrier (__syncthreads(), or the two warp barriers of a
// shuffle); the last to arrive queues the parked ones and goes on. When the queue is empty and some
// fibers are still parked, a thread never reaches a barrier the others wait at: that is reported
// as a deadlock (on a GPU it hangs or is undefined). Released fibers queue ahead of the others
// (depth first: one warp runs far ahead) or behind them (breadth first), in or against their
// order of arrival, or every participant (the last to arrive included) in descending or ascending
// thread order: a different one of these six policies in consecutive blocks and consecutive
// launches (force_policy() fixes one), and the fibers
// start in descending order: so a missing barrier between a write and a read of shared memory
// shows in one order or another (not every race can: fibers switch only at barriers, and a block
// meets one policy per launch). Blocks run one after another, in x, y, z order.
// Thread 0 of every block runs first, as a fiber: if it finishes without meeting a barrier, the
// other threads run as plain calls, one after another (most kernels: fast); if it stops at a
// barrier, they become fibers too. A thread that then meets a barrier thread 0 did not pass is
// divergent synchronisation, reported (undefined on a GPU).
//
// Fibers switch with a few instructions on x86-64 (callee-saved registers and the stack pointer,
// no signal mask) and through ucontext elsewhere.
#include <algorithm>
#include <cstdio>
#if defined(__SANITIZE_ADDRESS__) || defined(__clang__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#include <sys/mman.h>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include "tests/emu/cuda_emu.h"

// ---- fiber switching ----------------------------------------------------------------------------
#if defined(__x86_64__)
// caf_emu_switch(save, load): pushes the callee-saved registers, stores the stack pointer in
// *save, loads `load` as the stack pointer, pops the registers saved there and returns into that
// context.
extern "C" void caf_emu_switch(void** save, void* load);
asm(R"(
  .pushsection .text
  .globl caf_emu_switch
  .type caf_emu_switch, @function
caf_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size caf_emu_switch, .-caf_emu_switch
  .popsection
)");
#endif

namespace caf_emu {

Coords g_coords;

namespace {

// A kernel's frames as g++ compiles them (at -O2 a few hundred bytes; more at -O0), plus the
// std::function and lambda frames of the launch; small stacks stay in cache.
constexpr size_t kStackBytes = 32 * 1024;
constexpr size_t kGuardBytes = 4096;

struct Fiber {
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t ctx;
#endif
  bool done = false;
};

// A barrier's arrivals and the fibers parked at it until the last participant arrives.
struct Barrier {
  unsigned arrived = 0;
  std::vector<unsigned> waiting;
};

struct Block {
  unsigned threads = 0;
  dim3 dim;
  std::vector<Fiber> fibers;
#if defined(__x86_64__)
  void* scheduler_sp = nullptr;
#else
  ucontext_t scheduler;
#endif
  unsigned current = 0;
  bool direct = false;  // plain calls, no fibers: a barrier here is an error
  bool met_barrier = false;
  Barrier block_barrier;
  std::vector<Barrier> warp_barriers;
  std::deque<unsigned> runnable;  // fibers to resume, front first
  unsigned policy = 0;            // how released fibers queue (barrier())
  std::vector<uint64_t> lane_bits;        // two per thread (shuffles)
  std::vector<unsigned> shuffle_parity;   // which of its two slots a thread's next shuffle uses
  const std::function<void()>* body = nullptr;
  RunThreads rest = nullptr;
  const void* typed = nullptr;
};

Block* g_block = nullptr;
// Fiber stacks, each with an inaccessible guard page below it: an overflow faults at once instead
// of corrupting the heap.
struct Stack {
  char* base = nullptr;  // the guard page; the usable stack follows it
  Stack() {
    void* m = mmap(nullptr, kGuardBytes + kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error("caf emulator: cannot map a fiber stack");
    base = static_cast<char*>(m);
    mprotect(base, kGuardBytes, PROT_NONE);
  }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
  ~Stack() { munmap(base, kGuardBytes + kStackBytes); }
  char* get() const { return base + kGuardBytes; }
};
std::vector<std::unique_ptr<Stack>> g_stacks;
Stats g_stats;

dim3 thread_coords(unsigned tid, dim3 d) { return dim3(tid % d.x, (tid / d.x) % d.y, tid / (d.x * d.y)); }

bool on_fiber();

[[noreturn]] void fail(const std::string& what) {
  const std::string where = " (block " + std::to_string(g_coords.block.x) + "," + std::to_string(g_coords.block.y) +
                            "," + std::to_string(g_coords.block.z) + " thread " + std::to_string(g_coords.thread.x) +
                            "," + std::to_string(g_coords.thread.y) + "," + std::to_string(g_coords.thread.z) + ")";
  // On the main stack (a block run as plain calls) the launch reports it; on a fiber's stack an
  // exception cannot unwind to the caller: say it and stop.
  if (!on_fiber()) throw std::runtime_error("caf emulator: " + what + where);
  std::fprintf(stderr, "caf emulator: %s%s\n", what.c_str(), where.c_str());
  std::abort();
}

bool on_fiber() { return g_block && !g_block->direct; }

// AddressSanitizer (a CAF_EMU build with CAF_SANITIZE, tools/emu_check.sh CAF_EMU_ASAN=1) must be
// told of every stack switch: it tracks one stack per thread. Before a switch, the stack being
// entered; after it, on the new stack, where it came from (the scheduler's stack, remembered).
#if defined(__SANITIZE_ADDRESS__)
#define CAF_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CAF_EMU_ASAN 1
#endif
#endif
#if defined(CAF_EMU_ASAN)
void* g_scheduler_fake = nullptr;  // the scheduler's fake stack while a fiber runs
const void* g_scheduler_bottom = nullptr;
size_t g_scheduler_size = 0;
void* g_fiber_fake = nullptr;  // the running fiber's, while it is switched out (one at a time runs)
#endif
void entering_fiber(unsigned t) {
#if defined(CAF_EMU_ASAN)
  __sanitizer_start_switch_fiber(&g_scheduler_fake, g_stacks[t]->get(), kStackBytes);
#else
  (void)t;
#endif
}
void back_on_scheduler() {
#if defined(CAF_EMU_ASAN)
  __sanitizer_finish_switch_fiber(g_scheduler_fake, nullptr, nullptr);
#endif
}
void on_fiber_now(void* fake) {
#if defined(CAF_EMU_ASAN)
  __sanitizer_finish_switch_fiber(fake, &g_scheduler_bottom, &g_scheduler_size);
#else
  (void)fake;
#endif
}
// fake: where the fiber's fake stack is kept while it is switched out; null when it ends.
void leaving_fiber(void** fake) {
#if defined(CAF_EMU_ASAN)
  __sanitizer_start_switch_fiber(fake, g_scheduler_bottom, g_scheduler_size);
#else
  (void)fake;
#endif
}

void yield() {
  Block& b = *g_block;
  void* fake = nullptr;
  leaving_fiber(&fake);
#if defined(__x86_64__)
  caf_emu_switch(&b.fibers[b.current].sp, b.scheduler_sp);
#else
  swapcontext(&b.fibers[b.current].ctx, &b.scheduler);
#endif
  on_fiber_now(fake);
}

void fiber_main() {
  on_fiber_now(nullptr);
  Block& b = *g_block;
  (*b.body)();
  b.fibers[b.current].done = true;
  leaving_fiber(nullptr);
#if defined(__x86_64__)
  caf_emu_switch(&b.fibers[b.current].sp, b.scheduler_sp);  // never resumed
  std::abort();
#endif
  // (ucontext: returning resumes uc_link, the scheduler)
}

void start_fiber(Block& b, unsigned t) {
  Fiber& f = b.fibers[t];
  f.done = false;
#if defined(CAF_EMU_ASAN)
  // The last fiber on this stack ended by a switch, not a return: its frames' redzones are still
  // poisoned.
  __asan_unpoison_memory_region(g_stacks[t]->get(), kStackBytes);
#endif
#if defined(__x86_64__)
  // A stack that caf_emu_switch "returns" into fiber_main from: six zero registers, then
  // fiber_main's address, then an empty slot so that fiber_main starts with the stack alignment
  // of a called function (rsp = 8 mod 16).
  const uintptr_t top = (reinterpret_cast<uintptr_t>(g_stacks[t]->get()) + kStackBytes) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;
  *--sp = reinterpret_cast<void*>(&fiber_main);
  for (int i = 0; i < 6; ++i) *--sp = nullptr;
  f.sp = sp;
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = g_stacks[t]->get();
  f.ctx.uc_stack.ss_size = kStackBytes;
  f.ctx.uc_link = &b.scheduler;
  makecontext(&f.ctx, fiber_main, 0);
#endif
}

void resume(Block& b, unsigned t) {
  entering_fiber(t);
#if defined(__x86_64__)
  caf_emu_switch(&b.scheduler_sp, b.fibers[t].sp);
#else
  swapcontext(&b.scheduler, &b.fibers[t].ctx);
#endif
  back_on_scheduler();
}

// A barrier over `count` participants: the others park until the last arrives. Policies 0-3: the
// last to arrive queues the parked ones and goes on. Policies 4 and 5: it parks too, and all are
// queued in thread order, descending (4: the highest warp runs on first, so a warp past a
// barrier's second use meets warp 0 still reading what the first use left) or ascending (5).
void barrier(Barrier& bar, unsigned count) {
  Block& b = *g_block;
  if (b.direct)
    fail("a barrier that thread 0 of this block did not meet (divergent __syncthreads() or shuffle)");
  b.met_barrier = true;
  if (++bar.arrived == count && b.policy >= 4) {
    bar.arrived = 0;
    bar.waiting.push_back(b.current);
    if (b.policy == 4) std::sort(bar.waiting.begin(), bar.waiting.end(), std::greater<unsigned>());
    else std::sort(bar.waiting.begin(), bar.waiting.end());
    b.runnable.insert(b.runnable.begin(), bar.waiting.begin(), bar.waiting.end());
    bar.waiting.clear();
    yield();
    return;
  }
  if (bar.arrived == count) {
    bar.arrived = 0;
    // Ahead of everything queued (depth first: one warp runs far ahead of the others, as warps
    // may on a GPU) or behind it (breadth first), in or against arrival order: the block's policy.
    const bool behind = b.policy & 1, in_arrival_order = b.policy & 2;
    const auto at = behind ? b.runnable.end() : b.runnable.begin();
    if (in_arrival_order) b.runnable.insert(at, bar.waiting.begin(), bar.waiting.end());
    else b.runnable.insert(at, bar.waiting.rbegin(), bar.waiting.rend());
    bar.waiting.clear();
    return;
  }
  bar.waiting.push_back(b.current);
  yield();
}

int g_forced_policy = -1;

void run_block(Block& b) {
  b.policy = 0;  // while thread 0 runs alone (below), the last to arrive goes on
  b.block_barrier = Barrier();
  for (Barrier& w : b.warp_barriers) w = Barrier();
  std::fill(b.shuffle_parity.begin(), b.shuffle_parity.end(), 0u);
  b.direct = false;
  b.met_barrier = false;
  // Thread 0 alone first.
  start_fiber(b, 0);
  b.current = 0;
  g_coords.thread = thread_coords(0, b.dim);
  resume(b, 0);
  if (!b.met_barrier) {
    b.direct = true;
    b.rest(b.typed, 1, b.threads, b.dim);
    return;
  }
  // Thread 0 is parked at a barrier: every thread is a fiber, resumed as the queue says.
  while (g_stacks.size() < b.threads) g_stacks.emplace_back(new Stack());
  b.runnable.clear();
  // The policy changes from block to block, so a grid of six blocks or more meets all six, and
  // from launch to launch (the launch count is added), so a block that sums twice in one launch
  // (block 0 of a grid-stride loop) meets another policy when the kernel runs again.
  b.policy = g_forced_policy >= 0
                 ? unsigned(g_forced_policy)
                 : unsigned(((g_coords.block.z * g_coords.grid_dim.y + g_coords.block.y) * g_coords.grid_dim.x +
                             g_coords.block.x + g_stats.launches) % kPolicies);
  for (unsigned t = b.threads - 1; t >= 1; --t) {  // descending first: high threads run ahead of 0
    start_fiber(b, t);
    b.runnable.push_back(t);
  }
  unsigned done = b.fibers[0].done ? 1 : 0;
  while (!b.runnable.empty()) {
    const unsigned t = b.runnable.front();
    b.runnable.pop_front();
    b.current = t;
    g_coords.thread = thread_coords(t, b.dim);
    resume(b, t);
    if (b.fibers[t].done) ++done;
  }
  if (done < b.threads)
    throw std::runtime_error("caf emulator: deadlock in block (" + std::to_string(g_coords.block.x) + ", " +
                             std::to_string(g_coords.block.y) + ", " + std::to_string(g_coords.block.z) + "): " +
                             std::to_string(b.threads - done) + " of " + std::to_string(b.threads) +
                             " threads wait at a barrier (__syncthreads() or a shuffle) that the other threads "
                             "do not reach (divergent code, or threads that returned early)");
}

// ---- capture into graphs ----------------------------------------------------------------------
struct Graph {
  std::vector<std::function<void()>> nodes;
};
bool g_capturing = false;
bool g_capture_invalid = false;
cudaStreamCaptureMode g_capture_mode = cudaStreamCaptureModeGlobal;
Graph* g_capture = nullptr;
cudaError_t g_last_error = cudaSuccess;

}  // namespace

void launch(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body, RunThreads rest,
            const void* typed) {
  const unsigned threads = block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535)
    throw std::runtime_error("caf emulator: invalid launch: grid (" + std::to_string(grid.x) + ", " +
                             std::to_string(grid.y) + ", " + std::to_string(grid.z) + "), block (" +
                             std::to_string(block.x) + ", " + std::to_string(block.y) + ", " +
                             std::to_string(block.z) + ")");
  if (shared_bytes != 0) throw std::runtime_error("caf emulator: dynamic shared memory is not emulated");
  if (g_block) throw std::runtime_error("caf emulator: a launch from inside a kernel");
  if (g_stacks.empty()) g_stacks.emplace_back(new Stack());
  Block b;
  b.threads = threads;
  b.dim = block;
  b.fibers.resize(threads);
  b.warp_barriers.assign((threads + 31) / 32, Barrier());
  b.lane_bits.assign(2 * size_t(threads), 0);
  b.shuffle_parity.assign(threads, 0);
  b.body = &body;
  b.rest = rest;
  b.typed = typed;
  g_block = &b;
  g_coords.block_dim = block;
  g_coords.grid_dim = grid;
  ++g_stats.launches;
  try {
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          g_coords.block = dim3(x, y, z);
          run_block(b);
          ++g_stats.blocks;
          if (!b.direct) ++g_stats.fiber_blocks;
          g_stats.threads += threads;
        }
  } catch (...) {
    g_block = nullptr;
    throw;
  }
  g_block = nullptr;
}

void enqueue(std::function<void()> work) {
  if (g_capturing) g_capture->nodes.push_back(std::move(work));
  else work();
}

bool capturing() { return g_capturing; }

bool refuse_while_capturing() {
  if (!g_capturing) return false;
  g_capture_invalid = true;
  return true;
}

void syncthreads() {
  if (!g_block) fail("__syncthreads() outside a kernel");
  ++g_stats.barriers;
  barrier(g_block->block_barrier, g_block->threads);
}

unsigned lane_id() { return g_block->current % 32; }

uint64_t warp_exchange(uint64_t mine, unsigned src_lane) {
  Block& b = *g_block;
  const unsigned w = b.current / 32;
  if (32 * (w + 1) > b.threads) fail("a full-warp shuffle in a partial warp");
  ++g_stats.shuffles;
  // Two slots per lane, used by turns: one barrier per shuffle suffices, since a lane can write
  // its next value only after every lane has passed the barrier that follows this one's reads.
  const unsigned slot = b.shuffle_parity[b.current];
  b.shuffle_parity[b.current] ^= 1u;
  b.lane_bits[2 * b.current + slot] = mine;
  barrier(b.warp_barriers[w], 32);  // every lane has written
  return b.lane_bits[2 * (32 * w + src_lane) + slot];
}

void force_policy(int policy) {
  if (policy >= kPolicies) fail("force_policy: no policy " + std::to_string(policy));
  g_forced_policy = policy;
}

Stats stats() { return g_stats; }

}  // namespace caf_emu

// ---- the CUDA runtime API (tests/emu/include/cuda_runtime.h) -----------------------------------
namespace {
using caf_emu::g_capture;
using caf_emu::g_capture_invalid;
using caf_emu::g_capture_mode;
using caf_emu::g_capturing;
using caf_emu::g_last_error;

cudaError_t fail_with(cudaError_t e) {
  g_last_error = e;
  return e;
}
struct EventImpl {
  std::chrono::steady_clock::time_point t;
};
constexpr size_t kDeviceBytes = size_t(16) << 30;  // what cudaMemGetInfo reports

// Live "device" allocations, so that a copy or fill through a pointer that is not device memory
// fails as on a GPU (cudaErrorInvalidValue) instead of touching host memory.
std::mutex g_allocs_mutex;
std::map<uintptr_t, size_t> g_allocs;
bool on_device(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(g_allocs_mutex);
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + it->second;
}
bool copy_ok(const void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  return (!dst_dev || on_device(dst, bytes)) && (!src_dev || on_device(src, bytes));
}
}  // namespace

struct CUstream_st {};
struct CUevent_st : EventImpl {};
struct CUgraph_st : caf_emu::Graph {};
struct CUgraphExec_st : caf_emu::Graph {};

cudaError_t cudaGetLastError() {
  const cudaError_t e = g_last_error;
  g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return g_last_error; }
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
  }
  return "unknown error";
}
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int) {
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "caf CPU emulator (not a GPU)");
  prop->totalGlobalMem = kDeviceBytes;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr, int) {
  *value = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaStreamSynchronize(nullptr); }
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *free_bytes = kDeviceBytes;
  *total_bytes = kDeviceBytes;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  // As on a GPU: in global capture mode an allocation (which may synchronise) invalidates the
  // capture; caf captures in relaxed mode, where it is allowed.
  if (g_capturing && g_capture_mode == cudaStreamCaptureModeGlobal) {
    g_capture_invalid = true;
    return fail_with(cudaErrorStreamCaptureUnsupported);
  }
  // Host memory, 256-byte aligned as cudaMalloc's, filled with 0xFF bytes (NaN as float or bf16)
  // so that an element a kernel should write and does not shows.
  const size_t rounded = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
  *p = std::aligned_alloc(256, rounded);
  if (!*p) return fail_with(cudaErrorMemoryAllocation);
  std::memset(*p, 0xFF, rounded);
  std::lock_guard<std::mutex> lock(g_allocs_mutex);
  g_allocs[reinterpret_cast<uintptr_t>(*p)] = bytes;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(g_allocs_mutex);
    if (g_allocs.erase(reinterpret_cast<uintptr_t>(p)) == 0) return fail_with(cudaErrorInvalidValue);
  }
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (!copy_ok(dst, src, bytes, kind)) return fail_with(cudaErrorInvalidValue);
  if (g_capturing) {
    g_capture_invalid = true;
    return fail_with(cudaErrorStreamCaptureUnsupported);
  }
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  if (!copy_ok(dst, src, bytes, kind)) return fail_with(cudaErrorInvalidValue);
  caf_emu::enqueue([=] { std::memcpy(dst, src, bytes); });
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  if (!on_device(p, bytes)) return fail_with(cudaErrorInvalidValue);
  caf_emu::enqueue([=] { std::memset(p, value, bytes); });
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = new CUstream_st();
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  if (g_capturing) {  // as on a GPU: synchronising a capturing stream invalidates the capture
    g_capture_invalid = true;
    return fail_with(cudaErrorStreamCaptureUnsupported);
  }
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t, cudaStreamCaptureStatus* status) {
  *status = g_capturing ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode mode) {
  if (g_capturing) return fail_with(cudaErrorStreamCaptureUnsupported);
  g_capturing = true;
  g_capture_mode = mode;
  g_capture_invalid = false;
  g_capture = new CUgraph_st();
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t* graph) {
  if (!g_capturing) return fail_with(cudaErrorInvalidValue);
  g_capturing = false;
  auto* g = static_cast<CUgraph_st*>(g_capture);
  g_capture = nullptr;
  if (g_capture_invalid) {
    delete g;
    *graph = nullptr;
    return fail_with(cudaErrorStreamCaptureInvalidated);
  }
  *graph = g;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  auto* e = new CUgraphExec_st();
  e->nodes = graph->nodes;
  *exec = e;
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t) {
  if (g_capturing) return fail_with(cudaErrorStreamCaptureUnsupported);
  for (const auto& node : exec->nodes) node();
  return cudaSuccess;
}
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t*, size_t* count) {
  *count = graph->nodes.size();
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  // Recorded into a capture, an event only orders work inside the graph; its time is not taken
  // at replay.
  if (!g_capturing) e->t = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  *ms = std::chrono::duration<float, std::milli>(end->t - start->t).count();
  return cudaSuccess;
}
