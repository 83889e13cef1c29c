#include "nn/networks.h"

#include <utility>

#include "kernels/error.h"

namespace caf {

double conv_flops(const std::vector<ConvLevel>& convs, int64_t h, int64_t w) {
  double f = 0;
  for (const auto& c : convs)
    f += 2.0 * 9 * double(c.cin) * double(c.cout) * double(h >> c.level) * double(w >> c.level);
  return f;
}

DoubleBlock Network::double_block(const std::string& name, int64_t cin, int64_t cmid, int64_t cout,
                                  int64_t level) {
  convs_.push_back({cin, cmid, level});
  convs_.push_back({cmid, cout, level});
  return DoubleBlock(store_, name, cin, cmid, cout);
}

UpBlock Network::up_block(const std::string& name, int64_t cin, int64_t cout, int64_t level) {
  convs_.push_back({cin, cout, level});
  return UpBlock(store_, name, cin, cout);
}

Conv2d Network::output_conv(const std::string& name, int64_t cin, int64_t cout) {
  convs_.push_back({cin, cout, 0});
  return Conv2d(store_, name, cin, cout);
}

void Network::encoder(const std::string& prefix, int64_t cin, const int64_t* widths, int count,
                      DoubleBlock* blocks) {
  for (int i = 0; i < count; ++i) {
    blocks[i] = double_block(prefix + "block" + std::to_string(i + 1), cin, widths[i], widths[i], i);
    cin = widths[i];
  }
}

ReconstructiveNet::ReconstructiveNet(int64_t in_channels, int64_t out_channels, int64_t width,
                                     const std::string& prefix)
    : Network(width) {
  const int64_t w = width;
  const std::string d = prefix + ".decoder.";
  const int64_t enc_out[5] = {w, 2 * w, 4 * w, 8 * w, 8 * w};
  encoder(prefix + ".encoder.", in_channels, enc_out, 5, enc_);
  // Decoder stage i: up (c -> c), then a double block c -> c -> c/2 (the last one keeps w).
  const int64_t stage_in[4] = {8 * w, 4 * w, 2 * w, w}, stage_out[4] = {4 * w, 2 * w, w, w};
  for (int i = 0; i < 4; ++i) {
    const std::string n = std::to_string(i + 1);
    up_[i] = up_block(d + "up" + n, stage_in[i], stage_in[i], 3 - i);
    dec_[i] = double_block(d + "db" + n, stage_in[i], stage_in[i], stage_out[i], 3 - i);
  }
  out_ = output_conv(d + "fin_out.0", w, out_channels);
}

Tensor ReconstructiveNet::forward(const Tensor& x, bool training) const {
  CAF_REQUIRE_SHAPE(x.ndim() == 4 && x.dim(2) % 16 == 0 && x.dim(3) % 16 == 0,
                    "reconstructive network input must be NCHW with H, W divisible by 16, got " +
                        x.describe());
  // Each activation is handed over (std::move) to the op that reads it last, so it is freed once
  // read (nn/modules.h): the backward keeps recipes, not activations (recompute_activations()).
  Tensor h = enc_[0](store_, x, training);
  for (int i = 1; i < 5; ++i) {
    Tensor pooled = maxpool2d(h);
    h = Tensor();
    h = enc_[i](store_, std::move(pooled), training);
  }
  for (int i = 0; i < 4; ++i) h = dec_[i](store_, up_[i](store_, std::move(h), training), training);
  return out_(store_, h);
}

DiscriminativeNet::DiscriminativeNet(int64_t in_channels, int64_t out_channels, int64_t width,
                                     const std::string& prefix)
    : Network(width) {
  const int64_t w = width;
  const std::string d = prefix + ".decoder_segment.";
  const int64_t enc_out[6] = {w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w};
  encoder(prefix + ".encoder_segment.", in_channels, enc_out, 6, enc_);
  // Stage i upsamples the deeper features, concatenates encoder block 5 - i, and reduces.
  const char* up_names[5] = {"up_b", "up1", "up2", "up3", "up4"};
  const char* db_names[5] = {"db_b", "db1", "db2", "db3", "db4"};
  const int64_t up_in[5] = {8 * w, 8 * w, 4 * w, 2 * w, w}, up_out[5] = {8 * w, 4 * w, 2 * w, w, w};
  for (int i = 0; i < 5; ++i) {
    const int64_t skip = enc_out[4 - i];
    up_[i] = up_block(d + up_names[i], up_in[i], up_out[i], 4 - i);
    dec_[i] = double_block(d + db_names[i], up_out[i] + skip, up_out[i], up_out[i], 4 - i);
  }
  out_ = output_conv(d + "fin_out.0", w, out_channels);
}

Tensor DiscriminativeNet::forward(const Tensor& x, bool training) const {
  CAF_REQUIRE_SHAPE(x.ndim() == 4 && x.dim(2) % 32 == 0 && x.dim(3) % 32 == 0,
                    "discriminative network input must be NCHW with H, W divisible by 32, got " +
                        x.describe());
  Tensor skips[6];
  skips[0] = enc_[0](store_, x, training);
  for (int i = 1; i < 6; ++i) skips[i] = enc_[i](store_, maxpool2d(skips[i - 1]), training);
  // As in R, each activation is handed over to the op that reads it last, and each skip is let go
  // once concatenated (max pooling keeps only its winners' positions, so nothing else holds it):
  // the last stage, the largest, runs without the deeper stages' activations.
  Tensor h = std::move(skips[5]);
  for (int i = 0; i < 5; ++i) {
    Tensor up = up_[i](store_, std::move(h), training);
    Tensor cat = concat_channels(up, skips[4 - i]);
    up = Tensor();
    skips[4 - i] = Tensor();
    h = dec_[i](store_, std::move(cat), training);
  }
  return out_(store_, h);
}

}  // namespace caf
