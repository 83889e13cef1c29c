#include "nn/ops.h"

#include "kernels/batchnorm.h"
#include "kernels/cast.h"
#include "kernels/channels.h"
#include "kernels/conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/error.h"
#include "kernels/gaussian.h"
#include "kernels/matmul.h"
#include "kernels/pool.h"
#include "kernels/profile.h"
#include "kernels/reduce.h"
#include "kernels/runtime.h"
#include "kernels/softmax.h"
#include "kernels/upsample.h"
#include "nn/autograd.h"

namespace caf {

namespace {

float* F(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

void check_float(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t->defined()) continue;
    CAF_REQUIRE_SHAPE(t->dtype() == DType::f32 && !t->channels_last(),
                      std::string(op) + ": expects planar float32, got " + t->describe());
    if (first)
      CAF_REQUIRE_SHAPE(t->device() == first->device(), std::string(op) + ": tensors on different devices (" +
                                                            first->describe() + ", " + t->describe() + ")");
    first = t;
  }
}

void check_4d(const char* op, const Tensor& x) {
  CAF_REQUIRE_SHAPE(x.ndim() == 4, std::string(op) + ": expects an NCHW tensor, got " + x.describe());
}

Tensor like(const Tensor& x, const Dims& shape) { return Tensor::empty(shape, DType::f32, x.device()); }
Tensor like_dtype(const Tensor& x, const Dims& shape) { return Tensor::empty(shape, x.dtype(), x.device()); }
uint16_t* H(const Tensor& t) { return t.defined() ? t.data<uint16_t>() : nullptr; }
bool is_bf16(const Tensor& t) { return t.defined() && t.dtype() == DType::bf16; }
// A float or bf16 tensor's storage (gradients that may be either: bf16 gradients, nn/autograd.h).
void* P(const Tensor& t) { return is_bf16(t) ? static_cast<void*>(H(t)) : static_cast<void*>(F(t)); }

// bf16 gradients (nn/autograd.h Bf16Grads) of the ops on bf16 activations. The fused batch norm
// reads a bf16 gy exactly and writes its input gradient rounded (for a convolution's raw output
// only, which rounds it anyway); upsampling reads a bf16 gy exactly and writes fp32 (its sums);
// the ops that move values (max pooling, concatenation, to_planar) write bf16 only from bf16.
Bf16Grads bf16_grads_of_batchnorm(bool bf16) {
  Bf16Grads g;
  g.write = {bf16};
  g.rounds = true;
  g.takes = bf16;
  return g;
}
Bf16Grads bf16_grads_of_upsampling(bool bf16) {
  Bf16Grads g;
  g.takes = bf16;
  return g;
}
Bf16Grads bf16_grads_moving(size_t inputs, bool bf16) {
  Bf16Grads g;
  g.write.assign(inputs, bf16);
  g.passes = true;
  g.takes = bf16;
  return g;
}

// The activation ops (conv2d's input, the fused batch norm + ReLU, pooling, upsampling,
// concatenation) also take bf16 activations (bf16_activations_active(), kernels/runtime.h).
void check_activation(const char* op, const Tensor& x) {
  CAF_REQUIRE_SHAPE((x.dtype() == DType::f32 && !x.channels_last()) || x.dtype() == DType::bf16,
                    std::string(op) + ": expects float32 or bf16 activations, got " + x.describe());
}

Tensor unary(const Tensor& x, UnaryOp op, float a, float b, const char* name) {
  profile::OpScope op_range(name);
  check_float(name, {&x});
  Tensor y = like(x, x.shape());
  unary_forward<float>(x.device(), op, F(x), F(y), x.numel(), a, b);
  // Save only what the gradient reads (kernels/elementwise_math.h), so the rest can be freed.
  Tensor xs = unary_grad_needs_x(op) ? x.detach() : Tensor(), ys = unary_grad_needs_y(op) ? y.detach() : Tensor();
  return record(y, name, {x}, [op, a, b, xs, ys](const Tensor& gy, const std::vector<Tensor>& g) {
    unary_backward<float>(gy.device(), op, F(xs), F(ys), F(gy), F(g[0]), gy.numel(), a, b);
  });
}

Tensor binary(const Tensor& a, const Tensor& b, BinaryOp op, const char* name) {
  profile::OpScope op_range(name);
  check_float(name, {&a, &b});
  CAF_REQUIRE_SHAPE(a.shape() == b.shape(), std::string(name) + ": shapes differ: " + a.describe() +
                                                " and " + b.describe());
  Tensor y = like(a, a.shape());
  binary_forward<float>(a.device(), op, F(a), F(b), F(y), a.numel());
  // mul and div need the operands; add and sub need nothing saved.
  const bool save = op == BinaryOp::mul || op == BinaryOp::div;
  Tensor as = save ? a.detach() : Tensor(), bs = save ? b.detach() : Tensor();
  return record(y, name, {a, b}, [op, as, bs](const Tensor& gy, const std::vector<Tensor>& g) {
    binary_backward<float>(gy.device(), op, F(as), F(bs), F(gy), F(g[0]), F(g[1]), gy.numel());
  });
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::add, "add"); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::sub, "sub"); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::mul, "mul"); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::div, "div"); }
Tensor scale(const Tensor& x, float a) { return unary(x, UnaryOp::scale, a, 0, "scale"); }
Tensor add_scalar(const Tensor& x, float a) { return unary(x, UnaryOp::add_scalar, a, 0, "add_scalar"); }
Tensor add_scalar_at(const Tensor& x, const Tensor& s, int64_t k) {
  profile::OpScope op_range("add_scalar_at");
  check_float("add_scalar_at", {&x, &s});
  CAF_REQUIRE_SHAPE(k >= 0 && k < s.numel(), "add_scalar_at: element " + std::to_string(k) + " of " + s.describe());
  Tensor y = like(x, x.shape());
  add_scalar_at<float>(x.device(), F(x), F(s), k, F(y), x.numel());
  return record(y, "add_scalar_at", {x}, [](const Tensor& gy, const std::vector<Tensor>& g) {
    binary_forward<float>(gy.device(), BinaryOp::add, F(g[0]), F(gy), F(g[0]), gy.numel());
  });
}
Tensor relu(const Tensor& x) {
  // bf16 mixed precision: the consumer convolution keeps a bf16 copy of this output, so ReLU keeps
  // a 1-byte mask instead of its fp32 output and the output is freed once the forward moves on.
  // Same values and gradients as the plain ReLU (x > 0 is y > 0).
  if (precision() != Precision::bf16 || !grad_enabled() || !x.requires_grad() || x.dtype() != DType::f32)
    return unary(x, UnaryOp::relu, 0, 0, "relu");
  profile::OpScope op_range("relu");
  Tensor y = like(x, x.shape());
  Tensor mask = Tensor::empty(x.shape(), DType::u8, x.device());
  relu_mask_forward(x.device(), F(x), F(y), mask.data<uint8_t>(), x.numel());
  return record(y, "relu", {x}, [mask](const Tensor& gy, const std::vector<Tensor>& g) {
    relu_mask_backward(gy.device(), mask.data<uint8_t>(), F(gy), F(g[0]), gy.numel());
  });
}
Tensor sigmoid(const Tensor& x) { return unary(x, UnaryOp::sigmoid, 0, 0, "sigmoid"); }
Tensor exp(const Tensor& x) { return unary(x, UnaryOp::exp, 0, 0, "exp"); }
Tensor log(const Tensor& x) { return unary(x, UnaryOp::log, 0, 0, "log"); }
Tensor square(const Tensor& x) { return unary(x, UnaryOp::square, 0, 0, "square"); }
Tensor clamp(const Tensor& x, float lo, float hi) {
  CAF_REQUIRE(lo <= hi, "clamp: lower bound above upper bound");
  return unary(x, UnaryOp::clamp, lo, hi, "clamp");
}

