#include "kernels/cuda/launch.cuh"
#include "kernels/elementwise.h"

namespace caf::cuda {

void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, float a, float b) {
  visit_unary(op, [&](auto k) {
    for_each(n, UnaryForward<decltype(k)::value, float>{x, y, a, b}, "unary_forward");
  });
}
void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx,
                    int64_t n, float a, float b) {
  visit_unary(op, [&](auto k) {
    for_each(n, UnaryBackward<decltype(k)::value, float>{x, y, gy, gx, a, b}, "unary_backward");
  });
}
void binary_forward(BinaryOp op, const float* a, const float* b, float* y, int64_t n) {
  for_each(n, BinaryForward<float>{op, a, b, y}, "binary_forward");
}
void binary_backward(BinaryOp op, const float* a, const float* b, const float* gy, float* ga,
                     float* gb, int64_t n) {
  for_each(n, BinaryBackward<float>{op, a, b, gy, ga, gb}, "binary_backward");
}
void add_scalar_at(const float* x, const float* s, int64_t k, float* y, int64_t n) {
  for_each(n, AddScalarAt<float>{x, s, k, y}, "add_scalar_at");
}
void ssim_constants(const float* minmax, float* c) {
  for_each(1, SsimConstants<float>{minmax, c}, "ssim_constants");
}
void relu_mask_forward(const float* x, float* y, uint8_t* mask, int64_t n) {
  for_each(n, ReluMaskForward{x, y, mask}, "relu_mask_forward");
}
void relu_mask_backward(const uint8_t* mask, const float* gy, float* gx, int64_t n) {
  for_each(n, ReluMaskBackward{mask, gy, gx}, "relu_mask_backward");
}

}  // namespace caf::cuda
