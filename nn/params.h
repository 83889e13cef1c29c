// nn/params.h: the parameters and buffers of one network, each kind in one contiguous slab.
//
// Modules declare their tensors first (name, shape, initialiser) and get an index; finalize()
// then allocates one slab for the parameters, one for their gradients and one for the buffers
// (batch-norm running statistics), and hands out views. So Adam is one fused kernel over a flat
// array, zeroing gradients is one fill, and a checkpoint is a walk over named views.
#pragma once

#include <string>
#include <vector>

#include "nn/tensor.h"

namespace caf {

struct Init {
  enum class Kind { normal, uniform, constant } kind = Kind::constant;  // scoped: caf::uniform is a function
  float a = 0, b = 0;  // normal: mean, std; uniform: lo, hi; constant: value
};

class ParamStore {
 public:
  int add_param(const std::string& name, const Dims& shape, Init init);
  int add_buffer(const std::string& name, const Dims& shape, float value);
  // Allocates the slabs on `device` and initialises every tensor from `seed` (each tensor from
  // its own stream, so adding a tensor does not change the others' values).
  void finalize(Device device, uint64_t seed);
  bool finalized() const { return params_.defined(); }

  const Tensor& param(int i) const { return views_[size_t(i)]; }
  const Tensor& buffer(int i) const { return buffer_views_[size_t(i)]; }
  const Tensor& params_flat() const { return params_; }
  const Tensor& grads_flat() const { return grads_; }
  int64_t num_params() const;  // known before finalize()
  int64_t num_buffer_values() const;
  Device device() const;

  void zero_grad();
  // Every parameter then every buffer, with its name, in declaration order.
  std::vector<std::pair<std::string, Tensor>> named_tensors() const;
  const std::vector<std::string>& param_names() const { return names_; }

 private:
  struct Spec {
    std::string name;
    Dims shape;
    Init init;
  };
  std::vector<Spec> specs_, buffer_specs_;
  std::vector<std::string> names_;
  std::vector<Tensor> views_, buffer_views_;
  Tensor params_, grads_, buffers_;
};

}  // namespace caf