namespace {
Tensor reduce_all(const Tensor& x, bool mean, const char* name) {
  profile::OpScope op_range(name);
  check_float(name, {&x});
  CAF_REQUIRE_SHAPE(x.numel() > 0, std::string(name) + " of an empty tensor");
  float s = mean ? 1.f / float(x.numel()) : 1.f;
  Tensor y = like(x, {1});
  reduce_all_forward<float>(x.device(), F(x), x.numel(), s, F(y));
  return record(y, name, {x}, [s, n = x.numel()](const Tensor& gy, const std::vector<Tensor>& g) {
    reduce_all_backward<float>(gy.device(), F(gy), n, s, F(g[0]));
  });
}
Tensor reduce_channels(const Tensor& x, bool mean, const char* name) {
  profile::OpScope op_range(name);
  check_float(name, {&x});
  check_4d(name, x);
  Shape4 sh = x.shape4();
  float s = mean ? 1.f / float(sh.n * sh.hw()) : 1.f;
  Tensor y = like(x, {sh.c});
  reduce_channels_forward<float>(x.device(), F(x), sh, s, F(y));
  return record(y, name, {x}, [s, sh](const Tensor& gy, const std::vector<Tensor>& g) {
    reduce_channels_backward<float>(gy.device(), F(gy), sh, s, F(g[0]));
  });
}
}  // namespace

Tensor sum(const Tensor& x) { return reduce_all(x, false, "sum"); }
Tensor mean(const Tensor& x) { return reduce_all(x, true, "mean"); }
Tensor sum_channels(const Tensor& x) { return reduce_channels(x, false, "sum_channels"); }
Tensor mean_channels(const Tensor& x) { return reduce_channels(x, true, "mean_channels"); }

Tensor softmax_channels(const Tensor& x) {
  profile::OpScope op_range("softmax_channels");
  check_float("softmax_channels", {&x});
  check_4d("softmax_channels", x);
  Shape4 s = x.shape4();
  Tensor y = like(x, x.shape());
  softmax_channels_forward<float>(x.device(), F(x), s, F(y));
  return record(y, "softmax_channels", {x}, [s, ys = y.detach()](const Tensor& gy, const std::vector<Tensor>& g) {
    softmax_channels_backward<float>(gy.device(), F(ys), F(gy), s, F(g[0]));
  });
}

namespace {
// What a convolution keeps of its input for the weight gradient: the tensor itself, or, when the
// input has a recipe (TensorImpl::recompute: the fused batch norm + ReLU's output) and
// recompute_activations() is on, the recipe, so the input is freed after the forward; get()
// then rewrites the same values into a new tensor.
class SavedInput {
 public:
  SavedInput() = default;
  SavedInput(const Tensor& x, bool needed) {
    if (!needed) return;
    if (x.impl()->recompute && recompute_activations()) {
      recipe_ = x.impl()->recompute;
      shape_ = x.shape();
      dtype_ = x.dtype();
      device_ = x.device();
      channels_last_ = x.channels_last();  // the recipe writes the layout its producer wrote
    } else {
      x_ = x.detach();
    }
  }
  bool has_recipe() const { return recipe_ != nullptr; }
  Tensor get() const {
    if (!recipe_) return x_;
    Tensor t = Tensor::empty(shape_, dtype_, device_);
    t.set_channels_last(channels_last_);
    (*recipe_)(is_bf16(t) ? static_cast<void*>(H(t)) : static_cast<void*>(F(t)));
    return t;
  }

