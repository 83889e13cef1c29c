#include "kernels/elementwise.h"

#include "kernels/launch.h"

namespace caf::cpu {

template <class T>
void unary_forward(UnaryOp op, const T* x, T* y, int64_t n, T a, T b) {
  visit_unary(op, [&](auto k) { cpu_for_each(n, UnaryForward<decltype(k)::value, T>{x, y, a, b}); });
}
template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, int64_t n, T a, T b) {
  visit_unary(op, [&](auto k) {
    cpu_for_each(n, UnaryBackward<decltype(k)::value, T>{x, y, gy, gx, a, b});
  });
}
template <class T>
void add_scalar_at(const T* x, const T* s, int64_t k, T* y, int64_t n) {
  cpu_for_each(n, AddScalarAt<T>{x, s, k, y});
}
template <class T>
void ssim_constants(const T* minmax, T* c) {
  SsimConstants<T>{minmax, c}(0);
}
template <class T>
void binary_forward(BinaryOp op, const T* a, const T* b, T* y, int64_t n) {
  cpu_for_each(n, BinaryForward<T>{op, a, b, y});
}
template <class T>
void binary_backward(BinaryOp op, const T* a, const T* b, const T* gy, T* ga, T* gb, int64_t n) {
  cpu_for_each(n, BinaryBackward<T>{op, a, b, gy, ga, gb});
}

void relu_mask_forward(const float* x, float* y, uint8_t* mask, int64_t n) {
  cpu_for_each(n, ReluMaskForward{x, y, mask});
}
void relu_mask_backward(const uint8_t* mask, const float* gy, float* gx, int64_t n) {
  cpu_for_each(n, ReluMaskBackward{mask, gy, gx});
}

#define CAF_INSTANTIATE(T)                                                                     \
  template void unary_forward<T>(UnaryOp, const T*, T*, int64_t, T, T);                        \
  template void unary_backward<T>(UnaryOp, const T*, const T*, const T*, T*, int64_t, T, T);   \
  template void binary_forward<T>(BinaryOp, const T*, const T*, T*, int64_t);                  \
  template void binary_backward<T>(BinaryOp, const T*, const T*, const T*, T*, T*, int64_t);      \
  template void add_scalar_at<T>(const T*, const T*, int64_t, T*, int64_t);                     \
  template void ssim_constants<T>(const T*, T*);
CAF_INSTANTIATE(float)
CAF_INSTANTIATE(double)

}  // namespace caf::cpu
