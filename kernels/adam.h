// kernels/adam.h: one fused Adam update over a flat parameter slab (PyTorch's semantics).
//
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= step_size * m / (sqrt(v) / sqrt(1 - b2^t) + eps),  step_size = lr / (1 - b1^t)
// eps is added outside the square root, as torch.optim.Adam does. The bias corrections are
// computed once per step on the host in double (AdamStep), like PyTorch's Python-side scalars.
// p, m, v are updated in place; g is read only.
#pragma once

#include "kernels/dispatch.h"
#include "kernels/elementwise_math.h"

namespace caf {

struct AdamStep {
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps, step_size, bias2_sqrt, weight_decay;
};

// Scalars of step t (1-based) for learning rate lr.
AdamStep adam_step_scalars(double lr, double beta1, double beta2, double eps, double weight_decay,
                           int64_t t);

template <class T>
struct AdamUpdate {
  T* p;
  T* m;
  T* v;
  const T* g;
  AdamStep s;
  CAF_HD void operator()(int64_t i) const {
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
template <class T> void adam_update(T* p, T* m, T* v, const T* g, int64_t n, const AdamStep& s);
}
namespace cuda {
void adam_update(float* p, float* m, float* v, const float* g, int64_t n, const AdamStep& s);
}

template <class T>
void adam_update(Device d, T* p, T* m, T* v, const T* g, int64_t n, const AdamStep& s) {
  CAF_DISPATCH(T, d, adam_update, p, m, v, g, n, s);
}

}  // namespace caf