 private:
  Tensor x_;
  std::shared_ptr<const std::function<void(void*)>> recipe_;
  Dims shape_;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
  bool channels_last_ = false;
};

// Gives y (an op's output) a recipe built from its inputs' recipes, when every input has one and
// recompute_activations() is on: a convolution reading y then keeps that instead of y (the
// upsampled, concatenated and pooled activations of both networks). rebuild(inputs, out) is the
// op's forward kernel, writing y's dtype; the inputs are rebuilt first, so the values are the
// forward's, bit for bit.
template <class Rebuild>
void attach_recipe(const Tensor& y, std::initializer_list<const Tensor*> inputs, Rebuild rebuild) {
  if (!y.impl()->grad_fn || !recompute_activations()) return;
  std::vector<SavedInput> sources;
  for (const Tensor* in : inputs) {
    if (!in->impl()->recompute) return;
    sources.emplace_back(*in, true);
  }
  y.impl()->recompute = std::make_shared<const std::function<void(void*)>>([sources, rebuild](void* out) {
    std::vector<Tensor> in;
    for (const SavedInput& src : sources) in.push_back(src.get());
    rebuild(in, out);
  });
}
}  // namespace

Tensor concat_channels(const Tensor& a_in, const Tensor& b_in) {
  // Both channels-last: concatenated as they are; one only: both planar.
  const bool last = a_in.defined() && b_in.defined() && a_in.channels_last() && b_in.channels_last();
  const Tensor a = last ? a_in : to_planar(a_in), b = last ? b_in : to_planar(b_in);
  profile::OpScope op_range("concat_channels");
  check_activation("concat_channels", a);
  check_activation("concat_channels", b);
  CAF_REQUIRE_SHAPE(a.dtype() == b.dtype() && a.device() == b.device(),
                    "concat_channels: " + a.describe() + " and " + b.describe() + " differ in dtype or device");
  check_4d("concat_channels", a);
  check_4d("concat_channels", b);
  Shape4 sa = a.shape4(), sb = b.shape4();
  CAF_REQUIRE_SHAPE(sa.n == sb.n && sa.h == sb.h && sa.w == sb.w,
                    "concat_channels: " + a.describe() + " and " + b.describe() + " differ beyond channels");
  Tensor y = like_dtype(a, {sa.n, sa.c + sb.c, sa.h, sa.w});
  y.set_channels_last(last);
  const bool bf16 = is_bf16(a);
  const auto forward = [sa, sb, bf16, last, d = a.device()](const Tensor& ta, const Tensor& tb, void* out) {
    if (bf16)
      concat_channels_forward_bf16(d, H(ta), sa.c, H(tb), sb.c, sa.n, sa.hw(), static_cast<uint16_t*>(out), last);
    else concat_channels_forward<float>(d, F(ta), sa.c, F(tb), sb.c, sa.n, sa.hw(), static_cast<float*>(out));
  };
  forward(a, b, bf16 ? static_cast<void*>(H(y)) : static_cast<void*>(F(y)));
  record(
      y, "concat_channels", {a, b},
      [sa, sb, last](const Tensor& gy, const std::vector<Tensor>& g) {
        if (!is_bf16(gy)) {
          concat_channels_backward<float>(gy.device(), F(gy), sa.c, sb.c, sa.n, sa.hw(), F(g[0]), F(g[1]),
                                          fresh_gradient(0), fresh_gradient(1), last);
          return;
        }
        // bf16 gradients: each part of a bf16 gy (a convolution's input gradient) is copied as it is
        // into a bf16 part (only from bf16: Bf16Grads::passes) or widened into a float one.
        for (size_t i = 0; i < 2; ++i) {
          if (!g[i].defined()) continue;
          const ChannelCopyArgs part = concat_part(int(i), sa.c, sb.c, sa.n, sa.hw(), last);
          if (is_bf16(g[i])) channel_copy_bf16(gy.device(), H(gy), H(g[i]), part);
          else channel_copy_widen(gy.device(), H(gy), F(g[i]), part, !fresh_gradient(i));
        }
      },
      {true, true}, bf16_grads_moving(2, bf16));
  attach_recipe(y, {&a, &b}, [forward](const std::vector<Tensor>& in, void* out) { forward(in[0], in[1], out); });
  return y;
}

Tensor to_float32(const Tensor& x) {
  check_activation("to_float32", x);
  if (!is_bf16(x)) return x;
  profile::OpScope op_range("to_float32");
  Tensor y = like(x, x.shape());
  if (x.channels_last()) {
    const Shape4 s = x.shape4();
    cast_from_bf16_nhwc(x.device(), H(x), nullptr, F(y), s.n, s.c, s.hw());
    return record(y, "to_float32", {x}, [s](const Tensor& gy, const std::vector<Tensor>& g) {
      transpose_f32_to_nhwc(gy.device(), F(gy), F(g[0]), s.n, s.c, s.hw(), true);
    });
  }
  cast_from_bf16(x.device(), H(x), nullptr, 1, 1, F(y), x.numel());
  return record(y, "to_float32", {x}, [](const Tensor& gy, const std::vector<Tensor>& g) {
    binary_forward<float>(gy.device(), BinaryOp::add, F(g[0]), F(gy), F(g[0]), gy.numel());
  });
}

