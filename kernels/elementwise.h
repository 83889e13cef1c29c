// kernels/elementwise.h: unary and binary elementwise ops over flat arrays of n elements.
//
//   unary_forward   y = op(x)                        (=, may run in place: y == x)
//   unary_backward  gx += op'(x, y) * gy             (+=)
//   binary_forward  y = a op b, same shapes          (=, y may alias a or b)
//   binary_backward ga += dy/da * gy, gb += dy/db * gy  (+=; ga or gb may be null)
//   add_scalar_at   y = x + s[k], s a device array    (=; the constant never visits the host)
//   ssim_constants  c[0..1] from minmax[0..1]        (SSIM's C1, C2; see SsimConstants)
//   relu_mask_forward / relu_mask_backward: ReLU keeping a uint8 mask for the backward (=, +=)
// Binary ops: add, sub, mul, div (a / b; b must not be 0).
#pragma once

#include "kernels/dispatch.h"
#include "kernels/elementwise_math.h"

namespace caf {

namespace cpu {
template <class T> void unary_forward(UnaryOp op, const T* x, T* y, int64_t n, T a, T b);
template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, int64_t n, T a, T b);
template <class T> void binary_forward(BinaryOp op, const T* a, const T* b, T* y, int64_t n);
template <class T>
void binary_backward(BinaryOp op, const T* a, const T* b, const T* gy, T* ga, T* gb, int64_t n);
template <class T> void add_scalar_at(const T* x, const T* s, int64_t k, T* y, int64_t n);
template <class T> void ssim_constants(const T* minmax, T* c);
void relu_mask_forward(const float* x, float* y, uint8_t* mask, int64_t n);
void relu_mask_backward(const uint8_t* mask, const float* gy, float* gx, int64_t n);
}  // namespace cpu

namespace cuda {
void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, float a, float b);
void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx,
                    int64_t n, float a, float b);
void binary_forward(BinaryOp op, const float* a, const float* b, float* y, int64_t n);
void binary_backward(BinaryOp op, const float* a, const float* b, const float* gy, float* ga,
                     float* gb, int64_t n);
void add_scalar_at(const float* x, const float* s, int64_t k, float* y, int64_t n);
void ssim_constants(const float* minmax, float* c);
void relu_mask_forward(const float* x, float* y, uint8_t* mask, int64_t n);
void relu_mask_backward(const uint8_t* mask, const float* gy, float* gx, int64_t n);
}  // namespace cuda

template <class T>
void unary_forward(Device d, UnaryOp op, const T* x, T* y, int64_t n, T a = 0, T b = 0) {
  CAF_DISPATCH(T, d, unary_forward, op, x, y, n, a, b);
}
template <class T>
void unary_backward(Device d, UnaryOp op, const T* x, const T* y, const T* gy, T* gx, int64_t n,
                    T a = 0, T b = 0) {
  CAF_DISPATCH(T, d, unary_backward, op, x, y, gy, gx, n, a, b);
}
template <class T>
void binary_forward(Device d, BinaryOp op, const T* a, const T* b, T* y, int64_t n) {
  CAF_DISPATCH(T, d, binary_forward, op, a, b, y, n);
}
template <class T>
void binary_backward(Device d, BinaryOp op, const T* a, const T* b, const T* gy, T* ga, T* gb,
                     int64_t n) {
  CAF_DISPATCH(T, d, binary_backward, op, a, b, gy, ga, gb, n);
}
template <class T>
void add_scalar_at(Device d, const T* x, const T* s, int64_t k, T* y, int64_t n) {
  CAF_DISPATCH(T, d, add_scalar_at, x, s, k, y, n);
}
template <class T>
void ssim_constants(Device d, const T* minmax, T* c) {
  CAF_DISPATCH(T, d, ssim_constants, minmax, c);
}
inline void relu_mask_forward(Device d, const float* x, float* y, uint8_t* mask, int64_t n) {
  CAF_DISPATCH_PLAIN(d, relu_mask_forward, x, y, mask, n);
}
inline void relu_mask_backward(Device d, const uint8_t* mask, const float* gy, float* gx, int64_t n) {
  CAF_DISPATCH_PLAIN(d, relu_mask_backward, mask, gy, gx, n);
}

}  // namespace caf
