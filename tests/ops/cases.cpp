// tests/ops/cases.cpp: every op's cases. Adding an op means adding its name to op_names() and at
// least one case here (and its fixture in tests/reference/make_op_fixtures.py); --coverage fails
// otherwise. Case names are the fixture prefixes, so they must match the Python script.
#include "kernels/batchnorm.h"
#include "kernels/channels.h"
#include "kernels/conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/gaussian.h"
#include "kernels/matmul.h"
#include "kernels/pool.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"
#include "kernels/upsample.h"
#include "tests/ops/harness.h"

namespace caf::test {

namespace {

// Tolerances, each set once with its reason.
// grad (all cases): central differences in double with h = 1e-6 have truncation error ~1e-12 and
//   rounding error ~1e-10 relative; 1e-6 leaves four orders of margin while any wrong term in a
//   gradient shows as an O(1) error.
// parity / fixture, per family:
const char* kExact =
    "same float functor on both sides (or the same sum order); only libm vs CUDA math ulps: "
    "NMSE ~1e-14, bound 1e-10";
const char* kBitExact =
    "the same float functor on both sides in the same order, no libm, and no fused multiply-adds "
    "on either side (CUDA kernels build with -fmad=false, kernels/cpu/pixelwise.cpp with "
    "-ffp-contract=off): GPU == CPU bit for bit (parity bound 0); PyTorch orders its sums "
    "differently: fixture bound 1e-10";
const char* kReduction =
    "float sums in different orders (GPU tree vs CPU/PyTorch): relative error ~sqrt(n)*6e-8, "
    "NMSE ~1e-13, bound 1e-10";
const char* kConv =
    "cuDNN may pick Winograd/FFT algorithms whose fp32 error reaches ~1e-5 relative: NMSE bound 1e-8 "
    "on the GPU; im2col+GEMM vs PyTorch's CPU conv differ only in sum order: 1e-10";
const char* kBatchNorm =
    "batch statistics in float (cuDNN) vs double (reference) and 1/sqrt in float; normalised values "
    "near 0 amplify rounding: NMSE bound 1e-9 on the GPU, 1e-10 against PyTorch";

const char* kBatchNormRelu =
    "statistics in double on every side (in different orders) rounded to float, so saved values "
    "differ by an ulp at most and the ReLU mask agrees away from z = 0: NMSE ~1e-14, bound 1e-10";

Dims S(std::initializer_list<int64_t> d) { return Dims(d); }

std::string dims_name(Shape4 s) {
  return std::to_string(s.n) + "x" + std::to_string(s.c) + "x" + std::to_string(s.h) + "x" +
         std::to_string(s.w);
}

void unary(const std::string& op, UnaryOp kind, double lo, double hi, double a = 0, double b = 0) {
  Dims sh = S({2, 3, 4, 5});
  int64_t n = numel(sh);
  add_case({op, op + "/2x3x4x5", {{sh, lo, hi}}, {{sh}}, 1e-6, 1e-10, 1e-10, kExact},
           [=](auto& io, bool bwd) {
             CAF_CASE_T;
             if (!bwd)
               unary_forward<T>(io.dev, kind, io.in[0], io.out[0], n, T(a), T(b));
             else
               unary_backward<T>(io.dev, kind, io.in[0], io.out[0], io.gout[0], io.gin[0], n, T(a),
                                 T(b));
           });
}

// b_lo/b_hi: range of the second operand (div keeps it away from 0).
void binary(const std::string& op, BinaryOp kind, double b_lo = -1, double b_hi = 1) {
  Dims sh = S({2, 3, 4, 5});
  int64_t n = numel(sh);
  add_case({op, op + "/2x3x4x5", {{sh}, {sh, b_lo, b_hi}}, {{sh}}, 1e-6, 1e-10, 1e-10, kExact},
           [=](auto& io, bool bwd) {
             CAF_CASE_T;
             if (!bwd)
               binary_forward<T>(io.dev, kind, io.in[0], io.in[1], io.out[0], n);
             else
               binary_backward<T>(io.dev, kind, io.in[0], io.in[1], io.gout[0], io.gin[0],
                                  io.gin[1], n);
           });
  // Only the second input needs a gradient: the null-gradient branch of the backward.
  add_case({op, op + "/grad_b_only", {{sh, -1, 1, false}, {sh, b_lo, b_hi}}, {{sh}}, 1e-6, 1e-10,
            1e-10, kExact},
           [=](auto& io, bool bwd) {
             CAF_CASE_T;
             if (!bwd)
               binary_forward<T>(io.dev, kind, io.in[0], io.in[1], io.out[0], n);
             else
               binary_backward<T>(io.dev, kind, io.in[0], io.in[1], io.gout[0], nullptr,
                                  io.gin[1], n);
           });
}

void reductions() {
  Dims sh = S({2, 3, 4, 5});
  Shape4 s = shape4(sh);
  for (bool mean : {false, true}) {
    std::string op = mean ? "mean" : "sum";
    double scale = mean ? 1.0 / double(s.numel()) : 1.0;
    add_case({op, op + "/2x3x4x5", {{sh}}, {{S({1})}}, 1e-6, 1e-10, 1e-10, kReduction},
             [=](auto& io, bool bwd) {
               CAF_CASE_T;
               if (!bwd)
                 reduce_all_forward<T>(io.dev, io.in[0], s.numel(), T(scale), io.out[0]);
               else
                 reduce_all_backward<T>(io.dev, io.gout[0], s.numel(), T(scale), io.gin[0]);
             });
    std::string opc = op + "_channels";
    double cscale = mean ? 1.0 / double(s.n * s.hw()) : 1.0;
    add_case({opc, opc + "/2x3x4x5", {{sh}}, {{S({3})}}, 1e-6, 1e-10, 1e-10, kReduction},
             [=](auto& io, bool bwd) {
               CAF_CASE_T;
               if (!bwd)
                 reduce_channels_forward<T>(io.dev, io.in[0], s, T(cscale), io.out[0]);
               else
                 reduce_channels_backward<T>(io.dev, io.gout[0], s, T(cscale), io.gin[0]);
             });
  }
  // A sum long enough to use every block of the GPU's two-pass reduction.
  Dims big = S({4, 8, 64, 64});
  Shape4 b = shape4(big);
  add_case({"sum", "sum/4x8x64x64", {{big}}, {{S({1})}}, 1e-6, 1e-10, 1e-10, kReduction},
           [=](auto& io, bool bwd) {
             CAF_CASE_T;
             if (!bwd)
               reduce_all_forward<T>(io.dev, io.in[0], b.numel(), T(1), io.out[0]);
             else
               reduce_all_backward<T>(io.dev, io.gout[0], b.numel(), T(1), io.gin[0]);
           });
}

void softmax() {
  for (Dims sh : {S({2, 2, 3, 4}), S({1, 5, 2, 3})}) {
    Shape4 s = shape4(sh);
    std::string name = "softmax_channels/" + std::to_string(s.n) + "x" + std::to_string(s.c) + "x" +
                       std::to_string(s.h) + "x" + std::to_string(s.w);
    add_case({"softmax_channels", name, {{sh, -3, 3}}, {{sh}}, 1e-6, 1e-10, 1e-10, kExact},
             [=](auto& io, bool bwd) {
               CAF_CASE_T;
               if (!bwd)
                 softmax_channels_forward<T>(io.dev, io.in[0], s, io.out[0]);
               else
                 softmax_channels_backward<T>(io.dev, io.out[0], io.gout[0], s, io.gin[0]);
             });
  }
}

void channels() {
  add_case({"concat_channels", "concat_channels/3+2", {{S({2, 3, 4, 5})}, {S({2, 2, 4, 5})}},
            {{S({2, 5, 4, 5})}}, 1e-6, 1e-10, 1e-10, kExact},
           [](auto& io, bool bwd) {
             CAF_CASE_T;
             if (!bwd)
               concat_channels_forward<T>(io.dev, io.in[0], 3, io.in[1], 2, 2, 20, io.out[0]);
             else
               concat_channels_backward<T>(io.dev, io.gout[0], 3, 2, 2, 20, io.gin[0], io.gin[1]);
           });
  Shape4 s{2, 5, 3, 4};
  add_case({"slice_channels", "slice_channels/1:4", {{S({2, 5, 3, 4})}}, {{S({2, 3, 3, 4})}}, 1e-6,
            1e-10, 1e-10, kExact},
           [=](auto& io, bool bwd) {
             CAF_CASE_T;
             if (!bwd)
               slice_channels_forward<T>(io.dev, io.in[0], s, 1, 4, io.out[0]);
             else
               slice_channels_backward<T>(io.dev, io.gout[0], s, 1, 4, io.gin[0]);
           });
}

void conv(const std::string& name, Shape4 x, int64_t k_out, int64_t k, bool perf_only = false) {
  Conv2dShape cs{x, k_out, k};
  Dims xs = S({x.n, x.c, x.h, x.w}), ws = S({k_out, x.c, k, k}), bs = S({k_out}),
       ys = S({x.n, k_out, x.h, x.w});
  OpCase c{"conv2d", "conv2d/" + name, {{xs}, {ws, -0.5, 0.5}, {bs}}, {{ys}}, 1e-6, 1e-8, 1e-10, kConv};
  c.flops = cs.flops();
  c.perf_only = perf_only;
  add_case(c, [=](auto& io, bool bwd) {
    CAF_CASE_T;
    if (!bwd) {
      conv2d_forward<T>(io.dev, io.in[0], io.in[1], io.in[2], io.out[0], cs);
    } else {
      conv2d_backward_data<T>(io.dev, io.in[1], io.gout[0], io.gin[0], cs);
      conv2d_backward_filter<T>(io.dev, io.in[0], io.gout[0], io.gin[1], cs);
      conv2d_backward_bias<T>(io.dev, io.gout[0], io.gin[2], cs);
    }
  });
}

// Batch norm in training mode; with gamma_grad false the backward gets a null ggamma, which forces
// the CUDA path that lets cuDNN write the unwanted gradient to scratch.
void batchnorm_train(Shape4 s, double lo, double hi, bool gamma_grad) {
  Dims xs = S({s.n, s.c, s.h, s.w}), cs = S({s.c});
  BatchNormArgs a{s, 1e-5, 0.1};
  add_case({"batchnorm2d_train", "batchnorm2d_train/" + dims_name(s),
            {{xs, lo, hi}, {cs, 0.5, 1.5, gamma_grad}, {cs}, {cs, -1, 1, false, true},
             {cs, 0.5, 1.5, false, true}},
            {{xs}, {cs, false}, {cs, false}}, 1e-6, 1e-9, 1e-10, kBatchNorm},
           [=](auto& io, bool bwd) {
             CAF_CASE_T;
             if (!bwd)
               batchnorm_train_forward<T>(io.dev, io.in[0], io.in[1], io.in[2], io.out[0],
                                          io.out[1], io.out[2], io.in[3], io.in[4], a);
             else
               batchnorm_train_backward<T>(io.dev, io.in[0], io.in[1], io.gout[0], io.out[1],
                                           io.out[2], io.gin[0], gamma_grad ? io.gin[1] : nullptr,
                                           io.gin[2], a);
           });
}

// Fused batch norm + ReLU, same inputs and outputs as batchnorm_train (beta's gradient is
// always asked for, gamma's optionally). The CUDA launcher's branches, each forced by a case:
// float4 access (H*W % 4 == 0: 2x3x4x5, 1x4x8x8), scalar access and two 4096-value chunks per
// plane, the second partial (1x2x65x65), a null gamma gradient (1x4x8x8).
void batchnorm_relu_train(Shape4 s, double lo, double hi, bool gamma_grad) {
  Dims xs = S({s.n, s.c, s.h, s.w}), cs = S({s.c});
  BatchNormArgs a{s, 1e-5, 0.1};
  add_case({"batchnorm_relu2d_train", "batchnorm_relu2d_train/" + dims_name(s),
            {{xs, lo, hi}, {cs, 0.5, 1.5, gamma_grad}, {cs, -0.5, 0.5}, {cs, -1, 1, false, true},
             {cs, 0.5, 1.5, false, true}},
            {{xs}, {cs, false}, {cs, false}}, 1e-6, 1e-10, 1e-10, kBatchNormRelu},
           [=](auto& io, bool bwd) {
             CAF_CASE_T;
             if (!bwd)
               batchnorm_relu_train_forward<T>(io.dev, io.in[0], io.in[1], io.in[2], io.out[0],
                                               io.out[1], io.out[2], io.in[3], io.in[4], a);
             else
               batchnorm_relu_train_backward<T>(io.dev, io.in[0], io.in[1], io.in[2], io.gout[0],
                                                io.out[1], io.out[2], io.gin[0],
                                                gamma_grad ? io.gin[1] : nullptr, io.gin[2], a);
           });
}

// Inference-mode batch norm + ReLU, forward only (used where no gradient is recorded).
void batchnorm_relu_eval() {
  Dims xs = S({2, 3, 4, 5}), cs = S({3});
  BatchNormArgs a{shape4(xs), 1e-5, 0.1};
  add_case({"batchnorm_relu2d_eval", "batchnorm_relu2d_eval/2x3x4x5",
            {{xs, -2, 3, false}, {cs, 0.5, 1.5, false}, {cs, -0.5, 0.5, false}, {cs, -1, 1, false},
             {cs, 0.5, 1.5, false}},
            {{xs, false}}, 1e-6, 1e-10, 1e-10, kExact},
           [=](auto& io, bool bwd) {
             CAF_CASE_T;
             if (!bwd)
               batchnorm_relu_eval_forward<T>(io.dev, io.in[0], io.in[1], io.in[2], io.in[3], io.in[4],
                                              io.out[0], a);
           });
}

void batchnorm() {
  batchnorm_relu_eval();
  batchnorm_relu_train({2, 3, 4, 5}, -2, 3, true);
  batchnorm_relu_train({1, 4, 8, 8}, -1, 1, false);
  batchnorm_relu_train({1, 2, 65, 65}, -1, 2, true);
  batchnorm_train({2, 3, 4, 5}, -2, 3, true);
  // A single image (N = 1): 8x8 pixels per channel keep the statistics well conditioned.
  batchnorm_train({1, 4, 8, 8}, -1, 1, false);
  Dims xs = S({2, 3, 4, 5}), cs = S({3});
  BatchNormArgs a{shape4(xs), 1e-5, 0.1};
  add_case({"batchnorm2d_eval", "batchnorm2d_eval/2x3x4x5",
            {{xs, -2, 3}, {cs, 0.5, 1.5}, {cs}, {cs, -1, 1, false}, {cs, 0.5, 1.5, false}},
            {{xs}}, 1e-6, 1e-10, 1e-10, kExact},
           [=](auto& io, bool bwd) {
             CAF_CASE_T;
             if (!bwd)
               batchnorm_eval_forward<T>(io.dev, io.in[0], io.in[1], io.in[2], io.in[3], io.in[4],
                                         io.out[0], a);
             else
               batchnorm_eval_backward<T>(io.dev, io.in[0], io.in[1], io.in[3], io.in[4],
                                          io.gout[0], io.gin[0], io.gin[1], io.gin[2], a);
           });
}


void pooling() {
  for (Shape4 s : {Shape4{2, 3, 6, 8}, Shape4{1, 2, 5, 7}}) {
    Dims xs = S({s.n, s.c, s.h, s.w}), ys = S({s.n, s.c, s.h / 2, s.w / 2});
    add_case({"maxpool2d", "maxpool2d/" + dims_name(s), {{xs}}, {{ys}}, 1e-6, 1e-10, 1e-10, kExact},
             [=](auto& io, bool bwd) {
               CAF_CASE_T;
               if (!bwd)
                 maxpool2d_forward<T>(io.dev, io.in[0], s, io.out[0]);
               else
                 maxpool2d_backward<T>(io.dev, io.in[0], io.gout[0], s, io.gin[0]);
             });
  }
  for (const auto& sk : {std::pair<Shape4, int64_t>{{1, 2, 7, 9}, 3}, {{1, 1, 24, 24}, 21}}) {
    const Shape4 s = sk.first;  // plain copies: lambdas may not capture structured bindings in C++17
    const int64_t k = sk.second;
    Dims xs = S({s.n, s.c, s.h, s.w});
    add_case({"avg_pool2d", "avg_pool2d/" + dims_name(s) + "_k" + std::to_string(k), {{xs}}, {{xs}},
              1e-6, 1e-10, 1e-10, kReduction},
             [=](auto& io, bool bwd) {
               CAF_CASE_T;
               if (!bwd)
                 avg_pool2d_forward<T>(io.dev, io.in[0], s, k, io.out[0]);
               else
                 avg_pool2d_backward<T>(io.dev, io.gout[0], s, k, io.gin[0]);
             });
  }
}

void upsample() {
  for (Shape4 s : {Shape4{2, 3, 4, 5}, Shape4{1, 2, 1, 3}, Shape4{1, 1, 8, 8}}) {
    Dims xs = S({s.n, s.c, s.h, s.w}), ys = S({s.n, s.c, 2 * s.h, 2 * s.w});
    add_case({"upsample_bilinear2x", "upsample_bilinear2x/" + dims_name(s), {{xs}}, {{ys}}, 1e-6,
              0, 1e-10, kBitExact},
             [=](auto& io, bool bwd) {
               CAF_CASE_T;
               if (!bwd)
                 upsample_bilinear2x_forward<T>(io.dev, io.in[0], s, io.out[0]);
               else
                 upsample_bilinear2x_backward<T>(io.dev, io.gout[0], s, io.gin[0]);
             });
  }
}

void gaussian() {
  for (Shape4 s : {Shape4{1, 3, 12, 12}, Shape4{2, 1, 5, 7}}) {
    Dims xs = S({s.n, s.c, s.h, s.w});
    add_case({"gaussian_blur", "gaussian_blur/" + dims_name(s) + "_k11", {{xs}}, {{xs}}, 1e-6, 1e-10,
              1e-10, kReduction},
             [=](auto& io, bool bwd) {
               CAF_CASE_T;
               if (!bwd)
                 gaussian_blur_forward<T>(io.dev, io.in[0], s, 11, 1.5, io.out[0]);
               else
                 gaussian_blur_backward<T>(io.dev, io.gout[0], s, 11, 1.5, io.gin[0]);
             });
  }
}

void matmul() {
  // 7x700x400: several K blocks of the CPU GEMM, and its accumulating (beta = 1) backward over a
  // long inner extent; 2x3x5000: more columns than one outer column block (4096).
  for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{5, 7, 3}, {1, 4, 6}, {33, 17, 40},
                         {7, 700, 400}, {2, 3, 5000}}) {
    std::string name = "matmul/" + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n);
    OpCase c{"matmul", name, {{S({m, k})}, {S({k, n})}}, {{S({m, n})}}, 1e-6, 1e-10, 1e-10, kReduction};
    c.flops = 2.0 * m * k * n;
    add_case(c, [=, m = m, k = k, n = n](auto& io, bool bwd) {
      CAF_CASE_T;
      if (!bwd)
        matmul_forward<T>(io.dev, io.in[0], io.in[1], io.out[0], m, k, n);
      else
        matmul_backward<T>(io.dev, io.in[0], io.in[1], io.gout[0], io.gin[0], io.gin[1], m, k, n);
    });
  }
}

