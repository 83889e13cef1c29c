// tests/emu/emu_runtime.cpp: the CPU emulator's scheduler (tests/emu/cuda_emu.h) and the few
// runtime pieces caf's kernel sources call: the stream, the launch check, "device" memory.
//
// A block's threads are ucontext fibers with their own stacks, run round-robin by a scheduler on
// the calling thread. A fiber runs until it finishes or waits at a barrier (__syncthreads(), or
// the two warp barriers of a shuffle); a round in which no fiber finished and no barrier opened
// means some thread never reaches a barrier the others wait at: that is reported as a deadlock
// (on a GPU it hangs or is undefined). Blocks run one after another, in x, y, z order.
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/memory.h"
#include "tests/emu/cuda_emu.h"

namespace caf_emu {

Coords g_coords;

namespace {

constexpr size_t kStackBytes = 64 * 1024;  // caf's kernels keep no frames (ptxas: 0 bytes)

struct Fiber {
  ucontext_t ctx;
  bool done = false;
};

struct Block {
  unsigned threads = 0;
  dim3 dim;
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  unsigned current = 0;
  bool progress = false;
  unsigned barrier_count = 0;
  uint64_t barrier_generation = 0;
  std::vector<unsigned> warp_count;
  std::vector<uint64_t> warp_generation;
  std::vector<uint64_t> lane_bits;
  const std::function<void()>* body = nullptr;
};

Block* g_block = nullptr;
std::vector<std::unique_ptr<char[]>> g_stacks;
Stats g_stats;

dim3 thread_coords(unsigned tid, dim3 d) { return dim3(tid % d.x, (tid / d.x) % d.y, tid / (d.x * d.y)); }

[[noreturn]] void fail(const std::string& what) {
  // Called on a fiber's stack, where an exception cannot unwind to the test: say it and stop.
  std::fprintf(stderr, "caf emulator: %s (block %u,%u,%u thread %u,%u,%u)\n", what.c_str(), g_coords.block.x,
               g_coords.block.y, g_coords.block.z, g_coords.thread.x, g_coords.thread.y, g_coords.thread.z);
  std::abort();
}

void yield() {
  Block& b = *g_block;
  swapcontext(&b.fibers[b.current].ctx, &b.scheduler);
}

void fiber_entry() {
  Block& b = *g_block;
  (*b.body)();
  b.fibers[b.current].done = true;
  b.progress = true;
  // returning resumes uc_link: the scheduler
}

// A barrier over `count` participants: the last to arrive opens it, the others wait for that.
void barrier(unsigned& arrived, uint64_t& generation, unsigned count) {
  const uint64_t mine = generation;
  if (++arrived == count) {
    arrived = 0;
    ++generation;
    g_block->progress = true;
    return;
  }
  while (generation == mine) yield();
}

void run_block(Block& b) {
  for (unsigned t = 0; t < b.threads; ++t) {
    Fiber& f = b.fibers[t];
    f.done = false;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = g_stacks[t].get();
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = &b.scheduler;
    makecontext(&f.ctx, fiber_entry, 0);
  }
  b.barrier_count = 0;
  std::fill(b.warp_count.begin(), b.warp_count.end(), 0u);
  unsigned remaining = b.threads;
  // Rounds alternate between ascending and descending thread order, so that between two barriers
  // high threads sometimes run before low ones: a missing barrier between a write and a read of
  // shared memory then shows in one order or the other (not every race can: fibers switch only
  // at barriers).
  for (bool descending = false; remaining > 0; descending = !descending) {
    b.progress = false;
    for (unsigned i = 0; i < b.threads; ++i) {
      const unsigned t = descending ? b.threads - 1 - i : i;
      if (b.fibers[t].done) continue;
      b.current = t;
      g_coords.thread = thread_coords(t, b.dim);
      swapcontext(&b.scheduler, &b.fibers[t].ctx);
      if (b.fibers[t].done) --remaining;
    }
    if (remaining > 0 && !b.progress)
      throw std::runtime_error("caf emulator: deadlock in block (" + std::to_string(g_coords.block.x) + ", " +
                               std::to_string(g_coords.block.y) + ", " + std::to_string(g_coords.block.z) + "): " +
                               std::to_string(remaining) + " of " + std::to_string(b.threads) +
                               " threads wait at a barrier (__syncthreads() or a shuffle) that the others " +
                               (b.barrier_count ? "never reach" : "reach elsewhere or have left"));
  }
}

}  // namespace

void launch(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body) {
  const unsigned threads = block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535)
    throw std::runtime_error("caf emulator: invalid launch: grid (" + std::to_string(grid.x) + ", " +
                             std::to_string(grid.y) + ", " + std::to_string(grid.z) + "), block (" +
                             std::to_string(block.x) + ", " + std::to_string(block.y) + ", " +
                             std::to_string(block.z) + ")");
  if (shared_bytes != 0) throw std::runtime_error("caf emulator: dynamic shared memory is not emulated");
  while (g_stacks.size() < threads) g_stacks.emplace_back(new char[kStackBytes]);
  Block b;
  b.threads = threads;
  b.dim = block;
  b.fibers.resize(threads);
  b.warp_count.assign((threads + 31) / 32, 0);
  b.warp_generation.assign((threads + 31) / 32, 0);
  b.lane_bits.assign(threads, 0);
  b.body = &body;
  g_block = &b;
  g_coords.block_dim = block;
  g_coords.grid_dim = grid;
  ++g_stats.launches;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        g_coords.block = dim3(x, y, z);
        run_block(b);
        ++g_stats.blocks;
        g_stats.threads += threads;
      }
  g_block = nullptr;
}

void syncthreads() {
  if (!g_block) fail("__syncthreads() outside a kernel");
  ++g_stats.barriers;
  barrier(g_block->barrier_count, g_block->barrier_generation, g_block->threads);
}

unsigned lane_id() { return g_block->current % 32; }

uint64_t warp_exchange(uint64_t mine, unsigned src_lane) {
  Block& b = *g_block;
  const unsigned w = b.current / 32;
  if (32 * (w + 1) > b.threads) fail("a full-warp shuffle in a partial warp");
  ++g_stats.shuffles;
  b.lane_bits[b.current] = mine;
  barrier(b.warp_count[w], b.warp_generation[w], 32);  // every lane has written
  const uint64_t r = b.lane_bits[32 * w + src_lane];
  barrier(b.warp_count[w], b.warp_generation[w], 32);  // every lane has read
  return r;
}

Stats stats() { return g_stats; }

}  // namespace caf_emu

// ---- what caf's kernel sources and kernels/memory.cpp ask of the CUDA side ---------------------
namespace caf {

namespace cuda {
cudaStream_t stream() { return nullptr; }
void after_launch(const char*, const char*, int) {}
}  // namespace cuda

namespace {
// "Device" memory: host memory, 256-byte aligned as cudaMalloc's, and filled with 0xFF bytes
// (NaN as float or bf16) when first handed out, so an element a kernel should write and does not
// shows as NaN.
class EmulatedDeviceAllocator final : public CachingAllocator {
  void* raw_allocate(size_t bytes) override {
    const size_t rounded = (bytes + 255) / 256 * 256;
    void* p = std::aligned_alloc(256, rounded);
    if (p) std::memset(p, 0xFF, rounded);
    return p;
  }
  void raw_release(void* ptr) override { std::free(ptr); }
};
}  // namespace

Allocator& cuda_allocator() {
  static EmulatedDeviceAllocator* a = new EmulatedDeviceAllocator();
  return *a;
}

void cuda_copy_bytes(Device, void* dst, Device, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }

}  // namespace caf
