// kernels/cuda/allocator.cpp: the CUDA side of the caching allocator (kernels/memory.h) and
// host<->device copies.
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/memory.h"
#if defined(CAF_EMU_BUILD)
#include <sanitizer/asan_interface.h>
#endif

namespace caf {

namespace {

class CudaCachingAllocator final : public CachingAllocator {
#if defined(CAF_EMU_BUILD)
  // The CPU emulator (tests/emu) only: every block handed out, fresh or from the cache, is filled
  // with 0xFF bytes (NaN as float and bf16), so that reading an element nobody wrote shows. With
  // AddressSanitizer (CAF_SANITIZE too: tools/emu_check.sh CAF_EMU_ASAN=1) the rest of the size
  // class past the request and every cached block are poisoned, so a kernel that reads or writes
  // past its tensor, or a freed one, is reported; not a graph's pool, whose blocks its replays use
  // with the sizes of the capture.
 public:
  void* allocate(size_t bytes) override {
    void* p = CachingAllocator::allocate(bytes);
    const size_t block = alloc_size_class(bytes);
    ASAN_UNPOISON_MEMORY_REGION(p, block);
    std::memset(p, 0xFF, bytes);
    if (!in_private_pool(p)) ASAN_POISON_MEMORY_REGION(static_cast<char*>(p) + bytes, block - bytes);
    return p;
  }
  void release(void* ptr, size_t bytes) override {
    if (ptr && !in_private_pool(ptr)) ASAN_POISON_MEMORY_REGION(ptr, alloc_size_class(bytes));
    CachingAllocator::release(ptr, bytes);
  }

 private:
#endif
  void* raw_allocate(size_t bytes) override {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // out of memory is not sticky: clear it and let the caller flush/retry
      return nullptr;
    }
    CAF_CHECK_CUDA(e);
    return p;
  }
  void raw_release(void* ptr) override { CAF_WARN_CUDA(cudaFree(ptr)); }
  // Blocks may still be in use by queued kernels on caf's stream.
  void before_flush() override { CAF_WARN_CUDA(cudaStreamSynchronize(cuda::stream())); }
  // Flushing synchronises and frees, which a stream being captured into a graph cannot do.
  bool can_flush() const override {
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    return cudaStreamIsCapturing(cuda::stream(), &st) != cudaSuccess || st == cudaStreamCaptureStatusNone;
  }
  std::string out_of_memory_detail() const override {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return ", free on the GPU " + std::to_string(free_b >> 20) + " of " +
           std::to_string(total_b >> 20) + " MiB";
  }
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
