// kernels/cuda/allocator.cpp: the caching device allocator and host<->device copies.
#include <map>
#include <mutex>
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/memory.h"

namespace caf {

namespace {

class CudaCachingAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    size_t size = alloc_size_class(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    void* p = nullptr;
    if (it != free_.end()) {
      p = it->second;
      free_.erase(it);
      stats_.bytes_cached -= size;
      stats_.cache_hits++;
    } else {
      p = malloc_or_flush(size, bytes);
    }
    stats_.bytes_in_use += size;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.bytes_in_use);
    return p;
  }

  void release(void* ptr, size_t bytes) override {
    if (!ptr) return;
    size_t size = alloc_size_class(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    free_.emplace(size, ptr);
    stats_.bytes_in_use -= size;
    stats_.bytes_cached += size;
  }

  AllocStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_bytes = stats_.bytes_in_use;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mutex_);
    flush_locked();
  }

 private:
  void flush_locked() {
    if (free_.empty()) return;
    CAF_WARN_CUDA(cudaStreamSynchronize(cuda::stream()));
    for (auto& [size, p] : free_) CAF_WARN_CUDA(cudaFree(p));
    free_.clear();
    stats_.bytes_cached = 0;
  }

  void* malloc_or_flush(size_t size, size_t asked) {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the sticky-free error state
      flush_locked();
      e = cudaMalloc(&p, size);
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw OutOfMemory("GPU out of memory: asked for " + std::to_string(asked) + " bytes (" +
                            std::to_string(asked >> 20) + " MiB); in use by caf " +
                            std::to_string(stats_.bytes_in_use >> 20) + " MiB, free on device " +
                            std::to_string(free_b >> 20) + " of " +
                            std::to_string(total_b >> 20) + " MiB",
                        "reduce the batch size or image size");
    }
    CAF_CHECK_CUDA(e);
    stats_.device_allocs++;
    return p;
  }

  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  AllocStats stats_;
};

}  // namespace

Allocator& cuda_allocator() {
  static CudaCachingAllocator* a = new CudaCachingAllocator();  // leaked: outlives static tensors
  return *a;
}

void cuda_copy_bytes(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes) {
  cudaMemcpyKind kind = dst_dev == Device::cuda
                            ? (src_dev == Device::cuda ? cudaMemcpyDeviceToDevice
                                                       : cudaMemcpyHostToDevice)
                            : cudaMemcpyDeviceToHost;
  CAF_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, kind, cuda::stream()));
  CAF_CHECK_CUDA(cudaStreamSynchronize(cuda::stream()));
}

}  // namespace caf
