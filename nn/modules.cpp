#include "nn/modules.h"

#include <cmath>
#include <utility>

#include "kernels/error.h"
#include "kernels/runtime.h"
#include "nn/autograd.h"

namespace caf {

Conv2d::Conv2d(ParamStore& s, const std::string& name, int64_t cin, int64_t cout, int64_t k) {
  const float bound = 1.f / std::sqrt(float(cin * k * k));
  weight = s.add_param(name + ".weight", {cout, cin, k, k}, {Init::Kind::normal, 0.f, 0.02f});
  bias = s.add_param(name + ".bias", {cout}, {Init::Kind::uniform, -bound, bound});
}

Tensor Conv2d::operator()(const ParamStore& s, const Tensor& x) const {
  return conv2d(x, s.param(weight), s.param(bias));
}

BatchNorm2d::BatchNorm2d(ParamStore& s, const std::string& name, int64_t c) {
  weight = s.add_param(name + ".weight", {c}, {Init::Kind::normal, 1.f, 0.02f});
  bias = s.add_param(name + ".bias", {c}, {Init::Kind::constant, 0.f, 0.f});
  running_mean = s.add_buffer(name + ".running_mean", {c}, 0.f);
  running_var = s.add_buffer(name + ".running_var", {c}, 1.f);
}

Tensor BatchNorm2d::operator()(const ParamStore& s, const Tensor& x, bool training) const {
  BatchNormState st{s.buffer(running_mean), s.buffer(running_var), 0.1f, 1e-5f};
  return batchnorm2d(x, s.param(weight), s.param(bias), st, training);
}

Tensor BatchNorm2d::with_relu(const ParamStore& s, const Tensor& x, bool training, const Tensor& x_bias) const {
  if (!fused_bn_relu()) {
    CAF_REQUIRE(!x_bias.defined(), "batch norm + ReLU: a pending bias (bf16 activations) needs the fused op");
    return relu((*this)(s, x, training));
  }
  BatchNormState st{s.buffer(running_mean), s.buffer(running_var), 0.1f, 1e-5f};
  return training ? batchnorm_relu2d(x, s.param(weight), s.param(bias), st, x_bias)
                  : batchnorm_relu2d_eval(x, s.param(weight), s.param(bias), st, x_bias);
}

ConvBnRelu::ConvBnRelu(ParamStore& s, const std::string& conv_name, const std::string& bn_name,
                       int64_t cin, int64_t cout)
    : conv(s, conv_name, cin, cout), bn(s, bn_name, cout) {}

Tensor ConvBnRelu::operator()(const ParamStore& s, Tensor x, bool training) const {
  if (bf16_activations_active() && (training || !grad_enabled())) {
    const Tensor& b = s.param(conv.bias);
    const Tensor raw = conv2d_prebias(x, s.param(conv.weight), b);
    x = Tensor();  // read: freed here unless the caller or the backward holds it
    return bn.with_relu(s, raw, training, b);
  }
  const Tensor y = conv(s, x);
  x = Tensor();
  return bn.with_relu(s, y, training);
}

DoubleBlock::DoubleBlock(ParamStore& s, const std::string& name, int64_t cin, int64_t cmid,
                         int64_t cout)
    : a(s, name + ".0", name + ".1", cin, cmid), b(s, name + ".3", name + ".4", cmid, cout) {}

Tensor DoubleBlock::operator()(const ParamStore& s, Tensor x, bool training) const {
  return b(s, a(s, std::move(x), training), training);
}

UpBlock::UpBlock(ParamStore& s, const std::string& name, int64_t cin, int64_t cout)
    : cbr(s, name + ".1", name + ".2", cin, cout) {}

Tensor UpBlock::operator()(const ParamStore& s, Tensor x, bool training) const {
  Tensor up = upsample_bilinear2x(x);
  x = Tensor();
  return cbr(s, std::move(up), training);
}

}  // namespace caf
