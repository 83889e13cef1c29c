#include "nn/optim.h"

#include "kernels/adam.h"
#include "kernels/error.h"
#include "kernels/memory.h"

namespace caf {

Adam::Adam(ParamStore& params, AdamConfig cfg) : params_(params), cfg_(cfg) {
  CAF_REQUIRE(params.finalized(), "Adam needs finalized parameters");
  const Tensor& p = params.params_flat();
  m_ = Tensor::zeros(p.shape(), DType::f32, p.device());
  v_ = Tensor::zeros(p.shape(), DType::f32, p.device());
  state_ = Buffer(p.device(), sizeof(AdamState));
  AdamState st;
  st.lr = cfg_.lr;
  st.beta1 = cfg_.beta1;
  st.beta2 = cfg_.beta2;
  st.eps = cfg_.eps;
  st.weight_decay = cfg_.weight_decay;
  upload_state(st);
}

void Adam::upload_state(const AdamState& st) {
  copy_bytes(state_.device(), state_.data(), Device::cpu, &st, sizeof st);
}

AdamState Adam::download_state() const {
  AdamState st;
  copy_bytes(Device::cpu, &st, state_.device(), state_.data(), sizeof st);
  return st;
}

void Adam::step() {
  const Tensor &p = params_.params_flat(), &g = params_.grads_flat();
  auto* st = static_cast<AdamState*>(state_.data());
  adam_advance<float>(p.device(), st);
  adam_update<float>(p.device(), p.data<float>(), m_.data<float>(), v_.data<float>(),
                     g.data<float>(), p.numel(), st);
}

void Adam::set_lr(double lr) {
  if (lr == cfg_.lr) return;  // the trainer sets it every epoch: upload only a change
  cfg_.lr = lr;
  AdamState st = download_state();
  st.lr = lr;
  upload_state(st);
}

int64_t Adam::steps() const { return download_state().t; }

void Adam::set_step_count(int64_t t) {
  CAF_REQUIRE(t >= 0, "negative Adam step count");
  AdamState st = download_state();
  st.t = t;
  upload_state(st);
}

double multistep_lr(double base_lr, int64_t epoch, int64_t total_epochs, double gamma) {
  double lr = base_lr;
  for (double f : {0.8, 0.9})
    if (epoch >= int64_t(f * double(total_epochs))) lr *= gamma;
  return lr;
}

}  // namespace caf