Tensor to_planar(const Tensor& x) {
  if (!x.defined() || !x.channels_last()) return x;
  profile::OpScope op_range("to_planar");
  CAF_REQUIRE_SHAPE(is_bf16(x), "to_planar: channels-last tensors are bf16 activations, got " + x.describe());
  const Shape4 s = x.shape4();
  Tensor y = like_dtype(x, x.shape());
  const auto forward = [s, d = x.device()](const Tensor& in, void* out) {
    transpose_bf16_from_nhwc(d, H(in), static_cast<uint16_t*>(out), s.n, s.c, s.hw());
  };
  forward(x, H(y));
  // bf16 gradients: a bf16 gy (the planar convolution's input gradient) is transposed as it is,
  // into a bf16 gx when the autograd gives one (only then: it moves values, Bf16Grads::passes),
  // or widened first into a float one.
  record(
      y, "to_planar", {x},
      [s](const Tensor& gy, const std::vector<Tensor>& g) {
        const Device d = gy.device();
        if (is_bf16(g[0])) {
          transpose_bf16_to_nhwc(d, H(gy), H(g[0]), s.n, s.c, s.hw());
        } else if (is_bf16(gy)) {
          const Tensor w = Tensor::empty(gy.shape(), DType::f32, d);
          cast_from_bf16(d, H(gy), nullptr, 1, 1, F(w), w.numel());
          transpose_f32_to_nhwc(d, F(w), F(g[0]), s.n, s.c, s.hw(), !fresh_gradient(0));
        } else {
          transpose_f32_to_nhwc(d, F(gy), F(g[0]), s.n, s.c, s.hw(), !fresh_gradient(0));
        }
      },
      {true}, bf16_grads_moving(1, true));
  attach_recipe(y, {&x}, [forward](const std::vector<Tensor>& in, void* out) { forward(in[0], out); });
  return y;
}

Tensor slice_channels(const Tensor& x, int64_t c0, int64_t c1) {
  profile::OpScope op_range("slice_channels");
  check_float("slice_channels", {&x});
  check_4d("slice_channels", x);
  Shape4 s = x.shape4();
  CAF_REQUIRE_SHAPE(0 <= c0 && c0 < c1 && c1 <= s.c, "slice_channels [" + std::to_string(c0) + ", " +
                                                         std::to_string(c1) + ") of " + x.describe());
  Tensor y = like(x, {s.n, c1 - c0, s.h, s.w});
  slice_channels_forward<float>(x.device(), F(x), s, c0, c1, F(y));
  return record(y, "slice_channels", {x}, [s, c0, c1](const Tensor& gy, const std::vector<Tensor>& g) {
    slice_channels_backward<float>(gy.device(), F(gy), s, c0, c1, F(g[0]));
  });
}

