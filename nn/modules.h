// nn/modules.h: the layers of DRAEM's two networks, as small structs over a ParamStore.
//
// A module registers its tensors under PyTorch state-dict names (so checkpoints open in PyTorch's
// tooling and weights can be exchanged) and keeps only their indices; forward() reads them from
// the store. Training vs inference mode is an argument, not hidden state.
#pragma once

#include <string>

#include "nn/ops.h"
#include "nn/params.h"

namespace caf {

// Conv2d(cin, cout, k, padding k/2) with bias. Initialisation as DRAEM (METHOD 2.3): weight
// N(0, 0.02); bias PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = cin*k*k.
struct Conv2d {
  int weight = -1, bias = -1;
  Conv2d() = default;
  Conv2d(ParamStore& s, const std::string& name, int64_t cin, int64_t cout, int64_t k = 3);
  Tensor operator()(const ParamStore& s, const Tensor& x) const;
};

// BatchNorm2d(c): weight N(1, 0.02), bias 0; running mean 0 and variance 1; momentum 0.1, eps 1e-5.
struct BatchNorm2d {
  int weight = -1, bias = -1, running_mean = -1, running_var = -1;
  BatchNorm2d() = default;
  BatchNorm2d(ParamStore& s, const std::string& name, int64_t c);
  Tensor operator()(const ParamStore& s, const Tensor& x, bool training) const;
  // relu(this(x)): the fused ops while fused_bn_relu() is on (kernels/runtime.h): in training mode
  // batchnorm_relu2d, in inference mode batchnorm_relu2d_eval (one pass when nothing is recorded).
  // x_bias: a convolution's bias still to add to x (bf16 activations, conv2d_prebias).
  Tensor with_relu(const ParamStore& s, const Tensor& x, bool training, const Tensor& x_bias = Tensor()) const;
};

// conv -> batch norm -> relu ("CBR"). With bf16 activations (bf16_activations_active(), in
// training or where nothing is recorded) the convolution hands its raw bf16 output and its bias to
// the fused batch norm + ReLU, and the block's output is bf16.
// The blocks take their input by value and let go of it once read (after the convolution; after
// the upsampling): handed over with std::move or as a temporary, an activation the backward keeps
// only as a recipe (recompute_activations()) is freed before the block's next op allocates, so at
// most two activations of a chain are alive at once, not every one of the expression.
struct ConvBnRelu {
  Conv2d conv;
  BatchNorm2d bn;
  ConvBnRelu() = default;
  ConvBnRelu(ParamStore& s, const std::string& conv_name, const std::string& bn_name, int64_t cin,
             int64_t cout);
  Tensor operator()(const ParamStore& s, Tensor x, bool training) const;
};

// Two CBRs, named like nn.Sequential(Conv, BN, ReLU, Conv, BN, ReLU): <name>.0/.1 and .3/.4.
struct DoubleBlock {
  ConvBnRelu a, b;
  DoubleBlock() = default;
  DoubleBlock(ParamStore& s, const std::string& name, int64_t cin, int64_t cmid, int64_t cout);
  Tensor operator()(const ParamStore& s, Tensor x, bool training) const;
};

// Bilinear x2 upsampling then a CBR, named like nn.Sequential(Upsample, Conv, BN, ReLU): .1/.2.
struct UpBlock {
  ConvBnRelu cbr;
  UpBlock() = default;
  UpBlock(ParamStore& s, const std::string& name, int64_t cin, int64_t cout);
  Tensor operator()(const ParamStore& s, Tensor x, bool training) const;
};

}  // namespace caf