// Perf-only cases at the activation sizes of DRAEM's networks (batch 8, 256x256 input): they
// time the bandwidth-bound ops that surround the convolutions.
void perf_cases() {
  auto perf = [](OpCase c, auto body) {
    c.perf_only = true;
    c.reason = "perf only";
    add_case(c, body);
  };
  Dims big = S({8, 64, 256, 256});
  Shape4 b = shape4(big);
  perf({"relu", "relu/perf_8x64x256x256", {{big}}, {{big}}, 0, 0, 0, "", 0, 8.0 * b.numel()},
       [=](auto& io, bool bwd) {
         CAF_CASE_T;
         if (!bwd) unary_forward<T>(io.dev, UnaryOp::relu, io.in[0], io.out[0], b.numel());
         else unary_backward<T>(io.dev, UnaryOp::relu, io.in[0], io.out[0], io.gout[0], io.gin[0], b.numel());
       });
  BatchNormArgs a{b, 1e-5, 0.1};
  Dims c64 = S({64});
  perf({"batchnorm2d_train", "batchnorm2d_train/perf_8x64x256x256",
        {{big}, {c64}, {c64}, {c64, -1, 1, false, true}, {c64, 0.5, 1.5, false, true}},
        {{big}, {c64, false}, {c64, false}}, 0, 0, 0, "", 0, 12.0 * b.numel()},
       [=](auto& io, bool bwd) {
         CAF_CASE_T;
         if (!bwd)
           batchnorm_train_forward<T>(io.dev, io.in[0], io.in[1], io.in[2], io.out[0], io.out[1],
                                      io.out[2], io.in[3], io.in[4], a);
         else
           batchnorm_train_backward<T>(io.dev, io.in[0], io.in[1], io.gout[0], io.out[1], io.out[2],
                                       io.gin[0], io.gin[1], io.gin[2], a);
       });
  perf({"batchnorm_relu2d_train", "batchnorm_relu2d_train/perf_8x64x256x256",
        {{big}, {c64}, {c64}, {c64, -1, 1, false, true}, {c64, 0.5, 1.5, false, true}},
        {{big}, {c64, false}, {c64, false}}, 0, 0, 0, "", 0, 8.0 * b.numel()},
       [=](auto& io, bool bwd) {
         CAF_CASE_T;
         if (!bwd)
           batchnorm_relu_train_forward<T>(io.dev, io.in[0], io.in[1], io.in[2], io.out[0], io.out[1],
                                           io.out[2], io.in[3], io.in[4], a);
         else
           batchnorm_relu_train_backward<T>(io.dev, io.in[0], io.in[1], io.in[2], io.gout[0], io.out[1],
                                            io.out[2], io.gin[0], io.gin[1], io.gin[2], a);
       });
  perf({"maxpool2d", "maxpool2d/perf_8x64x256x256", {{big}}, {{S({8, 64, 128, 128})}}, 0, 0, 0, "", 0,
        5.0 * b.numel()},
       [=](auto& io, bool bwd) {
         CAF_CASE_T;
         if (!bwd) maxpool2d_forward<T>(io.dev, io.in[0], b, io.out[0]);
         else maxpool2d_backward<T>(io.dev, io.in[0], io.gout[0], b, io.gin[0]);
       });
  Shape4 u{8, 64, 128, 128};
  perf({"upsample_bilinear2x", "upsample_bilinear2x/perf_8x64x128x128", {{S({8, 64, 128, 128})}},
        {{big}}, 0, 0, 0, "", 0, 20.0 * u.numel()},
       [=](auto& io, bool bwd) {
         CAF_CASE_T;
         if (!bwd) upsample_bilinear2x_forward<T>(io.dev, io.in[0], u, io.out[0]);
         else upsample_bilinear2x_backward<T>(io.dev, io.gout[0], u, io.gin[0]);
       });
  Shape4 img{8, 3, 256, 256};
  Dims imgd = S({8, 3, 256, 256});
  perf({"gaussian_blur", "gaussian_blur/perf_8x3x256x256_k11", {{imgd}}, {{imgd}}, 0, 0, 0, "",
        2.0 * 121 * img.numel(), 8.0 * img.numel()},
       [=](auto& io, bool bwd) {
         CAF_CASE_T;
         if (!bwd) gaussian_blur_forward<T>(io.dev, io.in[0], img, 11, 1.5, io.out[0]);
         else gaussian_blur_backward<T>(io.dev, io.gout[0], img, 11, 1.5, io.gin[0]);
       });
  Shape4 map{8, 1, 256, 256};
  perf({"avg_pool2d", "avg_pool2d/perf_8x1x256x256_k21", {{S({8, 1, 256, 256})}}, {{S({8, 1, 256, 256})}},
        0, 0, 0, "", 441.0 * map.numel(), 8.0 * map.numel()},
       [=](auto& io, bool bwd) {
         CAF_CASE_T;
         if (!bwd) avg_pool2d_forward<T>(io.dev, io.in[0], map, 21, io.out[0]);
         else avg_pool2d_backward<T>(io.dev, io.gout[0], map, 21, io.gin[0]);
       });
  perf({"matmul", "matmul/perf_1024x1024x1024", {{S({1024, 1024})}, {S({1024, 1024})}},
        {{S({1024, 1024})}}, 0, 0, 0, "", 2.0 * 1024 * 1024 * 1024, 12.0 * 1024 * 1024},
       [=](auto& io, bool bwd) {
         CAF_CASE_T;
         if (!bwd) matmul_forward<T>(io.dev, io.in[0], io.in[1], io.out[0], 1024, 1024, 1024);
         else matmul_backward<T>(io.dev, io.in[0], io.in[1], io.gout[0], io.gin[0], io.gin[1], 1024, 1024, 1024);
       });
}

}  // namespace

