// nn/networks.h: DRAEM's two sub-networks (METHOD 2.1, 2.2) with configurable width and channels.
//
//   ReconstructiveNet R: encoder of five double blocks (w, 2w, 4w, 8w, 8w) with 2x2 max pooling
//     between them; a plain decoder (no skips) of four upsample+CBR / double-block pairs back to w;
//     a linear 3x3 output conv. At w = 128: 69,048,579 parameters.
//   DiscriminativeNet S: U-Net encoder of six double blocks (w, 2w, 4w, 8w, 8w, 8w); decoder of
//     upsample+CBR, concat with the matching encoder output (upsampled first), double block; a 3x3
//     output conv to 2 logits. At w = 64: 28,374,146 parameters.
// Tensor names follow the PyTorch state dict of DRAEM's modules under a prefix ("recon."/"discr.").
// Input height and width must be divisible by 16 (R) or 32 (S).
#pragma once

#include <string>
#include <vector>

#include "nn/modules.h"

namespace caf {

// A 3x3 convolution's channels and the pyramid level (resolution / 2^level) it runs at.
struct ConvLevel {
  int64_t cin, cout, level;
};
double conv_flops(const std::vector<ConvLevel>& convs, int64_t h, int64_t w);

// What both networks share: their parameter store, width and the list of their convolutions.
class Network {
 public:
  ParamStore& params() { return store_; }
  const ParamStore& params() const { return store_; }
  int64_t width() const { return width_; }
  // Multiply-adds x 2 of every convolution for one image of h x w (the analytic FLOP count).
  double conv_flops(int64_t h, int64_t w) const { return caf::conv_flops(convs_, h, w); }
  const std::vector<ConvLevel>& convs() const { return convs_; }

 protected:
  explicit Network(int64_t width) : width_(width) {}
  // Builders register a module's tensors and its convolutions together, so the FLOP count cannot
  // drift from the layers. level: the module runs at resolution / 2^level.
  DoubleBlock double_block(const std::string& name, int64_t cin, int64_t cmid, int64_t cout,
                           int64_t level);
  UpBlock up_block(const std::string& name, int64_t cin, int64_t cout, int64_t level);
  Conv2d output_conv(const std::string& name, int64_t cin, int64_t cout);
  // Encoder blocks "<prefix>block1..": block i runs at level i, cin -> widths[i] -> widths[i].
  void encoder(const std::string& prefix, int64_t cin, const int64_t* widths, int count,
               DoubleBlock* blocks);
  ParamStore store_;
  int64_t width_;
  std::vector<ConvLevel> convs_;
};

class ReconstructiveNet : public Network {
 public:
  ReconstructiveNet(int64_t in_channels = 3, int64_t out_channels = 3, int64_t width = 128,
                    const std::string& prefix = "recon");
  Tensor forward(const Tensor& x, bool training) const;

 private:
  DoubleBlock enc_[5];
  UpBlock up_[4];
  DoubleBlock dec_[4];
  Conv2d out_;
};

class DiscriminativeNet : public Network {
 public:
  DiscriminativeNet(int64_t in_channels = 6, int64_t out_channels = 2, int64_t width = 64,
                    const std::string& prefix = "discr");
  Tensor forward(const Tensor& x, bool training) const;

 private:
  DoubleBlock enc_[6];
  UpBlock up_[5];
  DoubleBlock dec_[5];
  Conv2d out_;
};

}  // namespace caf
