#include "nn/autograd.h"

#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <atomic>
#include <limits>

#include "kernels/cast.h"
#include "kernels/error.h"
#include "kernels/profile.h"
#include "kernels/runtime.h"

namespace caf {

namespace {
thread_local bool g_grad_enabled = true;
thread_local const std::vector<bool>* g_fresh = nullptr;  // the running backward's fresh inputs
bool g_poison_fresh = false;
std::atomic<int64_t> g_fresh_given{0}, g_bf16_given{0};
}
int64_t fresh_gradients_given() { return g_fresh_given.load(); }
int64_t bf16_gradients_given() { return g_bf16_given.load(); }

bool fresh_gradient(size_t i) { return g_fresh && i < g_fresh->size() && (*g_fresh)[i]; }
void set_poison_fresh_gradients(bool on) { g_poison_fresh = on; }

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn,
              std::vector<bool> write_first, Bf16Grads bf16) {
  if (!g_grad_enabled) return out;
  bool any = false;
  for (const auto& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return out;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->tag = profile::current_tag();
  node->backward = std::move(fn);
  node->out_shape = out.shape();
  node->device = out.device();
  node->writes_first = std::move(write_first);
  node->bf16 = std::move(bf16);
  for (const auto& t : inputs) {
    Edge e;
    if (t.defined() && t.requires_grad()) {
      if (t.impl()->grad_fn) e.fn = t.impl()->grad_fn;
      else e.leaf = t.impl_ptr();
    }
    node->inputs.push_back(std::move(e));
  }
  out.impl()->grad_fn = std::move(node);
  return out;
}

namespace {

// Testing: NaN in every element of a fresh buffer (bf16's NaN through the cast, as fill_ is fp32's).
void poison(const Tensor& t) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  if (t.dtype() != DType::bf16) return t.fill_(nan);
  Tensor f = Tensor::empty(t.shape(), DType::f32, t.device());
  f.fill_(nan);
  cast_to_bf16(t.device(), f.data<float>(), t.data<uint16_t>(), t.numel());
}

// The buffer that accumulates a gradient: the node's output gradient for results, the leaf's own.
Tensor node_gradient(Node& n) {
  if (!n.grad.defined()) n.grad = Tensor::zeros(n.out_shape, DType::f32, n.device);
  return n.grad;
}
Tensor leaf_gradient(TensorImpl& t) {
  if (!t.grad) t.grad = Tensor::zeros(t.shape, DType::f32, t.device).impl_ptr();
  return Tensor(t.grad);
}
Tensor gradient_buffer(TensorImpl& t) { return t.grad_fn ? node_gradient(*t.grad_fn) : leaf_gradient(t); }
Tensor gradient_buffer(const Edge& e) {
  if (e.fn) return node_gradient(*e.fn);
  return e.leaf ? leaf_gradient(*e.leaf) : Tensor();
}

// Nodes reachable from root, each after all nodes that consume its output. Owning pointers: a
// released node may drop the last other reference to a node that is still to run.
std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> post;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  seen.insert(root.get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      std::shared_ptr<Node> child = node->inputs[next++].fn;
      if (child && seen.insert(child.get()).second) stack.push_back({child, 0});
    } else {
      post.push_back(node);
      stack.pop_back();
    }
  }
  return {post.rbegin(), post.rend()};
}

}  // namespace

void run_backward(const Tensor& root) {
  CAF_REQUIRE(root.numel() == 1, "backward() needs a one-element tensor, got " + root.describe());
  CAF_REQUIRE(root.requires_grad(), "backward() on a tensor that does not require gradients");
  TensorImpl& r = *root.impl();
  if (!r.grad_fn) {  // a leaf: d root / d root = 1
    Tensor g = gradient_buffer(r);
    g.copy_(Tensor::from_vector(r.shape, {g.item() + 1.f}, r.device));
    return;
  }
  const std::vector<std::shared_ptr<Node>> order = topological_order(r.grad_fn);
  for (const auto& n : order)
    CAF_REQUIRE(!n->released, std::string("backward through '") + n->name +
                                  "' a second time: its saved tensors were freed by the first");
  Tensor seed = gradient_buffer(r);
  seed.fill_(1.f);
  const bool write_first = write_first_gradients();
  // bf16 gradients need the gradient's only contribution: count the input edges naming each node.
  const bool half_grads = write_first && bf16_gradients();
  std::unordered_map<const Node*, int> consumers;
  if (half_grads)
    for (const auto& n : order)
      for (const Edge& e : n->inputs)
        if (e.fn) ++consumers[e.fn.get()];
  // One profile range per run of nodes with the same tag: "R backward", "S backward", ...
  std::optional<profile::Scope> range;
  const char* range_tag = "";
  for (const auto& n : order) {
    const bool same = n->tag == range_tag || (n->tag && range_tag && std::strcmp(n->tag, range_tag) == 0);
    if (!range || !same) {
      range.reset();
      range_tag = n->tag;
      range.emplace(std::string(n->tag ? n->tag : "other") + " backward");
    }
    if (n->grad.defined()) {
      std::vector<Tensor> gin;
      std::vector<bool> fresh(n->inputs.size(), false);
      profile::OpScope op_range(n->name, true);
      for (size_t i = 0; i < n->inputs.size(); ++i) {
        const Edge& in = n->inputs[i];
        // A result's gradient not yet allocated, an op that can overwrite it, and no other input of
        // this node the same tensor (its contributions must add): a fresh buffer, not zeros.
        bool first = write_first && in.fn && !in.fn->grad.defined() && i < n->writes_first.size() &&
                     n->writes_first[i];
        for (size_t j = 0; first && j < n->inputs.size(); ++j) first = j == i || n->inputs[j].fn != in.fn;
        if (first) {
          const Bf16Grads &w = n->bf16, &p = in.fn->bf16;
          const bool half = half_grads && i < w.write.size() && w.write[i] && p.takes &&
                            (!w.rounds || p.takes_rounded) && (!w.passes || n->grad.dtype() == DType::bf16) &&
                            consumers[in.fn.get()] == 1;
          in.fn->grad = Tensor::empty(in.fn->out_shape, half ? DType::bf16 : DType::f32, in.fn->device);
          if (g_poison_fresh) poison(in.fn->grad);
          fresh[i] = true;
          ++g_fresh_given;
          if (half) ++g_bf16_given;
        }
        gin.push_back(gradient_buffer(in));
      }
      g_fresh = &fresh;
      try {
        n->backward(n->grad, gin);
      } catch (...) {
        // A fresh buffer the backward may not have written must not look like a gradient to a
        // later backward through the same producers.
        g_fresh = nullptr;
        for (size_t i = 0; i < fresh.size(); ++i)
          if (fresh[i]) n->inputs[i].fn->grad = Tensor();
        throw;
      }
      g_fresh = nullptr;
    }
    // Free what the node saved, its inputs and its output gradient; the node stays behind as a
    // marker so that a second backward through it fails with a clear message.
    n->backward = nullptr;
    n->inputs.clear();
    n->grad = Tensor();
    n->released = true;
  }
}

}  // namespace caf
