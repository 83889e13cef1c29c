#include <doctest/doctest.h>

#include <cmath>

#include "kernels/error.h"
#include "nn/networks.h"

using namespace caf;

TEST_SUITE("nn") {
TEST_CASE("networks: parameter counts at the paper's widths (METHOD 2.1, 2.2)") {
  CHECK(ReconstructiveNet(3, 3, 128).params().num_params() == 69'048'579);
  CHECK(DiscriminativeNet(6, 2, 64).params().num_params() == 28'374'146);
}

TEST_CASE("networks: the conv list behind the FLOP count accounts for every parameter") {
  auto check = [](const auto& net, int64_t out_channels) {
    int64_t n = 0;
    for (const auto& c : net.convs()) n += c.cin * c.cout * 9 + c.cout + 2 * c.cout;  // conv + BN
    CHECK(n - 2 * out_channels == net.params().num_params());  // the output conv has no BN
  };
  check(ReconstructiveNet(3, 3, 128), 3);
  check(DiscriminativeNet(6, 2, 64), 2);
  // One 3x3 conv 3 -> 8 at 32x32: 2 * 9 * 3 * 8 * 1024 FLOPs.
  CHECK(conv_flops({{3, 8, 0}}, 32, 32) == 2.0 * 9 * 3 * 8 * 1024);
  CHECK(conv_flops({{3, 8, 2}}, 32, 32) == 2.0 * 9 * 3 * 8 * 64);
}

TEST_CASE("networks: state-dict names, shapes and forward shapes at reduced width") {
  ReconstructiveNet r(3, 3, 8);
  DiscriminativeNet s(6, 2, 4);
  r.params().finalize(Device::cpu, 1);
  s.params().finalize(Device::cpu, 2);
  auto names = r.params().named_tensors();
  CHECK(names.front().first == "recon.encoder.block1.0.weight");
  CHECK(names.front().second.shape() == Dims{8, 3, 3, 3});
  bool found = false;
  for (auto& [n, t] : s.params().named_tensors())
    if (n == "discr.decoder_segment.db_b.0.weight") {
      found = true;
      CHECK(t.shape() == Dims{32, 64, 3, 3});  // (8w) out, (8w + 8w) in
    }
  CHECK(found);
  Tensor x = Tensor::uniform({2, 3, 32, 32}, 3, 0, 1);
  Tensor rec = r.forward(x, true);
  CHECK(rec.shape() == Dims{2, 3, 32, 32});
  Tensor logits = s.forward(concat_channels(x, rec), true);
  CHECK(logits.shape() == Dims{2, 2, 32, 32});
  CHECK_THROWS_AS(s.forward(Tensor::zeros({1, 6, 48, 48}), true), ShapeError);
}

TEST_CASE("networks: initialisation follows DRAEM (conv N(0, 0.02), BN weight N(1, 0.02))") {
  ReconstructiveNet r(3, 3, 16);
  r.params().finalize(Device::cpu, 7);
  auto stats = [](const std::vector<float>& v) {
    double m = 0, sd = 0;
    for (float x : v) m += x;
    m /= double(v.size());
    for (float x : v) sd += (x - m) * (x - m);
    return std::pair<double, double>{m, std::sqrt(sd / double(v.size()))};
  };
  for (auto& [name, t] : r.params().named_tensors()) {
    if (name == "recon.encoder.block3.0.weight") {  // 64x32x3x3 conv weights
      auto [m, sd] = stats(t.to_vector());
      CHECK(std::fabs(m) < 1e-3);
      CHECK(sd == doctest::Approx(0.02).epsilon(0.03));
    } else if (name == "recon.encoder.block3.1.weight") {  // 64 batch-norm weights
      auto [m, sd] = stats(t.to_vector());
      CHECK(std::fabs(m - 1) < 0.01);
      CHECK(sd == doctest::Approx(0.02).epsilon(0.3));
    } else if (name == "recon.encoder.block3.0.bias") {  // U(+-1/sqrt(32*9))
      for (float v : t.to_vector()) CHECK(std::fabs(v) <= 1 / std::sqrt(288.f));
    } else if (name == "recon.encoder.block3.1.bias") {
      for (float v : t.to_vector()) CHECK(v == 0.f);
    }
  }
}
}
