#include "nn/optim.h"

#include "kernels/adam.h"
#include "kernels/error.h"

namespace caf {

Adam::Adam(ParamStore& params, AdamConfig cfg) : params_(params), cfg_(cfg) {
  CAF_REQUIRE(params.finalized(), "Adam needs finalized parameters");
  const Tensor& p = params.params_flat();
  m_ = Tensor::zeros(p.shape(), DType::f32, p.device());
  v_ = Tensor::zeros(p.shape(), DType::f32, p.device());
}

void Adam::step() {
  ++t_;
  const Tensor &p = params_.params_flat(), &g = params_.grads_flat();
  AdamStep s = adam_step_scalars(cfg_.lr, cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay, t_);
  adam_update<float>(p.device(), p.data<float>(), m_.data<float>(), v_.data<float>(),
                     g.data<float>(), p.numel(), s);
}

void Adam::set_step_count(int64_t t) {
  CAF_REQUIRE(t >= 0, "negative Adam step count");
  t_ = t;
}

double multistep_lr(double base_lr, int64_t epoch, int64_t total_epochs, double gamma) {
  double lr = base_lr;
  for (double f : {0.8, 0.9})
    if (epoch >= int64_t(f * double(total_epochs))) lr *= gamma;
  return lr;
}

}  // namespace caf
