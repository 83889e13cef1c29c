#include "nn/tensor.h"

#include <cstring>

#include "kernels/error.h"
#include "kernels/host_rng.h"
#include "nn/autograd.h"

namespace caf {

size_t dtype_size(DType t) { return t == DType::f32 ? 4 : t == DType::bf16 ? 2 : 1; }
const char* dtype_name(DType t) { return t == DType::f32 ? "f32" : t == DType::bf16 ? "bf16" : "u8"; }

std::string dims_str(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

int64_t dims_numel(const Dims& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

namespace {
void check_dims(const Dims& shape) {
  CAF_REQUIRE_SHAPE(shape.size() <= 4, "tensors have at most 4 dimensions, got " + dims_str(shape));
  for (int64_t v : shape)
    CAF_REQUIRE_SHAPE(v >= 0, "negative extent in shape " + dims_str(shape));
}
}  // namespace

Tensor Tensor::empty(const Dims& shape, DType dtype, Device device) {
  check_dims(shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  impl->storage = std::make_shared<Storage>();
  impl->storage->buffer = Buffer(device, size_t(dims_numel(shape)) * dtype_size(dtype));
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Dims& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::full(const Dims& shape, float value, Device device) {
  Tensor t = empty(shape, DType::f32, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const Dims& shape, const std::vector<float>& values, Device device) {
  CAF_REQUIRE_SHAPE(int64_t(values.size()) == dims_numel(shape),
                    std::to_string(values.size()) + " values for shape " + dims_str(shape));
  Tensor t = empty(shape, DType::f32, device);
  copy_bytes(device, t.data<float>(), Device::cpu, values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_bytes(const Dims& shape, const std::vector<uint8_t>& values, Device device) {
  CAF_REQUIRE_SHAPE(int64_t(values.size()) == dims_numel(shape),
                    std::to_string(values.size()) + " values for shape " + dims_str(shape));
  Tensor t = empty(shape, DType::u8, device);
  copy_bytes(device, t.data<uint8_t>(), Device::cpu, values.data(), values.size());
  return t;
}

Tensor Tensor::randn(const Dims& shape, uint64_t seed, float mean, float stddev, Device device) {
  HostRng rng(seed);
  std::vector<float> v(size_t(dims_numel(shape)));
  for (auto& x : v) x = float(mean + stddev * rng.normal());
  return from_vector(shape, v, device);
}

Tensor Tensor::uniform(const Dims& shape, uint64_t seed, float lo, float hi, Device device) {
  HostRng rng(seed);
  std::vector<float> v(size_t(dims_numel(shape)));
  for (auto& x : v) x = float(rng.uniform(lo, hi));
  return from_vector(shape, v, device);
}

Tensor Tensor::view_of(const std::shared_ptr<Storage>& storage, int64_t offset, const Dims& shape,
                       DType dtype, Device device) {
  check_dims(shape);
  CAF_REQUIRE(storage && storage->buffer.device() == device, "view of storage on another device");
  CAF_REQUIRE_SHAPE(offset >= 0 && size_t(offset + dims_numel(shape)) * dtype_size(dtype) <=
                                       storage->buffer.bytes(),
                    "view " + dims_str(shape) + " at offset " + std::to_string(offset) +
                        " runs past its storage");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  impl->storage = storage;
  impl->offset = offset;
  return Tensor(std::move(impl));
}

const TensorImpl& Tensor::checked() const {
  CAF_REQUIRE(impl_ != nullptr, "use of an undefined tensor");
  return *impl_;
}

const Dims& Tensor::shape() const { return checked().shape; }
int64_t Tensor::dim(int i) const {
  const Dims& s = shape();
  int k = i < 0 ? int(s.size()) + i : i;
  CAF_REQUIRE_SHAPE(k >= 0 && k < int(s.size()), "dimension " + std::to_string(i) + " of " + dims_str(s));
  return s[size_t(k)];
}
int64_t Tensor::numel() const { return dims_numel(shape()); }
DType Tensor::dtype() const { return checked().dtype; }
Device Tensor::device() const { return checked().device; }
const std::shared_ptr<Storage>& Tensor::storage() const { return checked().storage; }
int64_t Tensor::offset() const { return checked().offset; }

Shape4 Tensor::shape4() const {
  const Dims& s = shape();
  int64_t v[4] = {1, 1, 1, 1};
  for (size_t i = 0; i < s.size(); ++i) v[4 - s.size() + i] = s[i];
  return {v[0], v[1], v[2], v[3]};
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + dims_str(shape()) + (channels_last() ? " channels-last" : "") + " on " +
         device_name(device());
}

bool Tensor::channels_last() const { return checked().channels_last; }
Tensor& Tensor::set_channels_last(bool on) {
  CAF_REQUIRE_SHAPE(!on || ndim() == 4, "channels-last needs a 4-D tensor, got " + describe());
  impl_->channels_last = on;
  return *this;
}

template <class T>
T* Tensor::data() const {
  const TensorImpl& t = checked();
  constexpr DType want = std::is_same_v<T, float>      ? DType::f32
                         : std::is_same_v<T, uint16_t> ? DType::bf16
                                                       : DType::u8;
  CAF_REQUIRE(t.dtype == want, std::string("tensor is ") + dtype_name(t.dtype) + ", accessed as " +
                                   dtype_name(want));
  return static_cast<T*>(t.storage->buffer.data()) + t.offset;
}
template float* Tensor::data<float>() const;
template uint8_t* Tensor::data<uint8_t>() const;
template uint16_t* Tensor::data<uint16_t>() const;

namespace {
void* raw(const Tensor& t) {
  return static_cast<char*>(t.storage()->buffer.data()) + t.offset() * dtype_size(t.dtype());
}
}  // namespace

Tensor Tensor::to(Device d) const {
  if (device() == d) return *this;
  Tensor t = empty(shape(), dtype(), d);
  t.set_channels_last(channels_last());
  t.copy_(*this);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape(), dtype(), device());
  t.set_channels_last(channels_last());
  t.copy_(*this);
  return t;
}

void Tensor::copy_(const Tensor& src) const {
  CAF_REQUIRE_SHAPE(numel() == src.numel() && dtype() == src.dtype() && channels_last() == src.channels_last(),
                    "copy_ from " + src.describe() + " into " + describe());
  copy_bytes(device(), raw(*this), src.device(), raw(src), size_t(numel()) * dtype_size(dtype()));
  impl_->recompute.reset();  // the recipe no longer describes these values
}

void Tensor::fill_(float value) const {
  CAF_REQUIRE(dtype() != DType::bf16, "fill_ of a bf16 tensor (bf16 tensors hold cast results only)");
  checked();
  impl_->recompute.reset();  // the recipe no longer describes these values
  if (dtype() == DType::f32)
    fill<float>(device(), data<float>(), numel(), value);
  else
    fill<uint8_t>(device(), data<uint8_t>(), numel(), uint8_t(value));
}

void Tensor::zero_() const { fill_(0.f); }

std::vector<float> Tensor::to_vector() const {
  std::vector<float> v(static_cast<size_t>(numel()));
  copy_bytes(Device::cpu, v.data(), device(), data<float>(), v.size() * sizeof(float));
  return v;
}

std::vector<uint8_t> Tensor::to_bytes() const {
  std::vector<uint8_t> v(static_cast<size_t>(numel()));
  copy_bytes(Device::cpu, v.data(), device(), data<uint8_t>(), v.size());
  return v;
}

float Tensor::item() const {
  CAF_REQUIRE_SHAPE(numel() == 1, "item() of " + describe());
  return to_vector()[0];
}

bool Tensor::requires_grad() const { return checked().requires_grad || checked().grad_fn; }

Tensor& Tensor::set_requires_grad(bool on) {
  CAF_REQUIRE(is_leaf(), "set_requires_grad on a result of an op; use detach() first");
  CAF_REQUIRE(!on || dtype() != DType::u8,
              "only float32 and bf16 tensors can require gradients (a bf16 tensor's gradient is float32)");
  impl_->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return checked().grad_fn == nullptr; }

Tensor Tensor::grad() const { return Tensor(checked().grad); }

void Tensor::set_grad(const Tensor& g) {
  CAF_REQUIRE_SHAPE(!g.defined() || (g.shape() == shape() && g.device() == device()),
                    "gradient " + g.describe() + " for " + describe());
  impl_->grad = g.impl_ptr();
}

void Tensor::zero_grad() {
  if (checked().grad) Tensor(impl_->grad).zero_();
}

Tensor Tensor::detach() const {
  const TensorImpl& t = checked();
  return view_of(t.storage, t.offset, t.shape, t.dtype, t.device).set_channels_last(t.channels_last);
}

void Tensor::backward() const { run_backward(*this); }

}  // namespace caf
