#include <doctest/doctest.h>

#include <cmath>

#include "kernels/error.h"
#include "kernels/memory.h"
#include "nn/tensor.h"

using namespace caf;

TEST_SUITE("nn") {
TEST_CASE("tensor: creation, fills and shapes") {
  Tensor z = Tensor::zeros({2, 3, 4, 5});
  CHECK(z.numel() == 120);
  CHECK(z.ndim() == 4);
  CHECK(z.dim(-1) == 5);
  CHECK(z.shape4().c == 3);
  for (float v : z.to_vector()) CHECK(v == 0.f);
  Tensor f = Tensor::full({3}, 2.5f);
  CHECK(f.to_vector() == std::vector<float>{2.5f, 2.5f, 2.5f});
  CHECK(Tensor::from_vector({1}, {7.f}).item() == 7.f);
  CHECK(Tensor::zeros({3, 4}).shape4().n == 1);
  CHECK(Tensor::zeros({3, 4}).shape4().h == 3);
  CHECK_THROWS_AS(Tensor::zeros({1, 2, 3, 4, 5}), ShapeError);
  CHECK_THROWS_AS(Tensor::from_vector({2, 2}, {1.f, 2.f, 3.f}), ShapeError);
  CHECK_THROWS_AS(Tensor::zeros({2}).item(), ShapeError);
  CHECK_THROWS_AS(Tensor().numel(), Error);
}

TEST_CASE("tensor: uint8 storage") {
  Tensor u = Tensor::from_bytes({2, 2}, {0, 1, 254, 255});
  CHECK(u.dtype() == DType::u8);
  CHECK(u.to_bytes() == std::vector<uint8_t>{0, 1, 254, 255});
  u.fill_(9);
  CHECK(u.to_bytes() == std::vector<uint8_t>{9, 9, 9, 9});
  CHECK_THROWS_AS(u.data<float>(), Error);
}

TEST_CASE("tensor: shared storage, views, clone") {
  Tensor a = Tensor::from_vector({4}, {1, 2, 3, 4});
  Tensor alias = a;  // handles alias
  alias.fill_(5);
  CHECK(a.to_vector()[0] == 5.f);
  Tensor c = a.clone();
  c.fill_(1);
  CHECK(a.to_vector()[0] == 5.f);
  Tensor r = a.reshape({2, 2});
  CHECK(r.storage().get() == a.storage().get());
  Tensor v = Tensor::view_of(a.storage(), 2, {2}, DType::f32, Device::cpu);
  v.fill_(0);
  CHECK(a.to_vector() == std::vector<float>{5, 5, 0, 0});
  CHECK_THROWS_AS(Tensor::view_of(a.storage(), 3, {2}, DType::f32, Device::cpu), ShapeError);
  CHECK_THROWS_AS(a.reshape({3}), ShapeError);
}

TEST_CASE("tensor: seeded random init is reproducible and has the asked moments") {
  Tensor a = Tensor::randn({100000}, 42, 1.f, 0.02f);
  Tensor b = Tensor::randn({100000}, 42, 1.f, 0.02f);
  Tensor c = Tensor::randn({100000}, 43, 1.f, 0.02f);
  CHECK(a.to_vector() == b.to_vector());
  CHECK(a.to_vector() != c.to_vector());
  double m = 0, s = 0;
  for (float v : a.to_vector()) m += v;
  m /= 100000;
  for (float v : a.to_vector()) s += (v - m) * (v - m);
  s = std::sqrt(s / 100000);
  CHECK(m == doctest::Approx(1.0).epsilon(0.001));
  CHECK(s == doctest::Approx(0.02).epsilon(0.02));
  Tensor u = Tensor::uniform({10000}, 1, -2.f, 3.f);
  for (float v : u.to_vector()) CHECK((v >= -2.f && v < 3.f));
}
}
