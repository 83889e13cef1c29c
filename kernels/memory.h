// kernels/memory.h: allocators behind one interface, RAII buffers and copies between devices.
//
// Both allocators cache freed blocks by size class and hand them out again, so a training loop
// stops calling cudaMalloc (or paying the kernel's page faults for fresh host memory) after its
// first step. Everything runs on one stream (see
// kernels/cuda/check.h), which makes immediate reuse of a freed block safe without events.
// On out-of-memory it flushes its cache, retries once, then throws OutOfMemory with the size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/common.h"

namespace caf {

struct AllocStats {
  int64_t bytes_in_use = 0;     // handed out and not yet released (rounded sizes)
  int64_t peak_bytes = 0;       // high-water mark of bytes_in_use
  int64_t bytes_cached = 0;     // released blocks kept for reuse
  int64_t device_allocs = 0;    // calls to the underlying allocator (cudaMalloc / aligned_alloc)
  int64_t cache_hits = 0;       // requests served from the cache
};

// The memory census: which phases and ops hold the bytes in use at the peak (`caf bench step
// --memory`). While it is on, every allocation is filed under its CensusLabel (below: "R
// forward · fwd conv2d": the phase and op that asked for it, kernels/profile.h), and the allocator
// keeps the bytes per label at the highest bytes_in_use since the census began or reset_peak().
// Bytes are the size classes the allocator hands out, so the rows add up to the peak exactly. It
// also keeps, per phase, the highest bytes_in_use at that phase's allocations (reset likewise).
struct CensusRow {
  std::string label;
  int64_t bytes = 0;      // in use at the peak (size classes)
  int64_t requested = 0;  // what was asked for (bytes - requested: the size classes' rounding)
  int64_t blocks = 0;     // allocations they make up
};
// The highest bytes in use when a phase allocated: where in the step the memory rises and falls.
struct CensusPhase {
  std::string phase;  // the innermost profile::Scope, or "outside any phase"
  int64_t peak_bytes = 0;
};
struct MemoryCensus {
  bool on = false;
  int64_t peak_bytes = 0;           // the rows' sum
  std::vector<CensusRow> rows;      // largest first
  std::vector<CensusPhase> phases;  // in the order they first allocated
};
// What the census files this thread's allocations under: the innermost phase (profile::Scope) and
// op (profile::OpScope), which keep it (kernels/profile.h). text(): "R forward · fwd conv2d", or
// "outside any phase" when no Scope is open.
struct CensusLabel {
  const std::string* phase = nullptr;
  const char* op = nullptr;
  bool backward = false;
  std::string text() const;
};
CensusLabel& census_label();  // this thread's

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;  // never returns null: throws OutOfMemory
  virtual void release(void* ptr, size_t bytes) = 0;
  virtual AllocStats stats() const = 0;
  virtual void reset_peak() = 0;
  virtual void empty_cache() {}
  // Private pools, for CUDA graphs: between begin_private_pool() and end_private_pool() every
  // allocation comes from (and, when released, returns to) a new pool whose blocks never serve an
  // allocation outside it, because a replayed graph writes them. Returns the pool's id (> 0).
  virtual int begin_private_pool() = 0;
  virtual void end_private_pool() = 0;
  // The pool's graph is gone: its free blocks join the general cache, and blocks still in use go
  // there when released.
  virtual void release_private_pool(int id) = 0;
  // The memory census (above). Allocations made before it began are filed as "before the census".
  virtual void set_census(bool on) = 0;
  virtual MemoryCensus census() const = 0;
};

Allocator& allocator(Device d);

// The caching policy shared by the CPU and CUDA allocators: freed blocks are kept per size class
// and handed out again for requests of the same class; when the underlying allocation fails the
// cache is flushed and the allocation retried once, then OutOfMemory names the size asked for.
// Subclasses provide the raw allocation (returning null when out of memory) and release.
class CachingAllocator : public Allocator {
 public:
  void* allocate(size_t bytes) override;
  void release(void* ptr, size_t bytes) override;
  AllocStats stats() const override;
  void reset_peak() override;
  void empty_cache() override;  // the general cache only: private pools stay reserved
  int begin_private_pool() override;
  void end_private_pool() override;
  void release_private_pool(int id) override;
  void set_census(bool on) override;
  MemoryCensus census() const override;

 protected:
  virtual void* raw_allocate(size_t bytes) = 0;  // null when out of memory
  virtual void raw_release(void* ptr) = 0;
  virtual void before_flush() {}                 // e.g. wait for queued work that uses the blocks
  virtual bool can_flush() const { return true; }  // false while a CUDA graph is being captured
  virtual std::string out_of_memory_detail() const { return {}; }
  bool in_private_pool(void* ptr) const;  // a CUDA graph's block, kept for its replays

 private:
  void flush_locked();
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  AllocStats stats_;
  int active_pool_ = 0, next_pool_ = 1;                  // 0: the general cache
  std::map<void*, int> pool_of_;                         // blocks that belong to a private pool
  std::map<int, std::multimap<size_t, void*>> pool_free_;
  struct Census {
    struct Block {
      int label;
      int64_t size, requested;
    };
    bool on = false;
    std::map<std::string, int> ids;  // label -> index into the vectors below
    std::vector<std::string> labels;
    std::vector<int64_t> bytes, requested, blocks;               // in use now, per label
    std::vector<int64_t> peak_bytes, peak_requested, peak_blocks;  // at the peak
    int64_t peak = -1;                                           // bytes_in_use at the peak
    std::map<std::string, size_t> phase_ids;                     // phase -> index into phases
    std::vector<CensusPhase> phases;
    std::unordered_map<void*, Block> live;
    int id(const std::string& label);
    void snapshot(int64_t in_use);
  };
  Census census_;
};

// Size class a request is served from: 512-byte steps up to 1 MiB, then four classes per power of
// two (waste below 25%) up to 64 MiB, then 2 MiB steps (the driver's own granularity for large
// allocations: a coarser class is memory the GPU really gives up, e.g. 57 MiB of a 263 MiB slab of
// R's parameters at width 128 under the quarter-power classes, four such slabs). Blocks that large
// are the networks' slabs and activations, which recur at the same sizes every step, so the cache
// still serves them exactly. Exposed for tests.
size_t alloc_size_class(size_t bytes);

// Move-only owner of one allocation.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Device d, size_t bytes);
  ~Buffer();
  Buffer(Buffer&& o) noexcept;
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  Device device_ = Device::cpu;
};

// Byte copy between any two devices; synchronous with respect to the host.
void copy_bytes(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes);

// Host round trips, counted for the whole process on every device (so CPU tests check the same
// code paths a GPU would wait in): copy_bytes calls (each waits for caf's stream) and synchronize()
// calls. Benchmarks and tests read the difference around a training step.
struct HostSyncCounts {
  int64_t copies = 0, syncs = 0;
};
HostSyncCounts host_sync_counts();
namespace detail {
void note_synchronize();  // called by synchronize() (kernels/runtime.cpp)
}

// Fill n elements with a value (float and uint8 on both devices; double on the CPU).
template <class T>
void fill(Device d, T* ptr, int64_t n, T value);

}  // namespace caf
