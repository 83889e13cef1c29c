// augment/cpu/poisson.cpp: the CPU launchers of the benchmark generators' passes
// (augment/poisson.h): the very functors the GPU runs, in cpu_for_each loops.
#include "augment/poisson.h"

#include "kernels/launch.h"

namespace caf::cpu {

void poisson_solve(const PoissonArgs& a) {
  const int64_t pixels = a.n * a.H * a.W, half = (a.W + 1) / 2;
  cpu_for_each(pixels,
               PoissonRhsPass{a});  // reads the destination, so before the start overwrites it
  cpu_for_each(pixels, PoissonInitPass{a});
  // The sweeps: one thread per sample runs all of that sample's half-passes, over the rows that
  // hold mask pixels. A parallel loop per half-pass, as on the GPU, would pay thousands of
  // fork-joins, which dominate on a loaded CPU; the updates of a sample happen in the same order
  // (a whole red half-pass, then a whole black one), so the result is the same.
  const PoissonSorPass red{a, 0}, black{a, 1};
#pragma omp parallel for schedule(dynamic)
  for (int64_t n = 0; n < a.n; ++n) {
    int64_t row_begin = a.H, row_end = 0;
    for (int64_t i = 0; i < a.H; ++i)
      for (int64_t j = 0; j < a.W; ++j)
        if (a.mask[(n * a.H + i) * a.W + j]) {
          row_begin = i < row_begin ? i : row_begin;
          row_end = i + 1;
        }
    const int64_t begin = (n * a.H + row_begin) * half, end = (n * a.H + row_end) * half;
    for (int it = 0; it < a.iterations; ++it) {
      for (int64_t e = begin; e < end; ++e) red(e);
      for (int64_t e = begin; e < end; ++e) black(e);
    }
  }
}

void poisson_residual(const PoissonArgs& a, float* residual, float* magnitude) {
  cpu_for_each(a.n * a.H * a.W, PoissonResidualPass{a, residual, magnitude});
}

void nsa_place(const NsaPlaceArgs& a) {
  cpu_for_each(a.n * a.H * a.W, NsaPlacePass{a.geom, a.source, a.guide, a.mask, a.H, a.W});
}

void nsa_round(const PoissonArgs& a) {
  cpu_for_each(a.n * a.H * a.W, NsaRoundPass{a.mask, a.f, a.H, a.W});
}

void nsa_label(const NsaLabelArgs& a) {
  const int64_t pixels = a.n * a.H * a.W;
  cpu_for_each(pixels, NsaChangedPass{a.original, a.image, a.patch_union, a.changed, a.H, a.W});
  cpu_for_each(pixels, NsaLabelPass{a.changed, a.patch_union, a.label, a.H, a.W});
}

void cutpaste_paste(const CutPasteArgs& a) {
  cpu_for_each(a.n * a.H * a.W, CutPastePass{a.plans, a.x, a.image, a.mask, a.H, a.W});
}

}  // namespace caf::cpu
