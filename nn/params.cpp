#include "nn/params.h"

#include "kernels/error.h"
#include "kernels/host_rng.h"

namespace caf {

int ParamStore::add_param(const std::string& name, const Dims& shape, Init init) {
  CAF_REQUIRE(!finalized(), "add_param('" + name + "') after finalize()");
  specs_.push_back({name, shape, init});
  names_.push_back(name);
  return int(specs_.size()) - 1;
}

int ParamStore::add_buffer(const std::string& name, const Dims& shape, float value) {
  CAF_REQUIRE(!finalized(), "add_buffer('" + name + "') after finalize()");
  buffer_specs_.push_back({name, shape, {Init::Kind::constant, value, 0}});
  return int(buffer_specs_.size()) - 1;
}

int64_t ParamStore::num_params() const {
  int64_t n = 0;
  for (const auto& s : specs_) n += dims_numel(s.shape);
  return n;
}

int64_t ParamStore::num_buffer_values() const {
  int64_t n = 0;
  for (const auto& s : buffer_specs_) n += dims_numel(s.shape);
  return n;
}

Device ParamStore::device() const { return params_.device(); }

namespace {
std::vector<float> initial_values(const Dims& shape, const Init& init, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(dims_numel(shape)), init.a);
  HostRng rng(seed);
  if (init.kind == Init::Kind::normal)
    for (auto& x : v) x = float(init.a + init.b * rng.normal());
  else if (init.kind == Init::Kind::uniform)
    for (auto& x : v) x = float(rng.uniform(init.a, init.b));
  return v;
}

// One slab holding `specs` back to back; returns the views.
std::vector<Tensor> carve(const Tensor& slab, const std::vector<Dims>& shapes) {
  std::vector<Tensor> views;
  int64_t offset = 0;
  for (const auto& s : shapes) {
    views.push_back(Tensor::view_of(slab.storage(), offset, s, DType::f32, slab.device()));
    offset += dims_numel(s);
  }
  return views;
}
}  // namespace

void ParamStore::finalize(Device device, uint64_t seed) {
  CAF_REQUIRE(!finalized(), "finalize() called twice");
  std::vector<Dims> shapes, bshapes;
  std::vector<float> host, bhost;
  for (size_t i = 0; i < specs_.size(); ++i) {
    shapes.push_back(specs_[i].shape);
    auto v = initial_values(specs_[i].shape, specs_[i].init, seed * 1000003u + i);
    host.insert(host.end(), v.begin(), v.end());
  }
  for (const auto& s : buffer_specs_) {
    bshapes.push_back(s.shape);
    auto v = initial_values(s.shape, s.init, 0);
    bhost.insert(bhost.end(), v.begin(), v.end());
  }
  params_ = Tensor::from_vector({int64_t(host.size())}, host, device);
  grads_ = Tensor::zeros({int64_t(host.size())}, DType::f32, device);
  buffers_ = Tensor::from_vector({int64_t(bhost.size())}, bhost, device);
  views_ = carve(params_, shapes);
  std::vector<Tensor> gviews = carve(grads_, shapes);
  for (size_t i = 0; i < views_.size(); ++i) {
    views_[i].set_requires_grad(true);
    views_[i].set_grad(gviews[i]);
  }
  buffer_views_ = carve(buffers_, bshapes);
}

void ParamStore::zero_grad() {
  if (grads_.defined()) grads_.zero_();
}

std::vector<std::pair<std::string, Tensor>> ParamStore::named_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < views_.size(); ++i) out.emplace_back(specs_[i].name, views_[i]);
  for (size_t i = 0; i < buffer_views_.size(); ++i)
    out.emplace_back(buffer_specs_[i].name, buffer_views_[i]);
  return out;
}

}  // namespace caf
