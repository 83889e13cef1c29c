#include "kernels/memory.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <string>

#include "kernels/error.h"
#include "kernels/launch.h"

namespace caf {

size_t alloc_size_class(size_t bytes) {
  if (bytes == 0) bytes = 1;
  constexpr size_t kSmall = 1 << 20;
  if (bytes <= kSmall) return (bytes + 511) / 512 * 512;
  constexpr size_t kLarge = size_t(64) << 20, kLargeStep = size_t(2) << 20;
  if (bytes > kLarge) return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
  size_t p = 1;
  while (p * 2 <= bytes) p *= 2;  // largest power of two <= bytes
  size_t step = p / 4;
  return (bytes + step - 1) / step * step;
}

CensusLabel& census_label() {
  thread_local CensusLabel label;
  return label;
}

namespace {
const char* const kNoPhase = "outside any phase";  // the census's phase when no Scope is open
}  // namespace

std::string CensusLabel::text() const {
  std::string s = phase ? *phase : std::string(kNoPhase);
  if (op) s += std::string(backward ? " · bwd " : " · fwd ") + op;
  return s;
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t size = alloc_size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  void* p = nullptr;
  std::multimap<size_t, void*>& free_list = active_pool_ ? pool_free_[active_pool_] : free_;
  if (auto it = free_list.find(size); it != free_list.end()) {
    p = it->second;
    free_list.erase(it);
    stats_.bytes_cached -= size;
    stats_.cache_hits++;
  } else {
    p = raw_allocate(size);
    if (!p) {
      flush_locked();
      p = raw_allocate(size);
    }
    if (!p)
      throw OutOfMemory("out of memory: asked for " + std::to_string(bytes) + " bytes (" +
                            std::to_string(bytes >> 20) + " MiB); in use by caf " +
                            std::to_string(stats_.bytes_in_use >> 20) + " MiB" +
                            out_of_memory_detail(),
                        "reduce the batch size or image size");
    stats_.device_allocs++;
    if (active_pool_) pool_of_[p] = active_pool_;
  }
  stats_.bytes_in_use += size;
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.bytes_in_use);
  if (census_.on) {
    const CensusLabel& label = census_label();  // this thread's phase and op
    const int id = census_.id(label.text());
    census_.live[p] = {id, int64_t(size), int64_t(bytes)};
    census_.bytes[size_t(id)] += int64_t(size);
    census_.requested[size_t(id)] += int64_t(bytes);
    census_.blocks[size_t(id)] += 1;
    if (stats_.bytes_in_use > census_.peak) census_.snapshot(stats_.bytes_in_use);
    const std::string phase = label.phase ? *label.phase : std::string(kNoPhase);
    auto [it, added] = census_.phase_ids.emplace(phase, census_.phases.size());
    if (added) census_.phases.push_back({phase, 0});
    int64_t& phase_peak = census_.phases[it->second].peak_bytes;
    phase_peak = std::max(phase_peak, stats_.bytes_in_use);
  }
  return p;
}

void CachingAllocator::release(void* ptr, size_t bytes) {
  if (!ptr) return;
  const size_t size = alloc_size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  auto pool = pool_of_.find(ptr);
  (pool == pool_of_.end() ? free_ : pool_free_[pool->second]).emplace(size, ptr);
  stats_.bytes_in_use -= size;
  stats_.bytes_cached += size;
  if (census_.on) {
    // a block allocated before the census began is one of the "before the census" bytes
    auto it = census_.live.find(ptr);
    if (it == census_.live.end()) {
      census_.bytes[0] -= int64_t(size);
      census_.requested[0] -= int64_t(size);
    } else {
      const size_t id = size_t(it->second.label);
      census_.bytes[id] -= it->second.size;
      census_.requested[id] -= it->second.requested;
      census_.blocks[id] -= 1;
      census_.live.erase(it);
    }
  }
}

int CachingAllocator::Census::id(const std::string& label) {
  auto [it, added] = ids.emplace(label, int(labels.size()));
  if (added) {
    labels.push_back(label);
    bytes.push_back(0);
    requested.push_back(0);
    blocks.push_back(0);
  }
  return it->second;
}

void CachingAllocator::Census::snapshot(int64_t in_use) {
  peak = in_use;
  peak_bytes = bytes;
  peak_requested = requested;
  peak_blocks = blocks;
}

void CachingAllocator::set_census(bool on) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (on == census_.on) return;
  census_.ids.clear();
  census_.labels.clear();
  census_.bytes.clear();
  census_.requested.clear();
  census_.blocks.clear();
  census_.live.clear();
  census_.peak_bytes.clear();
  census_.peak_requested.clear();
  census_.peak_blocks.clear();
  census_.peak = -1;
  census_.phase_ids.clear();
  census_.phases.clear();
  if (on) {
    // label 0: what was in use when the census began (its blocks are not known one by one)
    census_.id("before the census");
    census_.bytes[0] = census_.requested[0] = stats_.bytes_in_use;  // what was asked for is not known
    census_.snapshot(stats_.bytes_in_use);
  }
  census_.on = on;
}

