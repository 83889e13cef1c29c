// kernels/runtime.h: which device runs, decided once at run time.
//
// A CUDA build still runs everywhere: when no usable GPU is found it prints one line and uses the
// CPU. CAF_DEVICE=cpu forces the CPU. Nothing here touches CUDA before the first call (never from
// a static initialiser), so a CPU-only test run never loads the driver.
#pragma once

#include <string>

#include "kernels/common.h"

namespace caf {

bool cuda_compiled();          // built with CAF_CUDA on
bool cuda_available();         // compiled, a device answers, and CAF_DEVICE is not "cpu"
Device default_device();       // cuda when available, else cpu
Device parse_device(const char* name);  // "cpu" | "cuda" | "auto"; throws ConfigError otherwise

// CAF_SYNC_DEBUG=1: synchronise after every kernel launch so asynchronous faults surface at
// the call that caused them.
bool sync_debug();

void synchronize(Device d);

// Convolution arithmetic. fp32: exact fp32 FMA math, so CUDA results match the CPU reference (the
// library's default; every parity test runs this way). tf32: cuDNN may use TF32 tensor cores
// (10-bit mantissa products, fp32 accumulation), as PyTorch's convolutions do by default; the
// trainer and `caf bench step` choose it unless told otherwise; the CPU computes fp32. bf16: mixed
// precision: each convolution rounds its input, weights and output gradient to bf16 and runs on
// bf16 tensor cores with fp32 accumulation, while every other op, the master weights, gradients
// and Adam stay fp32 (nn/ops.cpp conv2d; on the CPU the same roundings around the fp32
// convolution). CAF_TF32=1 in the environment makes tf32 the initial value.
enum class Precision { fp32, tf32, bf16 };
void set_precision(Precision p);
Precision precision();
const char* precision_name(Precision p);
Precision parse_precision(const std::string& name);  // "fp32" | "tf32" | "bf16"; ConfigError otherwise

// cuDNN algorithm choice: deterministic only (the default: no atomics, so a process repeats its
// gradients bit for bit) or the fastest of all (as PyTorch's cudnn.benchmark; some backward
// algorithms accumulate with atomics in a varying order). Plans are cached per setting.
void set_deterministic(bool on);
bool deterministic();
// Timed (the default): cuDNN's Find runs every algorithm once per shape and the fastest is used;
// timings are noisy, so another process (a second run, a resumed one) may pick another algorithm
// and round differently. Untimed: cuDNN's heuristics choose, the same in every process on the same
// GPU, cuDNN and shapes, so with deterministic() runs repeat and resume bit for bit across
// processes (PyTorch's cudnn.deterministic without cudnn.benchmark); maybe slower. Algorithms that
// need over 1 GiB of workspace are skipped (the heuristics, unlike Find, do not check that it can
// be allocated). `caf train --algorithms reproducible`, `caf bench step --algos reproducible`.
void set_timed_algorithms(bool on);
bool timed_algorithms();

// Batch norm + ReLU as one op (nn/modules.h ConvBnRelu; kernels/batchnorm.h), in training and in
// inference when nothing is recorded: on by default (CAF_FUSE=0 in the environment: off); off runs cuDNN's batch norm then ReLU, for
// side-by-side timing and checks.
void set_fused_bn_relu(bool on);
bool fused_bn_relu();

// Memory over time, in training (nn/ops.cpp): a convolution whose input came from the fused batch
// norm + ReLU (directly or through upsampling, max pooling, concatenation) keeps the recipe (that
// op's input and statistics, kept anyway) instead of the input and recomputes it in its backward;
// max pooling keeps its winners' positions (1 byte per output) instead of its input. Same values
// and gradients, bit for bit.
// On by default (CAF_RECOMPUTE=0 in the environment: off); off keeps the tensors, for side-by-side
// timing and memory.
void set_recompute_activations(bool on);
bool recompute_activations();

// Write-first gradients (nn/autograd.h): the first contribution to an activation's gradient is
// written into a fresh buffer by the ops that can (convolution's input gradient, the fused batch
// norm + ReLU, max pooling, upsampling, concatenation) instead of being added to a zero-filled one:
// one fill and one read less per activation gradient. Same values (x + 0 = x; only the sign of a
// zero in an activation gradient may differ, -0 written where +0 + -0 gave +0, which no parameter
// gradient or update can see); on by default (CAF_WRITE_FIRST=0 in the environment: off).
void set_write_first_gradients(bool on);
bool write_first_gradients();

// bf16 mixed precision's convolutions channels-last (NHWC): each bf16 copy is made in N,H,W,C
// order (weights K,k,k,C) by the same casts fused with a transpose, so cuDNN can use its NHWC
// tensor-core kernels; activations elsewhere stay fp32 NCHW. Same values, so the same results as
// planar bf16 on the CPU; on the GPU cuDNN's algorithms (and so their rounding) differ. Off by
// default until a GPU has timed it (bench step --layout nhwc).
void set_channels_last_convs(bool on);
bool channels_last_convs();

// bf16 mixed precision with bf16 activations: between the convolutions of a ConvBnRelu chain the
// activations are stored in bf16 instead of fp32 (nn/modules.cpp ConvBnRelu). The convolution
// writes its raw bf16 output (no fp32 copy, no bias pass); the fused batch norm + ReLU reads it
// with the bias added on the fly and writes bf16; pooling, upsampling and concatenation move bf16;
// the next convolution reads it as its bf16 operand without a cast. Statistics, parameters,
// gradients and Adam stay fp32. Half the bytes of every memory-bound pass and of the saved
// activations. Until a bilinear upsampling, the values are bit for bit those of bf16 with fp32
// activations (the next convolution rounded the same fp32 values to bf16 anyway); upsampling then
// interpolates the rounded values. Active only with precision bf16 and the fused batch norm +
// ReLU (bf16_activations_active()). Off by default until a GPU has timed it.
void set_bf16_activations(bool on);
bool bf16_activations();
bool bf16_activations_active();

// bf16 activation gradients (nn/autograd.h), with bf16 activations: where an activation's gradient
// has one contribution and both ops agree (a convolution's input gradient into the fused batch
// norm + ReLU, upsampling, max pooling or concatenation that produced the input; the batch norm's
// input gradient into the convolution whose raw output it read; max pooling's, concatenation's
// and to_planar's, when their own is bf16, into the batch norm before them), the gradient buffer
// is bf16 instead of fp32. The convolution writes cuDNN's bf16 input gradient there without
// widening it, and the next op reads it as it is; the batch norm writes its input gradient
// rounded, which is the bf16 operand the convolution's backward would have made of it; the ops
// that move values move them without arithmetic. The same values as fp32 gradient buffers, bit
// for bit: a raw output's bias gradient is summed from the rounded gradient either way
// (nn/ops.cpp; zero in exact arithmetic, since a training-mode batch norm removes any bias, and
// rounding noise however it is summed). Two casts and half the bytes of both gradients per
// conv-BN-ReLU.
// On by default (CAF_BF16_GRADS=0 in the environment: off); does nothing without bf16 activations.
void set_bf16_gradients(bool on);
bool bf16_gradients();

// Channels-last activations: bf16 activations with channels-last convolutions (both switches on).
// A convolution with a pending bias (ConvBnRelu) then leaves its raw bf16 output channels-last
// (TensorImpl::channels_last) instead of transposing it back, the fused batch norm + ReLU reads and
// writes that layout, and so do max pooling, upsampling and concatenation; the next convolution
// takes it as its operand as it is. Their gradients are fp32 (or bf16: bf16_gradients()),
// channels-last too. The
// convolutions that stay planar (3, 6 or 2 channels) and every other op take planar tensors
// (nn/ops.cpp to_planar transposes). Same values as planar bf16 activations; on the GPU the batch
// statistics are summed in another order.
bool channels_last_activations();

// One line describing the device that runs (name, memory, capability), for logs and JSON.
const char* device_description(Device d);

}  // namespace caf
