// augment/philox.h: the counter-based generator behind all augmentation randomness (DESIGN.md).
//
// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a pure
// function of a 128-bit counter and a 64-bit key, 10 rounds of multiply-xor with the published
// constants. caf puts the seed in the key and (step, sample, purpose, element) in the counter, so
// every random value is reproducible on the CPU and the GPU alike and needs no state. CAF_HD: the
// very same code runs in tests, in CPU references and in CUDA kernels.
#pragma once

#include <cstdint>

#include "kernels/common.h"

namespace caf {

struct Philox4 {
  uint32_t v[4];
};

CAF_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = uint64_t(a) * uint64_t(b);
  hi = uint32_t(p >> 32);
  lo = uint32_t(p);
}

CAF_HD Philox4 philox4x32_10(Philox4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // key schedule (Weyl) increments
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kM0, c.v[0], hi0, lo0);
    philox_mulhilo(kM1, c.v[2], hi1, lo1);
    c = {{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return c;
}

// What a random value is for; part of the counter so that streams never overlap.
enum class Purpose : uint32_t {
  choice = 1,       // normal or anomalous, which generator
  perlin_scale,     // lattice scales
  perlin_gradient,  // lattice gradient angles
  perlin_rotation,  // rotation of the noise
  texture,          // which texture and which source operations
  texture_op,       // parameters of the source operations
  blend,            // beta
  ndaa,             // rectangle and sine distortion
  rotation,         // rotation of normal images
  sample_index,     // which training image fills a batch slot
  cutpaste,         // CutPaste benchmark generator (augment/bench_generators.h)
  nsa,              // NSA benchmark generator (augment/bench_generators.h)
};

// Four 32-bit random words for (seed; step, sample, purpose, element).
CAF_HD Philox4 random_words(uint64_t seed, uint32_t step, uint32_t sample, Purpose purpose,
                            uint32_t element) {
  return philox4x32_10({{step, sample, uint32_t(purpose), element}}, uint32_t(seed),
                       uint32_t(seed >> 32));
}

// Uniform in [0, 1) from a 32-bit word, exactly representable in float (24 bits used).
CAF_HD float uniform01(uint32_t word) { return float(word >> 8) * (1.0f / 16777216.0f); }

CAF_HD float uniform(uint32_t word, float lo, float hi) { return lo + (hi - lo) * uniform01(word); }

// Uniform integer in [0, n) (n > 0); the bias of the modulo is below n / 2^32.
CAF_HD uint32_t uniform_int(uint32_t word, uint32_t n) { return uint32_t((uint64_t(word) * n) >> 32); }

}  // namespace caf
