#include "augment/simulate.h"

namespace caf {

const char* source_op_name(SourceOp op) {
  static const char* const names[kSourceOpCount] = {
      "gamma",  "brightness", "sharpness",    "hue_saturation", "solarize",
      "posterize", "invert",  "autocontrast", "equalize",       "rotate"};
  return names[int(op)];
}

const char* generator_name(Generator g) {
  static const char* const names[] = {"none", "transparent", "opaque", "ndaa"};
  return names[int(g)];
}

namespace {
// Each region starts on a 256-byte boundary, as cudaMalloc's own alignment.
size_t align_up(size_t b) { return (b + 255) & ~size_t(255); }

template <class F>
size_t walk_workspace(const SimulateArgs& a, F bind) {
  const size_t n = size_t(a.n), plane3 = size_t(3 * a.plan.height * a.plan.width);
  size_t at = 0;
  auto region = [&](size_t bytes) {
    const size_t start = at;
    at += align_up(bytes);
    return start;
  };
  bind(region(n * sizeof(SamplePlan)), region(n * kPerlinCorners * 2 * sizeof(float)),
       region(n * plane3), region(n * plane3), region(n * 3 * 256 * sizeof(int32_t)),
       region(n * 3 * 256), region(n * size_t(a.blocks_h() * a.blocks_w()) * sizeof(float)));
  return at;
}
}  // namespace

size_t simulate_workspace_bytes(const SimulateArgs& a) {
  return walk_workspace(a, [](size_t, size_t, size_t, size_t, size_t, size_t, size_t) {});
}

void simulate_workspace_bind(SimulateArgs& a, void* workspace) {
  auto* base = static_cast<uint8_t*>(workspace);
  walk_workspace(a, [&](size_t plans, size_t grads, size_t tex0, size_t tex1, size_t hist,
                        size_t lut, size_t blocks) {
    a.plans = reinterpret_cast<SamplePlan*>(base + plans);
    a.grads = reinterpret_cast<float*>(base + grads);
    a.tex[0] = base + tex0;
    a.tex[1] = base + tex1;
    a.hist = reinterpret_cast<int32_t*>(base + hist);
    a.lut = base + lut;
    a.blocks = reinterpret_cast<float*>(base + blocks);
  });
}

}  // namespace caf
