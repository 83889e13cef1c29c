// nn/autograd.h: reverse-mode automatic differentiation over a tape of nodes.
//
// Each recorded op creates one Node holding its inputs and a backward function. The backward
// function calls the op's backward kernels, which accumulate (+=) into the input gradients, so
// a tensor used twice simply receives two contributions. Non-leaf gradients live in the node
// that produced the tensor and are freed, with every saved tensor, as soon as that node has run.
// Saved tensors are stored detached (storage only), so nodes never keep their own outputs alive,
// and inputs are held as edges (kernels of the graph, not tensors), so an activation lives only as
// long as some backward saved it or the forward code still holds it.
#pragma once

#include <functional>
#include <vector>

#include "nn/tensor.h"

namespace caf {

// gout: gradient of the node's output. gin[i]: buffer to accumulate input i's gradient into, or
// undefined when input i needs none. Write-first (write_first_gradients(), kernels/runtime.h): an
// op that declared at record() time that its backward can overwrite input i's gradient may get,
// as that gradient's first contribution, a fresh buffer with undefined contents instead of a
// zero-filled one; fresh_gradient(i), asked inside the backward, says so, and the backward must
// then write (=) every element of gin[i] instead of adding (+=). That saves the zero fill and the
// read of the zeros for most activation gradients (those with one consumer, and the first-run
// consumer of the others).
// bf16 gradients (bf16_gradients(), kernels/runtime.h): a fresh buffer is bf16 instead of fp32
// when the writing op and the producing op agree (Bf16Grads below, declared at record() time) and
// the gradient has this one contribution (no other input edge of the graph names the producer).
// The values must be the ones an fp32 buffer would have led to: a writer that rounds (the batch
// norm's input gradient) hands bf16 only to a producer that would round its gradient anyway (a
// convolution's raw output, whose backward uses the bf16 operand alone); exact writers (cuDNN's
// bf16 input gradient, which the fp32 path widens exactly; max pooling routing a bf16 gout) hand
// it to any producer that takes bf16. Ops see it in the tensors' dtype: gin[i] bf16 (written,
// never added to) or gout bf16.
using BackwardFn = std::function<void(const Tensor& gout, const std::vector<Tensor>& gin)>;

struct Node;

// How an op's backward takes part in bf16 gradients (above); every flag off: fp32 only.
struct Bf16Grads {
  std::vector<bool> write;     // per input: the backward can write that input's fresh gradient in bf16
  bool rounds = false;         // what it writes is its fp32 gradient rounded (not the exact values)
  bool passes = false;         // it writes bf16 only from a bf16 gout (it moves values: max pooling)
  bool takes = false;          // the backward accepts a bf16 gout (reads it widened, exactly)
  bool takes_rounded = false;  // ... and uses only the gout rounded, so a rounded one changes nothing
};

// Where an input's gradient goes: the node that produced it (a result), or the leaf itself.
// Results are reached through their node only, never their tensor, so a node keeps no
// intermediate activation alive unless its backward saved it.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<TensorImpl> leaf;
  explicit operator bool() const { return fn || leaf; }
};

struct Node {
  const char* name = "";
  const char* tag = nullptr;  // the profile::Scope tag it was recorded under ("R", "S", ...)
  std::vector<Edge> inputs;  // empty edges where the input needs no gradient
  BackwardFn backward;
  Dims out_shape;
  Device device = Device::cpu;
  Tensor grad;  // gradient of the output, allocated (zeroed) at the first contribution
  bool released = false;
  std::vector<bool> writes_first;  // per input: the backward can overwrite (record()'s write_first)
  Bf16Grads bf16;                  // record()'s
};

// Inside a node's backward: whether gin[i] is a fresh buffer the backward must overwrite.
bool fresh_gradient(size_t i);

// Testing: fill every fresh buffer with NaN before the backward that must overwrite it, so an
// element the backward forgot stays NaN and fails any comparison.
void set_poison_fresh_gradients(bool on);
// How many fresh buffers backward passes have handed out since the process started.
int64_t fresh_gradients_given();
// How many of them were bf16 (bf16 gradients, above).
int64_t bf16_gradients_given();

bool grad_enabled();

// Within its scope, ops record nothing (evaluation, the Y pass of split training).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Attaches a node to `out` when gradients are enabled and any input requires them; returns out.
// write_first[i] (may be shorter than inputs): the backward overwrites input i's gradient when
// fresh_gradient(i) says so (see BackwardFn); bf16: how it takes part in bf16 gradients (above).
Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn,
              std::vector<bool> write_first = {}, Bf16Grads bf16 = {});

// Backward from a one-element tensor (called by Tensor::backward).
void run_backward(const Tensor& root);

}  // namespace caf
