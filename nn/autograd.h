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
// when the writing op declared at record() time that it can write input i's gradient in bf16, the
// producing op declared that its backward takes a bf16 output gradient, and the gradient has this
// one contribution (no other input edge of the graph names the producer). An op that only moves
// values (max pooling) declares bf16_passes: it writes bf16 only when its own gout is bf16, since
// rounding an fp32 gout would change the values. Ops see it in the tensors' dtype: gin[i] bf16
// (written, never added to) or gout bf16.
using BackwardFn = std::function<void(const Tensor& gout, const std::vector<Tensor>& gin)>;

struct Node;

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
  std::vector<bool> writes_bf16;   // per input: ... and can write it in bf16 (record()'s write_bf16)
  bool takes_bf16 = false;         // the backward accepts a bf16 output gradient (record()'s takes_bf16)
  bool bf16_passes = false;        // writes_bf16 holds only while grad is bf16 (record()'s bf16_passes)
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
// fresh_gradient(i) says so (see BackwardFn); write_bf16[i]: it can also write that fresh gradient
// as bf16 (with bf16_passes, only from a bf16 gout); takes_bf16: the backward accepts a bf16 gout
// (bf16 gradients, above).
Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn,
              std::vector<bool> write_first = {}, std::vector<bool> write_bf16 = {}, bool takes_bf16 = false,
              bool bf16_passes = false);

// Backward from a one-element tensor (called by Tensor::backward).
void run_backward(const Tensor& root);

}  // namespace caf
