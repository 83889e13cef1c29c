// nn/optim.h: Adam over one parameter slab (PyTorch's semantics, kernels/adam.h) and DRAEM's
// MultiStepLR schedule.
#pragma once

#include "kernels/adam.h"
#include "nn/params.h"

namespace caf {

struct AdamConfig {
  double lr = 1e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
};

// The step count and the step's scalars live on the parameters' device (kernels/adam.h), so
// step() launches two kernels and never waits, and a CUDA graph that captured it replays as a new
// step each time. set_lr / set_step_count write the device copy (one small upload, only when the
// value changes); steps() reads it back.
class Adam {
 public:
  Adam(ParamStore& params, AdamConfig cfg = {});
  void step();  // one fused update of the whole slab from its gradient slab
  void set_lr(double lr);
  double lr() const { return cfg_.lr; }
  int64_t steps() const;  // reads the device's count
  // State for checkpoints: first and second moments (slab layout) and the step count.
  const Tensor& exp_avg() const { return m_; }
  const Tensor& exp_avg_sq() const { return v_; }
  void set_step_count(int64_t t);  // after loading the moments into exp_avg()/exp_avg_sq()

 private:
  ParamStore& params_;
  AdamConfig cfg_;
  Tensor m_, v_;
  Buffer state_;  // one AdamState on the parameters' device
  void upload_state(const AdamState& st);
  AdamState download_state() const;
};

// lr * 0.2^(number of milestones reached); DRAEM's milestones are 80% and 90% of the epochs.
double multistep_lr(double base_lr, int64_t epoch, int64_t total_epochs, double gamma = 0.2);

}  // namespace caf