namespace {
Tensor to_bf16(const Tensor& t) {
  Tensor h = Tensor::empty(t.shape(), DType::bf16, t.device());
  cast_to_bf16(t.device(), F(t), H(h), t.numel());
  return h;
}

// Where a convolution's output goes: fp32 with the bias added, or (bf16 activations, conv2d_prebias)
// the raw bf16 output without the bias, which the consumer adds as it reads.
enum class ConvOut { f32, bf16_prebias };

// Whether a bf16 convolution of this shape runs channels-last: cuDNN's NHWC bf16 tensor-core
// kernels want channel counts in multiples of 8, so the convolutions on images (3 or 6 channels)
// and to the outputs (3 or 2) stay planar.
bool conv_channels_last(const Conv2dShape& cs) {
  return channels_last_convs() && cs.x.c % 8 == 0 && cs.k_out % 8 == 0;
}

// Mixed precision (kernels/runtime.h, Precision::bf16): the convolution runs on bf16 copies of x
// and w with fp32 accumulation; y (with the bias added in fp32) and every gradient are widened back
// into fp32 tensors. The node saves the bf16 copies it needs (x for the weight gradient, w for the
// input gradient), half the bytes of fp32 ones. With channels_last_convs() every bf16 copy is
// channels-last (cs.nhwc; the casts transpose on the way in and out). A bf16 x (bf16 activations)
// is its own copy: used as it is, or only transposed; a channels-last x (channels-last
// activations, then cs.nhwc) is used as it is, and so is its gradient's layout. With
// channels_last_activations() the raw output (bf16_prebias) stays channels-last too.
Tensor conv2d_bf16(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dShape cs, ConvOut out) {
  const Device d = x.device();
  cs.nhwc = conv_channels_last(cs);
  CAF_REQUIRE(cs.nhwc || !x.channels_last(), "conv2d: a channels-last input to a planar convolution (to_planar first)");
  const bool x_last = x.channels_last(), y_last = cs.nhwc && out == ConvOut::bf16_prebias && channels_last_activations();
  const Shape4 sw{cs.k_out, cs.x.c, cs.k, cs.k};
  // x (N, C, H, W) or w (K, C, k, k), fp32 or bf16, as a bf16 copy in the convolution's layout.
  const auto to_bf16_conv = [nhwc = cs.nhwc](const Tensor& t) {
    if (t.channels_last()) return t.detach();  // a bf16 activation, already in the layout
    if (!nhwc) return is_bf16(t) ? t.detach() : to_bf16(t);
    const Shape4 s = t.shape4();
    Tensor h = Tensor::empty({s.n, s.h, s.w, s.c}, DType::bf16, t.device());
    if (is_bf16(t)) transpose_bf16_to_nhwc(t.device(), H(t), H(h), s.n, s.c, s.hw());
    else cast_to_bf16_nhwc(t.device(), F(t), H(h), s.n, s.c, s.hw());
    return h;
  };
  const Tensor x16 = to_bf16_conv(x), w16 = to_bf16_conv(w);
  const Dims planar{cs.x.n, cs.k_out, cs.x.h, cs.x.w};
  const Tensor y16 = Tensor::empty(cs.nhwc && !y_last ? Dims{cs.x.n, cs.x.h, cs.x.w, cs.k_out} : planar, DType::bf16, d);
  conv2d_forward_bf16(d, H(x16), H(w16), H(y16), cs);
  Tensor y;
  if (out == ConvOut::bf16_prebias) {
    if (y_last) {
      y = y16;
      y.set_channels_last(true);
    } else if (cs.nhwc) {
      y = Tensor::empty(planar, DType::bf16, d);
      transpose_bf16_from_nhwc(d, H(y16), H(y), cs.x.n, cs.k_out, cs.x.hw());
    } else {
      y = y16;
    }
  } else {
    y = Tensor::empty(planar, DType::f32, d);
    if (cs.nhwc) cast_from_bf16_nhwc(d, H(y16), F(b), F(y), cs.x.n, cs.k_out, cs.x.hw());
    else cast_from_bf16(d, H(y16), F(b), cs.x.hw(), cs.k_out, F(y), y.numel());
  }
  // The bf16 copy of x, or (recompute_activations()) the recipe of x, from which the backward
  // makes the same copy again.
  const SavedInput x_saved = x.impl()->recompute && recompute_activations() ? SavedInput(x, w.requires_grad())
                                                                          : SavedInput();
  const Tensor xs = w.requires_grad() && !x_saved.has_recipe() ? x16 : Tensor(),
               ws = x.requires_grad() ? w16 : Tensor();
  // bf16 gradients (nn/autograd.h): cuDNN's bf16 input gradient can be x's gradient as it is when
  // x is a bf16 activation in the convolution's layout; a raw output (bf16_prebias) in the
  // convolution's layout takes a bf16 output gradient (the fused batch norm's, already the operand
  // the casts below would make of an fp32 one). A channels-last convolution's raw output made
  // planar (channels-last convolutions without channels-last activations) does not: its gradient
  // would need the transpose.
  Bf16Grads grads16;
  grads16.write = {is_bf16(x) && x_last == cs.nhwc};
  grads16.takes = grads16.takes_rounded = out == ConvOut::bf16_prebias && y_last == cs.nhwc;
  return record(y, "conv2d", {x, w, b}, [cs, sw, xs, ws, x_saved, to_bf16_conv, x_last, y_last, out](
                                            const Tensor& gy, const std::vector<Tensor>& g) {
    const Device dev = gy.device();
    // gy has y's layout: channels-last y, a channels-last gradient (a plain cast to bf16), or
    // already bf16 (bf16 gradients).
    const bool prebias = out == ConvOut::bf16_prebias;
    const Tensor gy16 = !(g[0].defined() || g[1].defined() || (prebias && g[2].defined())) ? Tensor()
                        : is_bf16(gy)                        ? gy
                        : y_last                             ? to_bf16(gy)
                                                             : to_bf16_conv(gy);
    // A bf16 gradient in the convolution's layout, added into its fp32 gradient (planar, or
    // channels-last like x), or written there (a fresh buffer: write-first gradients).
    const auto accumulate = [&](const Tensor& g16, const Tensor& gf, const Shape4& s, bool write, bool same_layout) {
      if (cs.nhwc && !same_layout) {
        if (write) cast_from_bf16_nhwc(dev, H(g16), nullptr, F(gf), s.n, s.c, s.hw());
        else accumulate_bf16_nhwc(dev, H(g16), F(gf), s.n, s.c, s.hw());
      } else {
        if (write) cast_from_bf16(dev, H(g16), nullptr, 1, 1, F(gf), gf.numel());
        else accumulate_bf16(dev, H(g16), F(gf), gf.numel());
      }
    };
    if (is_bf16(g[0])) {  // a fresh bf16 gradient in x's layout: cuDNN writes it (beta = 0)
      conv2d_backward_data_bf16(dev, H(ws), H(gy16), H(g[0]), cs);
    } else if (g[0].defined()) {
      const Tensor gx16 = Tensor::empty({g[0].numel()}, DType::bf16, dev);
      conv2d_backward_data_bf16(dev, H(ws), H(gy16), H(gx16), cs);
      accumulate(gx16, g[0], cs.x, fresh_gradient(0), x_last);
    }
    if (g[1].defined()) {
      const Tensor gw16 = Tensor::empty({g[1].numel()}, DType::bf16, dev);
      const Tensor xin16 = xs.defined() ? xs : to_bf16_conv(x_saved.get());
      conv2d_backward_filter_bf16(dev, H(xin16), H(gy16), H(gw16), cs);
      accumulate(gw16, g[1], sw, false, false);
    }
    if (g[2].defined() && prebias) {
      // The bias of a raw output feeds only a training-mode batch norm, which removes it: its
      // gradient is zero but for rounding. It is summed from gy16, the bf16 gradient the
      // convolution uses (in the convolution's layout), so that it is the same whether the
      // gradient came as fp32 or as bf16 (bf16 gradients, nn/autograd.h).
      conv2d_backward_bias_bf16(dev, H(gy16), F(g[2]), cs);
    } else if (g[2].defined()) {
      Conv2dShape cb = cs;
      cb.nhwc = y_last;  // conv2d_backward_bias reads gy in y's layout
      conv2d_backward_bias<float>(dev, F(gy), F(g[2]), cb);
    }
  }, {true}, grads16);
}

Conv2dShape check_conv2d(const char* op, const Tensor& x, const Tensor& w, const Tensor& b) {
  check_activation(op, x);
  check_float(op, {&w, &b});
  CAF_REQUIRE_SHAPE(w.device() == x.device(), std::string(op) + ": tensors on different devices (" +
                                                  x.describe() + ", " + w.describe() + ")");
  CAF_REQUIRE_SHAPE(!is_bf16(x) || precision() == Precision::bf16,
                    std::string(op) + ": a bf16 input needs bf16 mixed precision, got " + x.describe());
  check_4d(op, x);
  check_4d(op, w);
  Shape4 sx = x.shape4(), sw = w.shape4();
  CAF_REQUIRE_SHAPE(sw.c == sx.c && sw.h == sw.w && sw.h % 2 == 1,
                    std::string(op) + ": weight " + w.describe() + " does not fit input " + x.describe() +
                        " (square odd kernel, same input channels)");
  CAF_REQUIRE_SHAPE(!b.defined() || b.shape() == Dims{sw.n},
                    std::string(op) + ": bias " + b.describe() + " for " + std::to_string(sw.n) + " output channels");
  return Conv2dShape{sx, sw.n, sw.h};
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b) {
  profile::OpScope op_range("conv2d");
  const Conv2dShape cs = check_conv2d("conv2d", x, w, b);
  if (precision() == Precision::bf16)
    return conv2d_bf16(conv_channels_last(cs) ? x : to_planar(x), w, b, cs, ConvOut::f32);
  Tensor y = like(x, {cs.x.n, cs.k_out, cs.x.h, cs.x.w});
  conv2d_forward<float>(x.device(), F(x), F(w), F(b), F(y), cs);
  return record(y, "conv2d", {x, w, b}, [cs, xs = SavedInput(x, w.requires_grad()), ws = w.detach()](
                                            const Tensor& gy, const std::vector<Tensor>& g) {
    Device d = gy.device();
    if (g[0].defined()) conv2d_backward_data<float>(d, F(ws), F(gy), F(g[0]), cs, !fresh_gradient(0));
    if (g[1].defined()) conv2d_backward_filter<float>(d, F(xs.get()), F(gy), F(g[1]), cs);
    if (g[2].defined()) conv2d_backward_bias<float>(d, F(gy), F(g[2]), cs);
  }, {true});
}

Tensor conv2d_prebias(const Tensor& x, const Tensor& w, const Tensor& b) {
  profile::OpScope op_range("conv2d");
  const Conv2dShape cs = check_conv2d("conv2d_prebias", x, w, b);
  CAF_REQUIRE(precision() == Precision::bf16, "conv2d_prebias: bf16 activations need bf16 mixed precision");
  return conv2d_bf16(conv_channels_last(cs) ? x : to_planar(x), w, b, cs, ConvOut::bf16_prebias);
}

namespace {
Shape4 check_batchnorm(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                       const BatchNormState& st, const Tensor& x_bias = Tensor()) {
  check_activation(op, x);
  check_float(op, {&gamma, &beta, &st.running_mean, &st.running_var, &x_bias});
  CAF_REQUIRE_SHAPE(gamma.device() == x.device(), std::string(op) + ": tensors on different devices (" +
                                                      x.describe() + ", " + gamma.describe() + ")");
  CAF_REQUIRE_SHAPE(!x_bias.defined() || is_bf16(x),
                    std::string(op) + ": a pending bias comes only with a convolution's raw bf16 output, got " +
                        x.describe());
  check_4d(op, x);
  Shape4 s = x.shape4();
  for (const Tensor* t : std::initializer_list<const Tensor*>{&gamma, &beta, &st.running_mean, &st.running_var})
    CAF_REQUIRE_SHAPE(t->defined() && t->shape() == Dims{s.c},
                      std::string(op) + ": per-channel tensor " + t->describe() + " for input " + x.describe());
  CAF_REQUIRE_SHAPE(!x_bias.defined() || x_bias.shape() == Dims{s.c},
                    std::string(op) + ": bias " + x_bias.describe() + " for input " + x.describe());
  return s;
}
void check_train_batch(const char* op, const Shape4& s, const Tensor& x) {
  CAF_REQUIRE_SHAPE(s.n * s.hw() > 1, std::string(op) + " in training mode needs more than one value per channel, got " +
                                          x.describe());
}
}  // namespace

Tensor batchnorm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, BatchNormState& st,
                   bool training) {
  profile::OpScope op_range(training ? "batchnorm2d_train" : "batchnorm2d_eval");
  check_float("batchnorm2d", {&x});
  const Shape4 s = check_batchnorm("batchnorm2d", x, gamma, beta, st);
  BatchNormArgs a{s, st.eps, st.momentum};
  Tensor y = like(x, x.shape());
  Device d = x.device();
  if (!training) {
    batchnorm_eval_forward<float>(d, F(x), F(gamma), F(beta), F(st.running_mean), F(st.running_var), F(y), a);
    return record(y, "batchnorm2d_eval", {x, gamma, beta},
                  [a, xs = x.detach(), gs = gamma.detach(), rm = st.running_mean.detach(),
                   rv = st.running_var.detach()](const Tensor& gy, const std::vector<Tensor>& g) {
                    batchnorm_eval_backward<float>(gy.device(), F(xs), F(gs), F(rm), F(rv), F(gy),
                                                   F(g[0]), F(g[1]), F(g[2]), a);
                  });
  }
  check_train_batch("batchnorm2d", s, x);
  Tensor mean = like(x, {s.c}), invstd = like(x, {s.c});
  batchnorm_train_forward<float>(d, F(x), F(gamma), F(beta), F(y), F(mean), F(invstd),
                                 F(st.running_mean), F(st.running_var), a);
  return record(y, "batchnorm2d_train", {x, gamma, beta},
                [a, xs = x.detach(), gs = gamma.detach(), mean, invstd](const Tensor& gy, const std::vector<Tensor>& g) {
                  batchnorm_train_backward<float>(gy.device(), F(xs), F(gs), F(gy), F(mean), F(invstd),
                                                  F(g[0]), F(g[1]), F(g[2]), a);
                });
}

