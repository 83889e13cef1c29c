#include "kernels/cast.h"

#include "kernels/launch.h"

namespace caf::cpu {

void cast_to_bf16(const float* x, uint16_t* y, int64_t n) { cpu_for_each(n, CastToBf16{x, y}); }
void cast_from_bf16(const uint16_t* x, const float* bias, int64_t hw, int64_t c, float* y, int64_t n) {
  cpu_for_each(n, CastFromBf16{x, bias, hw, c, y});
}
void accumulate_bf16(const uint16_t* x, float* g, int64_t n) { cpu_for_each(n, AccumulateBf16{x, g}); }

namespace {
// Every (b, c, p) once, planar order; images (or filters) in parallel.
template <class F>
void for_bcp(int64_t b, int64_t c, int64_t p, F f) {
#pragma omp parallel for schedule(static) if (b * c * p >= kParallelGrain)
  for (int64_t i = 0; i < b; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t pos = 0; pos < p; ++pos) f(i, ch, pos);
}
}  // namespace

void cast_to_bf16_nhwc(const float* x, uint16_t* y, int64_t b, int64_t c, int64_t p) {
  for_bcp(b, c, p, CastToBf16Nhwc{x, y, {c, p}});
}
void cast_from_bf16_nhwc(const uint16_t* x, const float* bias, float* y, int64_t b, int64_t c, int64_t p) {
  for_bcp(b, c, p, CastFromBf16Nhwc{x, bias, y, {c, p}});
}
void accumulate_bf16_nhwc(const uint16_t* x, float* g, int64_t b, int64_t c, int64_t p) {
  for_bcp(b, c, p, AccumulateBf16Nhwc{x, g, {c, p}});
}

void transpose_bf16_to_nhwc(const uint16_t* x, uint16_t* y, int64_t b, int64_t c, int64_t p) {
  for_bcp(b, c, p, TransposeBf16ToNhwc{x, y, {c, p}});
}
void transpose_bf16_from_nhwc(const uint16_t* x, uint16_t* y, int64_t b, int64_t c, int64_t p) {
  for_bcp(b, c, p, TransposeBf16FromNhwc{x, y, {c, p}});
}
void transpose_f32_to_nhwc(const float* x, float* y, int64_t b, int64_t c, int64_t p, bool accumulate) {
  for_bcp(b, c, p, TransposeF32{x, y, {c, p}, true, accumulate});
}
void transpose_f32_from_nhwc(const float* x, float* y, int64_t b, int64_t c, int64_t p, bool accumulate) {
  for_bcp(b, c, p, TransposeF32{x, y, {c, p}, false, accumulate});
}

}  // namespace caf::cpu
