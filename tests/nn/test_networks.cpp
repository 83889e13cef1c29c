#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "kernels/error.h"
#include "kernels/memory.h"
#include "kernels/profile.h"
#include "kernels/runtime.h"
#include "nn/networks.h"
#include "tests/test_util.h"

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

// The blocks take their input by value and let go of it once read (nn/modules.h). Watched through
// the CPU allocator's cache: a block that has let go of its input hands that block to the next
// allocation of its size class, which the tests make the block's own output (sizes no other test
// uses, the cache emptied first). With recompute_activations() off the convolution keeps its
// input, so the output must get another block: what is let go is what nothing else holds.
TEST_CASE("modules: blocks let go of an input handed over once they have read it") {
  test::RuntimeSwitches keep;
  set_precision(Precision::fp32);
  set_bf16_activations(false);
  set_fused_bn_relu(true);
  for (bool recompute : {true, false}) {
    CAPTURE(recompute);
    set_recompute_activations(recompute);
    ParamStore store;
    ConvBnRelu cbr(store, "c.0", "c.1", 8, 8);
    DoubleBlock dbl(store, "d", 8, 8, 8);
    UpBlock up(store, "u", 8, 8);
    store.finalize(Device::cpu, 5);
    allocator(Device::cpu).empty_cache();
    const Dims shape{2, 8, 37, 41};  // 97,088 bytes: the 97,280-byte class
    const Tensor leaf = Tensor::uniform(shape, 6, 0.f, 1.f, Device::cpu);  // kept by the convolution
    // A block's output has a recipe, so the convolution reading it keeps none of it (recompute):
    // handed over, it is free before the batch norm makes the output, which takes its block.
    Tensor x = cbr(store, leaf, true);
    const void* px = x.data<float>();
    Tensor y = cbr(store, std::move(x), true);
    CHECK((y.data<float>() == px) == recompute);
    // Two in a row: the input, then the first one's output, each let go once read.
    Tensor mid = cbr(store, leaf, true);
    const void* pm = mid.data<float>();
    Tensor z = dbl(store, std::move(mid), true);
    CHECK((z.data<float>() == pm) == recompute);
    // The upsampling block lets go of its input after the upsampling: from then on (its
    // convolution and batch norm, where its peak is) the input is not among the bytes in use.
    Allocator& a = allocator(Device::cpu);
    a.set_census(true);
    std::optional<profile::Scope> label("the input");
    Tensor small = Tensor::uniform({2, 8, 19, 21}, 8, 0.f, 1.f, Device::cpu);
    label.reset();
    a.reset_peak();
    Tensor u = up(store, std::move(small), true);
    CHECK(u.shape() == Dims{2, 8, 38, 42});
    bool input_at_peak = false, conv_at_peak = false;
    for (const CensusRow& r : a.census().rows) {
      input_at_peak |= r.label == "the input";
      conv_at_peak |= r.label.find("conv2d") != std::string::npos;
    }
    a.set_census(false);
    CHECK(conv_at_peak);  // the peak is the convolution's or later
    CHECK_FALSE(input_at_peak);  // the upsampling's backward needs no input: let go either way
  }
}

TEST_CASE("networks: after a training forward only what the backward needs is alive") {
  test::RuntimeSwitches keep;
  set_precision(Precision::fp32);
  set_bf16_activations(false);
  set_fused_bn_relu(true);
  set_recompute_activations(true);
  Allocator& a = allocator(Device::cpu);
  a.set_census(true);
  std::optional<profile::Scope> phase("forward");
  const test::SmallNets nets(Device::cpu, 2, 1);  // both networks at width 8, 32x32, forward
  phase.reset();
  a.reset_peak();  // the census's rows are now what is in use
  std::map<std::string, std::pair<int64_t, int64_t>> held;  // label -> bytes asked for, blocks
  for (const CensusRow& row : a.census().rows)
    if (row.label != "before the census" && row.label != "forward")  // not an op's: parameters, x
      held[row.label] = {row.requested, row.blocks};
  a.set_census(false);
  // What the backward keeps, counted from the layer lists (N = 2, 32x32, fp32, recompute on):
  // each convolution's output (its batch norm's input; the last ones are rec and logits), each
  // batch norm's mean and inverse deviation, each pooling's winners (one byte per output), and
  // S's first input (the concatenation of x and rec, which S's first convolution reads).
  int64_t conv_bytes = 0, convs = 0, bn_bytes = 0, bns = 0;
  for (const auto* net : {static_cast<const Network*>(&nets.r), static_cast<const Network*>(&nets.s)}) {
    const auto& list = net->convs();
    for (size_t i = 0; i < list.size(); ++i) {
      const int64_t side = 32 >> list[i].level;
      conv_bytes += 2 * list[i].cout * side * side * 4;
      ++convs;
      if (i + 1 < list.size()) {  // the output convolution has no batch norm
        bn_bytes += 2 * list[i].cout * 4;
        bns += 2;
      }
    }
  }
  const int64_t pooled = 2 * (8 * 16 * 16 + 16 * 8 * 8 + 32 * 4 * 4 + 64 * 2 * 2) +              // R
                         2 * (8 * 16 * 16 + 16 * 8 * 8 + 32 * 4 * 4 + 64 * 2 * 2 + 64 * 1 * 1);  // S
  CHECK(held["forward · fwd conv2d"] == std::make_pair(conv_bytes, convs));
  CHECK(held["forward · fwd batchnorm_relu2d_train"] == std::make_pair(bn_bytes, bns));
  CHECK(held["forward · fwd maxpool2d"] == std::make_pair(pooled, int64_t(9)));
  CHECK(held["forward · fwd concat_channels"] == std::make_pair(int64_t(2 * 6 * 32 * 32 * 4), int64_t(1)));
  CHECK(held.size() == 4);  // nothing else: no activation, upsampling or concatenation of S's
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