Tensor batchnorm_relu2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, BatchNormState& st,
                        const Tensor& x_bias) {
  profile::OpScope op_range("batchnorm_relu2d_train");
  const Shape4 s = check_batchnorm("batchnorm_relu2d", x, gamma, beta, st, x_bias);
  check_train_batch("batchnorm_relu2d", s, x);
  BatchNormArgs a{s, st.eps, st.momentum};
  a.nhwc = x.channels_last();  // bf16 only (to_planar's check); y, gy and gx in the same layout
  const Device d = x.device();
  const bool bf16 = is_bf16(x);
  Tensor y = like_dtype(x, x.shape()), mean = like(gamma, {s.c}), invstd = like(gamma, {s.c});
  y.set_channels_last(a.nhwc);
  if (bf16)
    batchnorm_relu_train_forward_bf16(d, H(x), F(x_bias), F(gamma), F(beta), H(y), F(mean), F(invstd),
                                      F(st.running_mean), F(st.running_var), a);
  else
    batchnorm_relu_train_forward<float>(d, F(x), F(gamma), F(beta), F(y), F(mean), F(invstd),
                                        F(st.running_mean), F(st.running_var), a);
  // x, not y, is kept: the mask is recomputed from it (y may be freed, or kept by its consumer).
  // With bf16 activations x is the convolution's raw bf16 output and xb its bias.
  const Tensor xs = x.detach(), xb = x_bias.defined() ? x_bias.detach() : Tensor(), gs = gamma.detach(),
               bs = beta.detach();
  record(y, "batchnorm_relu2d_train", {x, gamma, beta},
         [a, bf16, xs, xb, gs, bs, mean, invstd](const Tensor& gy, const std::vector<Tensor>& g) {
           BatchNormArgs ab = a;
           ab.overwrite_gx = fresh_gradient(0);
           ab.gy_bf16 = is_bf16(gy);  // bf16 gradients: a convolution's input gradient as cuDNN wrote it
           ab.gx_bf16 = is_bf16(g[0]);  // ... and this one rounded, for the convolution that made x
           if (bf16)
             batchnorm_relu_train_backward_bf16(gy.device(), H(xs), F(xb), F(gs), F(bs), P(gy), F(mean), F(invstd),
                                                P(g[0]), F(g[1]), F(g[2]), ab);
           else
             batchnorm_relu_train_backward<float>(gy.device(), F(xs), F(gs), F(bs), F(gy), F(mean), F(invstd),
                                                  F(g[0]), F(g[1]), F(g[2]), ab);
         },
         {true}, bf16_grads_of_batchnorm(bf16));
  // y's recipe holds only what the node above holds anyway (parameters do not change before the
  // backward: the optimiser steps after it). Attached only when a graph is recorded.
  if (y.impl()->grad_fn && recompute_activations())
    y.impl()->recompute = std::make_shared<const std::function<void(void*)>>(
        [a, bf16, xs, xb, gs, bs, mean, invstd, d](void* out) {
          if (bf16)
            batchnorm_relu_apply_bf16(d, H(xs), F(xb), F(gs), F(bs), F(mean), F(invstd), static_cast<uint16_t*>(out), a);
          else
            batchnorm_relu_apply<float>(d, F(xs), F(gs), F(bs), F(mean), F(invstd), static_cast<float*>(out), a);
        });
  return y;
}

