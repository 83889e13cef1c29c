#include "kernels/cast.h"

#include "kernels/launch.h"

namespace caf::cpu {

void cast_to_bf16(const float* x, uint16_t* y, int64_t n) { cpu_for_each(n, CastToBf16{x, y}); }
void cast_from_bf16(const uint16_t* x, const float* bias, int64_t hw, int64_t c, float* y, int64_t n) {
  cpu_for_each(n, CastFromBf16{x, bias, hw, c, y});
}
void accumulate_bf16(const uint16_t* x, float* g, int64_t n) { cpu_for_each(n, AccumulateBf16{x, g}); }

}  // namespace caf::cpu
