// kernels/elementwise_math.h: per-element math of the elementwise ops, shared by CPU and CUDA.
//
// Convention for every backward functor in caf: input gradients accumulate (gx += ...), so
// autograd can sum the contributions of several consumers without extra buffers.
#pragma once

#include <cmath>
#include <type_traits>

#include "kernels/common.h"

namespace caf {

enum class UnaryOp : uint8_t { relu, sigmoid, exp, log, square, scale, add_scalar, clamp };
enum class BinaryOp : uint8_t { add, sub, mul, div };

CAF_HD float math_exp(float x) { return ::expf(x); }
CAF_HD double math_exp(double x) { return ::exp(x); }
CAF_HD float math_log(float x) { return ::logf(x); }
CAF_HD double math_log(double x) { return ::log(x); }
CAF_HD float math_sqrt(float x) { return ::sqrtf(x); }
CAF_HD double math_sqrt(double x) { return ::sqrt(x); }

// y = op(x); a and b are the op's constants (scale: a; add_scalar: a; clamp: [a, b]).
template <class T>
CAF_HD T unary_value(UnaryOp op, T x, T a, T b) {
  switch (op) {
    case UnaryOp::relu: return x > T(0) ? x : T(0);
    case UnaryOp::sigmoid: return T(1) / (T(1) + math_exp(-x));
    case UnaryOp::exp: return math_exp(x);
    case UnaryOp::log: return math_log(x);
    case UnaryOp::square: return x * x;
    case UnaryOp::scale: return a * x;
    case UnaryOp::add_scalar: return x + a;
    case UnaryOp::clamp: return x < a ? a : (x > b ? b : x);
  }
  return x;
}

// Which of x and y each op's gradient reads: autograd saves only those, so relu keeps its output
// alone (the input, a batch norm's output, is freed at once, as with PyTorch's in-place ReLU).
constexpr bool unary_grad_needs_x(UnaryOp op) {
  return op == UnaryOp::log || op == UnaryOp::square || op == UnaryOp::clamp;
}
constexpr bool unary_grad_needs_y(UnaryOp op) {
  return op == UnaryOp::relu || op == UnaryOp::sigmoid || op == UnaryOp::exp;
}

// dL/dx given x, y = op(x) and dL/dy (the ones unary_grad_needs_* names; the others may be 0).
// Kinks follow PyTorch: relu passes where x > 0 (the same pixels as y > 0), clamp where a <= x <= b.
template <class T>
CAF_HD T unary_grad(UnaryOp op, T x, T y, T gy, T a, T b) {
  switch (op) {
    case UnaryOp::relu: return y > T(0) ? gy : T(0);
    case UnaryOp::sigmoid: return gy * y * (T(1) - y);
    case UnaryOp::exp: return gy * y;
    case UnaryOp::log: return gy / x;
    case UnaryOp::square: return T(2) * x * gy;
    case UnaryOp::scale: return a * gy;
    case UnaryOp::add_scalar: return gy;
    case UnaryOp::clamp: return (x >= a && x <= b) ? gy : T(0);
  }
  return gy;
}

// The op is a template parameter so that each loop sees a constant and vectorises; visit_unary
// turns the run-time op into that constant.
template <UnaryOp OP, class T>
struct UnaryForward {
  const T* x;
  T* y;
  T a, b;
  CAF_HD void operator()(int64_t i) const { y[i] = unary_value(OP, x[i], a, b); }
};

template <UnaryOp OP, class T>
struct UnaryBackward {
  const T* x;
  const T* y;
  const T* gy;
  T* gx;
  T a, b;
  CAF_HD void operator()(int64_t i) const {
    const T xi = unary_grad_needs_x(OP) ? x[i] : T(0), yi = unary_grad_needs_y(OP) ? y[i] : T(0);
    gx[i] += unary_grad(OP, xi, yi, gy[i], a, b);
  }
};

// ReLU that keeps a 1-byte mask (x > 0) for its backward instead of its fp32 output (bf16 mixed
// precision: the next convolution saves its own bf16 copy, so the fp32 output can be freed).
struct ReluMaskForward {
  const float* x;
  float* y;
  uint8_t* mask;
  CAF_HD void operator()(int64_t i) const {
    const bool on = x[i] > 0.f;
    y[i] = on ? x[i] : 0.f;
    mask[i] = on;
  }
};
struct ReluMaskBackward {
  const uint8_t* mask;
  const float* gy;
  float* gx;
  CAF_HD void operator()(int64_t i) const { gx[i] += mask[i] ? gy[i] : 0.f; }
};

// y = x + s[k]: a constant that lives on the device (computed there), so no host round trip.
template <class T>
struct AddScalarAt {
  const T* x;
  const T* s;
  int64_t k;
  T* y;
  CAF_HD void operator()(int64_t i) const { y[i] = x[i] + s[k]; }
};

// SSIM's stabilising constants from img1's [min, max] (METHOD 3.1, pytorch-ssim's rule): the
// range L is 255 when max > 128 else 1, minus -1 when min < -0.5 else 0; c = [(0.01 L)^2,
// (0.03 L)^2]. One element's work, run on the device that holds the min/max.
template <class T>
struct SsimConstants {
  const T* minmax;
  T* c;
  CAF_HD void operator()(int64_t) const {
    const T max_val = minmax[1] > T(128) ? T(255) : T(1), min_val = minmax[0] < T(-0.5) ? T(-1) : T(0);
    const T L = max_val - min_val;
    c[0] = (T(0.01) * L) * (T(0.01) * L);
    c[1] = (T(0.03) * L) * (T(0.03) * L);
  }
};

template <class F>
void visit_unary(UnaryOp op, F&& f) {
  using K = UnaryOp;
  switch (op) {
    case K::relu: return f(std::integral_constant<K, K::relu>{});
    case K::sigmoid: return f(std::integral_constant<K, K::sigmoid>{});
    case K::exp: return f(std::integral_constant<K, K::exp>{});
    case K::log: return f(std::integral_constant<K, K::log>{});
    case K::square: return f(std::integral_constant<K, K::square>{});
    case K::scale: return f(std::integral_constant<K, K::scale>{});
    case K::add_scalar: return f(std::integral_constant<K, K::add_scalar>{});
    case K::clamp: return f(std::integral_constant<K, K::clamp>{});
  }
}

template <class T>
struct BinaryForward {
  BinaryOp op;
  const T* a;
  const T* b;
  T* y;
  CAF_HD void operator()(int64_t i) const {
    T u = a[i], v = b[i];
    switch (op) {
      case BinaryOp::add: y[i] = u + v; break;
      case BinaryOp::sub: y[i] = u - v; break;
      case BinaryOp::mul: y[i] = u * v; break;
      case BinaryOp::div: y[i] = u / v; break;
    }
  }
};

// ga and gb may each be null (that input needs no gradient).
template <class T>
struct BinaryBackward {
  BinaryOp op;
  const T* a;
  const T* b;
  const T* gy;
  T* ga;
  T* gb;
  CAF_HD void operator()(int64_t i) const {
    T g = gy[i];
    switch (op) {
      case BinaryOp::add:
        if (ga) ga[i] += g;
        if (gb) gb[i] += g;
        break;
      case BinaryOp::sub:
        if (ga) ga[i] += g;
        if (gb) gb[i] -= g;
        break;
      case BinaryOp::mul:
        if (ga) ga[i] += g * b[i];
        if (gb) gb[i] += g * a[i];
        break;
      case BinaryOp::div:
        if (ga) ga[i] += g / b[i];
        if (gb) gb[i] -= g * a[i] / (b[i] * b[i]);
        break;
    }
  }
};

}  // namespace caf
