// augment/cuda/poisson.cu: the CUDA launchers of the benchmark generators' passes
// (augment/poisson.h). No kernels of its own: every pass is the CAF_HD functor the CPU runs, in the
// grid-stride launcher; compiled with -fmad=false (CMakeLists.txt) so the two devices round alike.
// The SOR loop queues 2 launches per sweep on caf's stream without synchronising.
#include "augment/poisson.h"
#include "kernels/cuda/launch.cuh"

namespace caf::cuda {

void poisson_solve(const PoissonArgs& a) {
  const int64_t pixels = a.n * a.H * a.W, half = poisson_half_pass_size(a);
  for_each(pixels, PoissonRhsPass{a}, "poisson: guidance divergence");
  for_each(pixels, PoissonInitPass{a}, "poisson: start");
  for (int it = 0; it < a.iterations; ++it) {
    for_each(half, PoissonSorPass{a, 0}, "poisson: red half-pass");
    for_each(half, PoissonSorPass{a, 1}, "poisson: black half-pass");
  }
}

void poisson_residual(const PoissonArgs& a, float* residual, float* magnitude) {
  for_each(a.n * a.H * a.W, PoissonResidualPass{a, residual, magnitude}, "poisson: residual");
}

void nsa_place(const NsaPlaceArgs& a) {
  for_each(a.n * a.H * a.W, NsaPlacePass{a.geom, a.source, a.guide, a.mask, a.H, a.W},
           "nsa: place");
}

void nsa_round(const PoissonArgs& a) {
  for_each(a.n * a.H * a.W, NsaRoundPass{a.mask, a.f, a.H, a.W}, "nsa: round");
}

void nsa_label(const NsaLabelArgs& a) {
  const int64_t pixels = a.n * a.H * a.W;
  for_each(pixels, NsaChangedPass{a.original, a.image, a.patch_union, a.changed, a.H, a.W},
           "nsa: changed pixels");
  for_each(pixels, NsaLabelPass{a.changed, a.patch_union, a.label, a.H, a.W}, "nsa: label");
}

void cutpaste_paste(const CutPasteArgs& a) {
  for_each(a.n * a.H * a.W, CutPastePass{a.plans, a.x, a.image, a.mask, a.H, a.W},
           "cutpaste: paste");
}

}  // namespace caf::cuda
