// kernels/adam.h: one fused Adam update over a flat parameter slab (PyTorch's semantics).
//
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= step_size * m / (sqrt(v) / sqrt(1 - b2^t) + eps),  step_size = lr / (1 - b1^t)
// eps is added outside the square root, as torch.optim.Adam does. The bias corrections are
// computed once per step in double (AdamStep), like PyTorch's Python-side scalars, but on the
// parameters' device: the optimiser's state (hyper-parameters, step count, the step's scalars)
// lives there as one AdamState, adam_advance counts the step and computes its scalars in one
// thread, and adam_update reads them from there. No scalar of a step is a kernel argument, so a
// captured CUDA graph replays as a new step each time, and a step makes no host round trip.
// p, m, v are updated in place; g is read only.
#pragma once

#include <cmath>

#include "kernels/dispatch.h"
#include "kernels/elementwise_math.h"

namespace caf {

struct AdamStep {
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps, step_size, bias2_sqrt, weight_decay;
};

// Scalars of step t (1-based) for learning rate lr; the same code on the host and the device.
CAF_HD AdamStep adam_step_scalars(double lr, double beta1, double beta2, double eps, double weight_decay,
                                  int64_t t) {
  const double bias1 = 1 - ::pow(beta1, double(t)), bias2 = 1 - ::pow(beta2, double(t));
  return {float(beta1), float(beta2),      float(1 - beta1),       float(1 - beta2),
          float(eps),   float(lr / bias1), float(::sqrt(bias2)), float(weight_decay)};
}

struct AdamState {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  int64_t t = 0;   // steps taken
  AdamStep s{};    // the scalars of step t (written by adam_advance)
};

struct AdamAdvance {  // one thread
  AdamState* st;
  CAF_HD void operator()(int64_t) const {
    st->t += 1;
    st->s = adam_step_scalars(st->lr, st->beta1, st->beta2, st->eps, st->weight_decay, st->t);
  }
};

template <class T>
struct AdamUpdate {
  T* p;
  T* m;
  T* v;
  const T* g;
  const AdamState* st;
  CAF_HD void operator()(int64_t i) const {
    const AdamStep s = st->s;
    T grad = g[i];
    if (s.weight_decay != 0) grad += T(s.weight_decay) * p[i];
    T mi = m[i] * T(s.beta1) + T(s.one_minus_beta1) * grad;
    T vi = v[i] * T(s.beta2) + T(s.one_minus_beta2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
    T denom = math_sqrt(vi) / T(s.bias2_sqrt) + T(s.eps);
    p[i] -= T(s.step_size) * mi / denom;
  }
};

namespace cpu {
template <class T> void adam_advance(AdamState* st);
template <class T> void adam_update(T* p, T* m, T* v, const T* g, int64_t n, const AdamState* st);
}
namespace cuda {
void adam_advance(AdamState* st);
void adam_update(float* p, float* m, float* v, const float* g, int64_t n, const AdamState* st);
}

// st points to device memory when d is cuda.
template <class T>
void adam_advance(Device d, AdamState* st) {
  CAF_DISPATCH(T, d, adam_advance, st);
}
template <class T>
void adam_update(Device d, T* p, T* m, T* v, const T* g, int64_t n, const AdamState* st) {
  CAF_DISPATCH(T, d, adam_update, p, m, v, g, n, st);
}

}  // namespace caf
