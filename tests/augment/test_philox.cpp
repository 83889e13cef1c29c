#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "augment/philox.h"

using namespace caf;

TEST_SUITE("augment") {
TEST_CASE("philox: known-answer vectors of Philox-4x32-10 (Random123)") {
  auto check = [](Philox4 c, uint32_t k0, uint32_t k1, Philox4 want) {
    Philox4 got = philox4x32_10(c, k0, k1);
    for (int i = 0; i < 4; ++i) CHECK(got.v[i] == want.v[i]);
  };
  check({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
  check({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
        {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
  check({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
        {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

TEST_CASE("philox: streams are distinct, reproducible and uniform") {
  CHECK(random_words(7, 1, 2, Purpose::blend, 3).v[0] == random_words(7, 1, 2, Purpose::blend, 3).v[0]);
  std::set<uint32_t> seen;
  for (uint32_t seed : {1u, 2u})
    for (uint32_t step : {0u, 1u})
      for (uint32_t sample : {0u, 1u})
        for (Purpose p : {Purpose::blend, Purpose::ndaa})
          seen.insert(random_words(seed, step, sample, p, 0).v[0]);
  CHECK(seen.size() == 16);
  // Mean and variance of 100k uniforms: 1/2 and 1/12 within 5 standard errors.
  double sum = 0, sq = 0;
  const int n = 100000;
  int outside = 0;
  for (int i = 0; i < n; ++i) {
    float u = uniform01(random_words(3, 0, 0, Purpose::choice, uint32_t(i)).v[i % 4]);
    outside += (u < 0.f || u >= 1.f);
    sum += u;
    sq += double(u) * u;
  }
  CHECK(outside == 0);
  const double mean = sum / n, var = sq / n - mean * mean;
  CHECK(std::fabs(mean - 0.5) < 5 * std::sqrt(1.0 / 12 / n));
  CHECK(std::fabs(var - 1.0 / 12) < 0.002);
  CHECK(uniform_int(0xffffffffu, 6) == 5);
  CHECK(uniform_int(0, 6) == 0);
}
}
