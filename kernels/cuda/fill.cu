// kernels/cuda/fill.cu: device fill for the element types tensors hold.
#include "kernels/cuda/launch.cuh"

namespace caf {

template <class T>
void cuda_fill(T* ptr, int64_t n, T value) {
  cuda::for_each(n, [=] __device__(int64_t i) { ptr[i] = value; }, "fill");
}

template void cuda_fill<float>(float*, int64_t, float);
template void cuda_fill<uint8_t>(uint8_t*, int64_t, uint8_t);

}  // namespace caf