void register_all_cases() {
  if (!registry().empty()) return;
  binary("add", BinaryOp::add);
  binary("sub", BinaryOp::sub);
  binary("mul", BinaryOp::mul);
  binary("div", BinaryOp::div, 0.5, 2);
  unary("scale", UnaryOp::scale, -1, 1, 1.7);
  unary("add_scalar", UnaryOp::add_scalar, -1, 1, 0.3);
  unary("relu", UnaryOp::relu, -1, 1);
  unary("sigmoid", UnaryOp::sigmoid, -3, 3);
  unary("exp", UnaryOp::exp, -2, 2);
  unary("log", UnaryOp::log, 0.5, 2);
  unary("square", UnaryOp::square, -1, 1);
  unary("clamp", UnaryOp::clamp, -1, 1, -0.5, 0.5);
  reductions();
  softmax();
  channels();
  conv("2x3x5x6_k4", {2, 3, 5, 6}, 4, 3);
  conv("1x8x4x4_k8", {1, 8, 4, 4}, 8, 3);
  conv("2x6x7x5_k2", {2, 6, 7, 5}, 2, 3);
  conv("1x2x6x6_k3_5x5", {1, 2, 6, 6}, 3, 5);
  conv("1x3x2x3_k2_5x5", {1, 3, 2, 3}, 2, 5);  // the kernel reaches past the whole image
  conv("perf_4x64x64x64_k64", {4, 64, 64, 64}, 64, 3, true);
  conv("perf_8x128x32x32_k128", {8, 128, 32, 32}, 128, 3, true);
  batchnorm();
  pooling();
  upsample();
  gaussian();
  matmul();
  perf_cases();
}

}  // namespace caf::test
