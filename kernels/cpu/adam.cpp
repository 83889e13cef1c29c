#include "kernels/adam.h"

#include "kernels/launch.h"

namespace caf::cpu {

template <class T>
void adam_advance(AdamState* st) {
  AdamAdvance{st}(0);
}
template <class T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t n, const AdamState* st) {
  cpu_for_each(n, AdamUpdate<T>{p, m, v, g, st});
}
template void adam_advance<float>(AdamState*);
template void adam_advance<double>(AdamState*);
template void adam_update<float>(float*, float*, float*, const float*, int64_t, const AdamState*);
template void adam_update<double>(double*, double*, double*, const double*, int64_t, const AdamState*);

}  // namespace caf::cpu
