#include "nn/networks.h"

#include "kernels/error.h"

namespace caf {

double conv_flops(const std::vector<ConvLevel>& convs, int64_t h, int64_t w) {
  double f = 0;
  for (const auto& c : convs)
    f += 2.0 * 9 * double(c.cin) * double(c.cout) * double(h >> c.level) * double(w >> c.level);
  return f;
}

ReconstructiveNet::ReconstructiveNet(int64_t in_channels, int64_t out_channels, int64_t width,
                                     const std::string& prefix)
    : Network(width) {
  const int64_t w = width;
  const std::string e = prefix + ".encoder.", d = prefix + ".decoder.";
  const int64_t enc_out[5] = {w, 2 * w, 4 * w, 8 * w, 8 * w};
  int64_t cin = in_channels;
  for (int i = 0; i < 5; ++i) {
    enc_[i] = DoubleBlock(store_, e + "block" + std::to_string(i + 1), cin, enc_out[i], enc_out[i]);
    convs_.push_back({cin, enc_out[i], i});
    convs_.push_back({enc_out[i], enc_out[i], i});
    cin = enc_out[i];
  }
  // Decoder stage i: up (c -> c), then a double block c -> c -> c/2 (the last one keeps w).
  const int64_t stage_in[4] = {8 * w, 4 * w, 2 * w, w}, stage_out[4] = {4 * w, 2 * w, w, w};
  for (int i = 0; i < 4; ++i) {
    const std::string n = std::to_string(i + 1);
    up_[i] = UpBlock(store_, d + "up" + n, stage_in[i], stage_in[i]);
    dec_[i] = DoubleBlock(store_, d + "db" + n, stage_in[i], stage_in[i], stage_out[i]);
    const int64_t level = 3 - i;
    convs_.push_back({stage_in[i], stage_in[i], level});
    convs_.push_back({stage_in[i], stage_in[i], level});
    convs_.push_back({stage_in[i], stage_out[i], level});
  }
  out_ = Conv2d(store_, d + "fin_out.0", w, out_channels);
  convs_.push_back({w, out_channels, 0});
}

Tensor ReconstructiveNet::forward(const Tensor& x, bool training) const {
  CAF_REQUIRE_SHAPE(x.ndim() == 4 && x.dim(2) % 16 == 0 && x.dim(3) % 16 == 0,
                    "reconstructive network input must be NCHW with H, W divisible by 16, got " +
                        x.describe());
  Tensor h = enc_[0](store_, x, training);
  for (int i = 1; i < 5; ++i) h = enc_[i](store_, maxpool2d(h), training);
  for (int i = 0; i < 4; ++i) h = dec_[i](store_, up_[i](store_, h, training), training);
  return out_(store_, h);
}

DiscriminativeNet::DiscriminativeNet(int64_t in_channels, int64_t out_channels, int64_t width,
                                     const std::string& prefix)
    : Network(width) {
  const int64_t w = width;
  const std::string e = prefix + ".encoder_segment.", d = prefix + ".decoder_segment.";
  const int64_t enc_out[6] = {w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w};
  int64_t cin = in_channels;
  for (int i = 0; i < 6; ++i) {
    enc_[i] = DoubleBlock(store_, e + "block" + std::to_string(i + 1), cin, enc_out[i], enc_out[i]);
    convs_.push_back({cin, enc_out[i], i});
    convs_.push_back({enc_out[i], enc_out[i], i});
    cin = enc_out[i];
  }
  // Stage i upsamples the deeper features, concatenates encoder block 5 - i, and reduces.
  const char* up_names[5] = {"up_b", "up1", "up2", "up3", "up4"};
  const char* db_names[5] = {"db_b", "db1", "db2", "db3", "db4"};
  const int64_t up_in[5] = {8 * w, 8 * w, 4 * w, 2 * w, w}, up_out[5] = {8 * w, 4 * w, 2 * w, w, w};
  for (int i = 0; i < 5; ++i) {
    const int64_t skip = enc_out[4 - i];
    up_[i] = UpBlock(store_, d + up_names[i], up_in[i], up_out[i]);
    dec_[i] = DoubleBlock(store_, d + db_names[i], up_out[i] + skip, up_out[i], up_out[i]);
    const int64_t level = 4 - i;
    convs_.push_back({up_in[i], up_out[i], level});
    convs_.push_back({up_out[i] + skip, up_out[i], level});
    convs_.push_back({up_out[i], up_out[i], level});
  }
  out_ = Conv2d(store_, d + "fin_out.0", w, out_channels);
  convs_.push_back({w, out_channels, 0});
}

Tensor DiscriminativeNet::forward(const Tensor& x, bool training) const {
  CAF_REQUIRE_SHAPE(x.ndim() == 4 && x.dim(2) % 32 == 0 && x.dim(3) % 32 == 0,
                    "discriminative network input must be NCHW with H, W divisible by 32, got " +
                        x.describe());
  Tensor skips[6];
  skips[0] = enc_[0](store_, x, training);
  for (int i = 1; i < 6; ++i) skips[i] = enc_[i](store_, maxpool2d(skips[i - 1]), training);
  Tensor h = skips[5];
  for (int i = 0; i < 5; ++i)
    h = dec_[i](store_, concat_channels(up_[i](store_, h, training), skips[4 - i]), training);
  return out_(store_, h);
}

}  // namespace caf