Tensor batchnorm_relu2d_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, BatchNormState& st,
                             const Tensor& x_bias) {
  const bool records = grad_enabled() && (x.requires_grad() || gamma.requires_grad() || beta.requires_grad());
  CAF_REQUIRE(!(records && (is_bf16(x) || x_bias.defined())),
              "batchnorm_relu2d_eval: bf16 activations (and a pending bias) in inference mode only where no "
              "gradient is recorded");
  if (records) return relu(batchnorm2d(x, gamma, beta, st, false));
  profile::OpScope op_range("batchnorm_relu2d_eval");
  const Shape4 s = check_batchnorm("batchnorm_relu2d_eval", x, gamma, beta, st, x_bias);
  BatchNormArgs a{s, st.eps, st.momentum};
  a.nhwc = x.channels_last();
  Tensor y = like_dtype(x, x.shape());
  y.set_channels_last(a.nhwc);
  if (is_bf16(x))
    batchnorm_relu_eval_forward_bf16(x.device(), H(x), F(x_bias), F(gamma), F(beta), F(st.running_mean),
                                     F(st.running_var), H(y), a);
  else
    batchnorm_relu_eval_forward<float>(x.device(), F(x), F(gamma), F(beta), F(st.running_mean), F(st.running_var),
                                       F(y), a);
  return y;
}

Tensor maxpool2d(const Tensor& x) {
  profile::OpScope op_range("maxpool2d");
  check_activation("maxpool2d", x);
  check_4d("maxpool2d", x);
  Shape4 s = x.shape4();
  CAF_REQUIRE_SHAPE(s.h >= 2 && s.w >= 2, "maxpool2d of " + x.describe());
  Tensor y = like_dtype(x, {s.n, s.c, s.h / 2, s.w / 2});
  const bool bf16 = is_bf16(x), records = grad_enabled() && x.requires_grad(), last = x.channels_last();
  y.set_channels_last(last);  // y, idx, gy and gx in x's layout
  // The indexed forward, writing y's dtype; idx may be null.
  const auto forward = [s, bf16, last, d = x.device()](const Tensor& in, void* out, uint8_t* idx) {
    if (bf16) maxpool2d_forward_index_bf16(d, H(in), s, static_cast<uint16_t*>(out), idx, last);
    else maxpool2d_forward_index(d, F(in), s, static_cast<float*>(out), idx);
  };
  void* const out = bf16 ? static_cast<void*>(H(y)) : static_cast<void*>(F(y));
  if ((bf16 || precision() == Precision::bf16 || recompute_activations()) && records) {
    // Keep the winners' positions (1 byte per output) rather than x, which then lives only as
    // long as its other users (bf16 mixed precision, or recompute_activations()).
    Tensor idx = Tensor::empty(y.shape(), DType::u8, x.device());
    forward(x, out, idx.data<uint8_t>());
    // bf16 gradients: a bf16 gy (a convolution's input gradient) is routed as it is, into a bf16 gx
    // when the autograd gives one (only then: Bf16Grads::passes) or widened into a float one.
    record(
        y, "maxpool2d", {x},
        [s, idx, last](const Tensor& gy, const std::vector<Tensor>& g) {
          const uint8_t* id = idx.data<uint8_t>();
          if (is_bf16(g[0])) maxpool2d_backward_index(gy.device(), id, H(gy), s, H(g[0]), fresh_gradient(0), last);
          else if (is_bf16(gy)) maxpool2d_backward_index(gy.device(), id, H(gy), s, F(g[0]), fresh_gradient(0), last);
          else maxpool2d_backward_index(gy.device(), id, F(gy), s, F(g[0]), fresh_gradient(0), last);
        },
        {true}, bf16_grads_moving(1, bf16));
    attach_recipe(y, {&x}, [forward](const std::vector<Tensor>& in, void* o) {
      forward(in[0], o, nullptr);  // the same maxima the indexed forward wrote
    });
    return y;
  }
  if (bf16) {  // nothing recorded
    forward(x, out, nullptr);
    return y;
  }
  maxpool2d_forward<float>(x.device(), F(x), s, F(y));
  return record(y, "maxpool2d", {x}, [s, xs = x.detach()](const Tensor& gy, const std::vector<Tensor>& g) {
    maxpool2d_backward<float>(gy.device(), F(xs), F(gy), s, F(g[0]));
  });
}

