// augment/cpu/simulate.cpp: the CPU reference of the batch simulation (augment/simulate.h): the
// same per-element passes as the GPU, run by cpu_for_each, plus a plain histogram loop.
#include "augment/simulate.h"

#include <cstring>

#include "kernels/launch.h"

namespace caf::cpu {

void source_stage(const SimulateArgs& a, int k, const uint8_t* in, bool in_is_bank, uint8_t* out) {
  const int64_t H = a.plan.height, W = a.plan.width, plane = H * W;
  // Histograms of the stage input, only for samples whose k-th operation needs them.
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < a.n * 3; ++nc) {
    const SamplePlan& p = a.plans[nc / 3];
    int32_t* h = a.hist + nc * 256;
    std::memset(h, 0, 256 * sizeof(int32_t));
    if (!uses_texture(p) || !source_op_uses_histogram(p.ops[k])) continue;
    const uint8_t* ch = stage_input(p, in, in_is_bank, nc / 3, 3 * plane) + (nc % 3) * plane;
    for (int64_t e = 0; e < plane; ++e) ++h[ch[e]];
  }
  cpu_for_each(a.n * 3, LutPass{a.plans, k, a.hist, plane, a.lut});
  cpu_for_each(a.n * plane, StagePass{a.plans, k, in, in_is_bank, out, a.lut, H, W});
}

void simulate(const SimulateArgs& a) {
  const int64_t H = a.plan.height, W = a.plan.width, pixels = a.n * H * W;
  cpu_for_each(a.n, PlanPass{a.plan, a.plans});
  cpu_for_each(a.n * kPerlinCorners, GradientPass{a.plan, a.plans, a.grads});
  source_stage(a, 0, a.bank, true, a.tex[0]);
  source_stage(a, 1, a.tex[0], false, a.tex[1]);
  source_stage(a, 2, a.tex[1], false, a.tex[0]);
  const float* x = a.clean;
  if (a.target) {
    cpu_for_each(pixels, RotatePass{a.plans, a.clean, a.target, H, W, a.reflect != 0});
    x = a.target;
  }
  cpu_for_each(pixels, ComposePass{a.plans, x, a.tex[0], a.grads, a.image, a.mask, H, W,
                                   a.threshold, a.tau});
  const int64_t BH = a.blocks_h(), BW = a.blocks_w();
  cpu_for_each(a.n * BH * BW, BlockPass{a.plans, a.mask, a.blocks, H, W, BH, BW, a.block});
  cpu_for_each(pixels, NdaaFinishPass{a.plans, x, a.blocks, a.image, a.mask, H, W, BH, BW});
}

}  // namespace caf::cpu
