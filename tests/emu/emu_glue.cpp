// tests/emu/emu_glue.cpp: for the kernel tests alone (caf_emu_tests), the few caf functions that
// kernels/cuda/context.cpp and allocator.cpp provide in a real (or a whole emulated) build: the
// stream, the launch check, "device" memory and copies.
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/check.h"  // the shadow (tests/emu/shadow)
#include "kernels/memory.h"

namespace caf {

namespace cuda {
cudaStream_t stream() { return nullptr; }
void after_launch(const char*, const char*, int) {}
}  // namespace cuda

namespace {
// Emulated device memory through the emulated cudaMalloc (0xFF-filled when fresh).
class EmulatedDeviceAllocator final : public CachingAllocator {
  void* raw_allocate(size_t bytes) override {
    void* p = nullptr;
    return cudaMalloc(&p, bytes) == cudaSuccess ? p : nullptr;
  }
  void raw_release(void* ptr) override { cudaFree(ptr); }
};
}  // namespace

Allocator& cuda_allocator() {
  static EmulatedDeviceAllocator* a = new EmulatedDeviceAllocator();
  return *a;
}

void cuda_copy_bytes(Device, void* dst, Device, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }

}  // namespace caf
