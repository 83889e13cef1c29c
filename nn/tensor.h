// nn/tensor.h: the Tensor handle: up to 4-D (NCHW), float32 or uint8, on the CPU or a GPU,
// contiguous, with shared storage; channels-last (NHWC storage) for bf16 activations only.
//
// bf16 tensors exist for mixed precision's convolution operands and, with bf16_activations(), the
// activations of the ConvBnRelu chains (conv2d, batchnorm_relu2d, maxpool2d, upsample_bilinear2x,
// concat_channels take them; their gradients stay f32); other ops take f32 only.
// A Tensor is a cheap handle (a shared_ptr to TensorImpl); copies alias. Views (reshape, slab
// views of parameters) share the Storage at an element offset. Autograd state lives beside the
// data: a leaf that requires grad accumulates into `grad`; a result of an op holds the Node that
// computed it (nn/autograd.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/common.h"
#include "kernels/memory.h"

namespace caf {

enum class DType : uint8_t { f32, u8, bf16 };  // bf16: uint16_t storage (kernels/cast.h)
size_t dtype_size(DType t);
const char* dtype_name(DType t);

using Dims = std::vector<int64_t>;
std::string dims_str(const Dims& d);  // "[2, 3, 4]"
int64_t dims_numel(const Dims& d);

struct Storage {
  Buffer buffer;
};

struct Node;

struct TensorImpl {
  Dims shape;
  DType dtype = DType::f32;
  Device device = Device::cpu;
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // leaves only: the accumulated gradient
  std::shared_ptr<Node> grad_fn;     // results of recorded ops only
  // Results whose values can be rewritten from what the graph keeps anyway (the fused batch norm
  // + ReLU's output, from its input and statistics): writes them, bit for bit, to the given
  // buffer (of this tensor's dtype: float, or bf16 activations' uint16_t). An op that would save this tensor for its backward may keep this instead
  // (nn/ops.cpp, recompute_activations()), so the tensor itself is freed after the forward.
  // In-place writes through this handle (copy_, fill_) drop it; writes through another view of
  // the same storage cannot be seen, so none may happen between a forward and its backward.
  std::shared_ptr<const std::function<void(void*)>> recompute;
  // Stored channels-last: a 4-D tensor of logical shape (N, C, H, W) laid out as (N, H, W, C).
  // Only bf16 activations are (channels_last_activations(), kernels/runtime.h): the ops that
  // take them read and write that layout, and so do their fp32 gradients' buffers; every other
  // op refuses them (to_planar converts). detach(), to() and clone() keep the flag; copy_ needs
  // the same layout on both sides. A channels-last leaf's grad() holds its gradient in the same
  // (channels-last) order, though that buffer carries no flag.
  bool channels_last = false;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation (every factory allocates new storage) ----
  static Tensor empty(const Dims& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Dims& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(const Dims& shape, float value, Device device = Device::cpu);
  static Tensor from_vector(const Dims& shape, const std::vector<float>& values,
                            Device device = Device::cpu);
  static Tensor from_bytes(const Dims& shape, const std::vector<uint8_t>& values,
                           Device device = Device::cpu);
  // Seeded random init, generated on the host (identical on every platform), then copied.
  static Tensor randn(const Dims& shape, uint64_t seed, float mean = 0, float stddev = 1,
                      Device device = Device::cpu);
  static Tensor uniform(const Dims& shape, uint64_t seed, float lo, float hi,
                        Device device = Device::cpu);
  // A view of existing storage (parameter slabs): shares memory, no copy.
  static Tensor view_of(const std::shared_ptr<Storage>& storage, int64_t offset, const Dims& shape,
                        DType dtype, Device device);

  // ---- properties ----
  bool defined() const { return impl_ != nullptr; }
  const Dims& shape() const;
  int64_t dim(int i) const;  // negative counts from the end
  int ndim() const { return int(shape().size()); }
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  Shape4 shape4() const;  // right-aligned into N, C, H, W
  bool channels_last() const;  // TensorImpl::channels_last
  Tensor& set_channels_last(bool on);  // the storage's layout, as its writer made it
  std::string describe() const;  // "f32[2, 3] on cpu"

  template <class T>
  T* data() const;  // checks the dtype
  const std::shared_ptr<Storage>& storage() const;
  int64_t offset() const;

  // ---- copies and fills ----
  Tensor to(Device d) const;  // same device: returns *this (no copy)
  Tensor clone() const;
  // In-place writes change the data, not the handle, so they are const like a pointer's target.
  void copy_(const Tensor& src) const;  // same numel and dtype, any devices
  void fill_(float value) const;
  void zero_() const;
  std::vector<float> to_vector() const;
  std::vector<uint8_t> to_bytes() const;
  float item() const;  // one element, copied to the host

  // ---- shape ----
  Tensor reshape(const Dims& shape) const;  // a view; differentiable

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on);  // leaves only
  bool is_leaf() const;
  Tensor grad() const;             // undefined until a backward reaches this leaf
  void set_grad(const Tensor& g);  // install a gradient buffer (e.g. a view into a slab)
  void zero_grad();
  Tensor detach() const;           // same storage, no history
  void backward() const;           // from a one-element tensor

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace caf