Tensor upsample_bilinear2x(const Tensor& x) {
  profile::OpScope op_range("upsample_bilinear2x");
  check_activation("upsample_bilinear2x", x);
  check_4d("upsample_bilinear2x", x);
  Shape4 s = x.shape4();
  Tensor y = like_dtype(x, {s.n, s.c, 2 * s.h, 2 * s.w});
  const bool bf16 = is_bf16(x), last = x.channels_last();
  y.set_channels_last(last);  // y, gy and gx in x's layout
  const auto forward = [s, bf16, last, d = x.device()](const Tensor& in, void* out) {
    if (bf16) upsample_bilinear2x_forward_bf16(d, H(in), s, static_cast<uint16_t*>(out), last);
    else upsample_bilinear2x_forward<float>(d, F(in), s, static_cast<float*>(out));
  };
  forward(x, bf16 ? static_cast<void*>(H(y)) : static_cast<void*>(F(y)));
  record(
      y, "upsample_bilinear2x", {x},
      [s, last](const Tensor& gy, const std::vector<Tensor>& g) {
        if (is_bf16(gy))  // bf16 gradients: a convolution's input gradient as cuDNN wrote it
          upsample_bilinear2x_backward_bf16(gy.device(), H(gy), s, F(g[0]), !fresh_gradient(0), last);
        else
          upsample_bilinear2x_backward<float>(gy.device(), F(gy), s, F(g[0]), !fresh_gradient(0), last);
      },
      {true}, bf16_grads_of_upsampling(bf16));
  attach_recipe(y, {&x}, [forward](const std::vector<Tensor>& in, void* out) { forward(in[0], out); });
  return y;
}

Tensor avg_pool2d(const Tensor& x, int64_t k) {
  profile::OpScope op_range("avg_pool2d");
  check_float("avg_pool2d", {&x});
  check_4d("avg_pool2d", x);
  CAF_REQUIRE(k >= 1 && k % 2 == 1, "avg_pool2d: window must be odd, got " + std::to_string(k));
  Shape4 s = x.shape4();
  Tensor y = like(x, x.shape());
  avg_pool2d_forward<float>(x.device(), F(x), s, k, F(y));
  return record(y, "avg_pool2d", {x}, [s, k](const Tensor& gy, const std::vector<Tensor>& g) {
    avg_pool2d_backward<float>(gy.device(), F(gy), s, k, F(g[0]));
  });
}

Tensor gaussian_blur(const Tensor& x, int k, double sigma) {
  profile::OpScope op_range("gaussian_blur");
  check_float("gaussian_blur", {&x});
  check_4d("gaussian_blur", x);
  CAF_REQUIRE(sigma > 0, "gaussian_blur: sigma must be positive");
  Shape4 s = x.shape4();
  Tensor y = like(x, x.shape());
  gaussian_blur_forward<float>(x.device(), F(x), s, k, sigma, F(y));
  return record(y, "gaussian_blur", {x}, [s, k, sigma](const Tensor& gy, const std::vector<Tensor>& g) {
    gaussian_blur_backward<float>(gy.device(), F(gy), s, k, sigma, F(g[0]));
  });
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  profile::OpScope op_range("matmul");
  check_float("matmul", {&a, &b});
  CAF_REQUIRE_SHAPE(a.ndim() == 2 && b.ndim() == 2 && a.dim(1) == b.dim(0),
                    "matmul: " + a.describe() + " x " + b.describe());
  int64_t M = a.dim(0), K = a.dim(1), N = b.dim(1);
  Tensor y = like(a, {M, N});
  matmul_forward<float>(a.device(), F(a), F(b), F(y), M, K, N);
  return record(y, "matmul", {a, b}, [M, K, N, as = a.detach(), bs = b.detach()](const Tensor& gy, const std::vector<Tensor>& g) {
    matmul_backward<float>(gy.device(), F(as), F(bs), F(gy), F(g[0]), F(g[1]), M, K, N);
  });
}

Tensor Tensor::reshape(const Dims& shape) const {
  CAF_REQUIRE_SHAPE(dims_numel(shape) == numel(), "reshape " + describe() + " to " + dims_str(shape));
  CAF_REQUIRE_SHAPE(!channels_last(), "reshape of " + describe() + ": to_planar first");
  Tensor y = view_of(storage(), offset(), shape, dtype(), device());
  if (dtype() != DType::f32) return y;
  return record(y, "reshape", {*this}, [](const Tensor& gy, const std::vector<Tensor>& g) {
    binary_forward<float>(gy.device(), BinaryOp::add, F(g[0]), F(gy), F(g[0]), gy.numel());
  });
}

}  // namespace caf