MemoryCensus CachingAllocator::census() const {
  std::lock_guard<std::mutex> lock(mutex_);
  MemoryCensus c;
  c.on = census_.on;
  if (!c.on) return c;
  for (size_t i = 0; i < census_.peak_bytes.size(); ++i)
    if (census_.peak_bytes[i] != 0) {
      c.rows.push_back({census_.labels[i], census_.peak_bytes[i], census_.peak_requested[i], census_.peak_blocks[i]});
      c.peak_bytes += census_.peak_bytes[i];
    }
  std::stable_sort(c.rows.begin(), c.rows.end(),
                   [](const CensusRow& a, const CensusRow& b) { return a.bytes > b.bytes; });
  c.phases = census_.phases;
  return c;
}

bool CachingAllocator::in_private_pool(void* ptr) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pool_of_.count(ptr) > 0;
}

AllocStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes = stats_.bytes_in_use;
  if (census_.on) {
    census_.snapshot(stats_.bytes_in_use);
    census_.phase_ids.clear();
    census_.phases.clear();
  }
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  flush_locked();
}

void CachingAllocator::flush_locked() {
  if (free_.empty() || !can_flush()) return;
  before_flush();
  for (auto& [size, p] : free_) {
    raw_release(p);
    stats_.bytes_cached -= int64_t(size);
  }
  free_.clear();
}

int CachingAllocator::begin_private_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  CAF_REQUIRE(active_pool_ == 0, "begin_private_pool: a private pool is already active");
  active_pool_ = next_pool_++;
  return active_pool_;
}

void CachingAllocator::end_private_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  active_pool_ = 0;
}

void CachingAllocator::release_private_pool(int id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = pool_free_.find(id); it != pool_free_.end()) {
    free_.insert(it->second.begin(), it->second.end());
    pool_free_.erase(it);
  }
  for (auto it = pool_of_.begin(); it != pool_of_.end();)
    it = it->second == id ? pool_of_.erase(it) : std::next(it);
}

namespace {

// Host memory, 64-byte aligned so the GEMM's vector loads never split cache lines.
class CpuAllocator final : public CachingAllocator {
  void* raw_allocate(size_t bytes) override { return std::aligned_alloc(64, (bytes + 63) / 64 * 64); }
  void raw_release(void* ptr) override { std::free(ptr); }
};

}  // namespace

#if defined(CAF_WITH_CUDA)
Allocator& cuda_allocator();  // kernels/cuda/allocator.cpp
#endif

Allocator& allocator(Device d) {
  static CpuAllocator* cpu = new CpuAllocator();  // leaked: outlives static tensors
  if (d == Device::cpu) return *cpu;
#if defined(CAF_WITH_CUDA)
  return cuda_allocator();
#else
  throw Error("CUDA memory requested in a build without CUDA",
              "configure with -DCAF_CUDA=ON, or use the CPU");
#endif
}

Buffer::Buffer(Device d, size_t bytes) : bytes_(bytes), device_(d) {
  ptr_ = allocator(d).allocate(bytes);
}

Buffer::~Buffer() {
  if (ptr_) allocator(device_).release(ptr_, bytes_);
}

Buffer::Buffer(Buffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_), device_(o.device_) {
  o.ptr_ = nullptr;
  o.bytes_ = 0;
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) allocator(device_).release(ptr_, bytes_);
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    device_ = o.device_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

#if defined(CAF_WITH_CUDA)
void cuda_copy_bytes(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes);
template <class T>
void cuda_fill(T* ptr, int64_t n, T value);
#endif

namespace {
std::atomic<int64_t> g_copies{0}, g_syncs{0};
}  // namespace

HostSyncCounts host_sync_counts() { return {g_copies.load(), g_syncs.load()}; }
void detail::note_synchronize() { ++g_syncs; }

void copy_bytes(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes) {
  if (bytes == 0) return;
  ++g_copies;
  if (dst_dev == Device::cpu && src_dev == Device::cpu) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if defined(CAF_WITH_CUDA)
  cuda_copy_bytes(dst_dev, dst, src_dev, src, bytes);
#else
  throw Error("device copy in a build without CUDA");
#endif
}

template <class T>
void fill(Device d, T* ptr, int64_t n, T value) {
  if (d == Device::cuda) {
#if defined(CAF_WITH_CUDA)
    if constexpr (!std::is_same_v<T, double>) {
      cuda_fill(ptr, n, value);
      return;
    }
#endif
    throw Error("fill: this element type has no CUDA version");
  }
  cpu_for_each(n, [=](int64_t i) { ptr[i] = value; });
}

template void fill<float>(Device, float*, int64_t, float);
template void fill<double>(Device, double*, int64_t, double);
template void fill<uint8_t>(Device, uint8_t*, int64_t, uint8_t);

}  // namespace caf
