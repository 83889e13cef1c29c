#include "kernels/adam.h"

#include <cmath>

#include "kernels/launch.h"

namespace caf {

AdamStep adam_step_scalars(double lr, double beta1, double beta2, double eps, double weight_decay,
                           int64_t t) {
  const double bias1 = 1 - std::pow(beta1, double(t)), bias2 = 1 - std::pow(beta2, double(t));
  return {float(beta1),          float(beta2),        float(1 - beta1), float(1 - beta2),
          float(eps),            float(lr / bias1),   float(std::sqrt(bias2)),
          float(weight_decay)};
}

namespace cpu {
template <class T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t n, const AdamStep& s) {
  cpu_for_each(n, AdamUpdate<T>{p, m, v, g, s});
}
template void adam_update<float>(float*, float*, float*, const float*, int64_t, const AdamStep&);
template void adam_update<double>(double*, double*, double*, const double*, int64_t, const AdamStep&);
}  // namespace cpu

}  // namespace caf
