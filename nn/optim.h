// nn/optim.h: Adam over one parameter slab (PyTorch's semantics, kernels/adam.h) and DRAEM's
// MultiStepLR schedule.
#pragma once

#include "nn/params.h"

namespace caf {

struct AdamConfig {
  double lr = 1e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
};

class Adam {
 public:
  Adam(ParamStore& params, AdamConfig cfg = {});
  void step();  // one fused update of the whole slab from its gradient slab
  void set_lr(double lr) { cfg_.lr = lr; }
  double lr() const { return cfg_.lr; }
  int64_t steps() const { return t_; }
  // State for checkpoints: first and second moments (slab layout) and the step count.
  const Tensor& exp_avg() const { return m_; }
  const Tensor& exp_avg_sq() const { return v_; }
  void set_step_count(int64_t t);  // after loading the moments into exp_avg()/exp_avg_sq()

 private:
  ParamStore& params_;
  AdamConfig cfg_;
  Tensor m_, v_;
  int64_t t_ = 0;
};

// lr * 0.2^(number of milestones reached); DRAEM's milestones are 80% and 90% of the epochs.
double multistep_lr(double base_lr, int64_t epoch, int64_t total_epochs, double gamma = 0.2);

}  // namespace caf
