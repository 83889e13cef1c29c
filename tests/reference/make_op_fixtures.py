"""Write tests/reference/ops.cafx: PyTorch's outputs and gradients for the op cases of caf_ops.

Run from the repository root (needs torch and numpy; CI never runs this, the output is committed):

    /usr/bin/python3 tests/reference/make_op_fixtures.py

Then check with `caf_ops fixtures` and `caf_ops coverage`.

The CASES table mirrors tests/ops/cases.cpp: same case names, inputs (shape, range, grad) and
outputs in the same order. For every case the file holds, per the C++ harness (run_fixtures):
    <case>/in<i>    the float32 input i (uniform in the case's range, fixed seed)
    <case>/out<j>   output j
    <case>/gout<j>  a random upstream gradient for each differentiable output j
    <case>/gin<i>   PyTorch's autograd gradient of input i given gout, for inputs with grad=True
    <case>/state<i> the value of an in-place state input after the forward (documentation only)
References are PyTorch ops evaluated in float64 on the float32 inputs, then stored as float32.

Format (little-endian, tests/fixture.h): b"CAFX", u32 version, u32 count, then per tensor:
u32 name length, utf-8 name, u32 ndim, i64 dims[ndim], float32 data in C order.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cafx  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops.cafx")
SEED = 20240501

# sum/4x8x64x64 exists for the GPU's two-pass reduction; its input alone is 512 KiB. Its gradient
# (gout broadcast) is the same code path as sum/2x3x4x5's, so it is left out to keep the file small.
OMIT = {"sum/4x8x64x64/gin0"}


def I(shape, lo=-1.0, hi=1.0, grad=True, state=False):
    """An input spec, as tests/ops/harness.h's InputSpec."""
    return dict(shape=list(shape), lo=lo, hi=hi, grad=grad, state=state)


def dn(shape):
    return "x".join(str(d) for d in shape)


CASES = []  # (name, inputs, fn, differentiable flag per output)


def case(name, inputs, fn, out_grad=None):
    CASES.append((name, inputs, fn, out_grad))


# Elementwise (tests/ops/cases.cpp: binary(), unary()).
SH = [2, 3, 4, 5]
for op, f, blo, bhi in [("add", torch.add, -1, 1), ("sub", torch.sub, -1, 1),
                        ("mul", torch.mul, -1, 1), ("div", torch.div, 0.5, 2)]:
    case(f"{op}/2x3x4x5", [I(SH), I(SH, blo, bhi)], lambda a, b, f=f: f(a, b))
    case(f"{op}/grad_b_only", [I(SH, grad=False), I(SH, blo, bhi)], lambda a, b, f=f: f(a, b))
for op, lo, hi, f in [
    ("scale", -1, 1, lambda x: x * 1.7),
    ("add_scalar", -1, 1, lambda x: x + 0.3),
    ("relu", -1, 1, torch.relu),
    ("sigmoid", -3, 3, torch.sigmoid),
    ("exp", -2, 2, torch.exp),
    ("log", 0.5, 2, torch.log),
    ("square", -1, 1, torch.square),
    ("clamp", -1, 1, lambda x: torch.clamp(x, -0.5, 0.5)),
]:
    case(f"{op}/2x3x4x5", [I(SH, lo, hi)], f)

# Reductions: sum/mean over everything -> [1]; *_channels over (N, H, W) -> [C].
case("sum/2x3x4x5", [I(SH)], lambda x: x.sum().reshape(1))
case("sum_channels/2x3x4x5", [I(SH)], lambda x: x.sum(dim=(0, 2, 3)))
case("mean/2x3x4x5", [I(SH)], lambda x: x.mean().reshape(1))
case("mean_channels/2x3x4x5", [I(SH)], lambda x: x.mean(dim=(0, 2, 3)))
case("sum/4x8x64x64", [I([4, 8, 64, 64])], lambda x: x.sum().reshape(1))

for s in ([2, 2, 3, 4], [1, 5, 2, 3]):
    case(f"softmax_channels/{dn(s)}", [I(s, -3, 3)], lambda x: torch.softmax(x, dim=1))

case("concat_channels/3+2", [I([2, 3, 4, 5]), I([2, 2, 4, 5])], lambda a, b: torch.cat([a, b], 1))
case("slice_channels/1:4", [I([2, 5, 3, 4])], lambda x: x[:, 1:4])

# conv2d: stride 1, padding k//2, bias. Name suffix _k<n> is the output channel count.
for name, x, kout, k in [("2x3x5x6_k4", [2, 3, 5, 6], 4, 3), ("1x8x4x4_k8", [1, 8, 4, 4], 8, 3),
                         ("2x6x7x5_k2", [2, 6, 7, 5], 2, 3), ("1x2x6x6_k3_5x5", [1, 2, 6, 6], 3, 5)]:
    case(f"conv2d/{name}", [I(x), I([kout, x[1], k, k], -0.5, 0.5), I([kout])],
         lambda x, w, b, k=k: F.conv2d(x, w, b, stride=1, padding=k // 2))


def bn_train(x, gamma, beta, rmean, rvar):
    """y, batch mean, 1/sqrt(biased var + eps); updates rmean/rvar in place (momentum 0.1)."""
    y = F.batch_norm(x, rmean, rvar, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    xd = x.detach()
    mean = xd.mean(dim=(0, 2, 3))
    invstd = torch.rsqrt(xd.var(dim=(0, 2, 3), unbiased=False) + 1e-5)
    return y, mean, invstd


def bn_relu_train(x, gamma, beta, rmean, rvar):
    y, mean, invstd = bn_train(x, gamma, beta, rmean, rvar)
    return torch.relu(y), mean, invstd


def bn_eval(x, gamma, beta, rmean, rvar):
    return F.batch_norm(x, rmean, rvar, gamma, beta, training=False, eps=1e-5)


C3, C4 = [3], [4]
case("batchnorm2d_train/2x3x4x5",
     [I(SH, -2, 3), I(C3, 0.5, 1.5), I(C3), I(C3, -1, 1, False, True), I(C3, 0.5, 1.5, False, True)],
     bn_train, [True, False, False])
case("batchnorm2d_train/1x4x8x8",  # gamma without a gradient
     [I([1, 4, 8, 8]), I(C4, 0.5, 1.5, False), I(C4), I(C4, -1, 1, False, True),
      I(C4, 0.5, 1.5, False, True)],
     bn_train, [True, False, False])
case("batchnorm2d_eval/2x3x4x5",
     [I(SH, -2, 3), I(C3, 0.5, 1.5), I(C3), I(C3, -1, 1, False), I(C3, 0.5, 1.5, False)], bn_eval)

for s in ([2, 3, 6, 8], [1, 2, 5, 7]):  # floor mode: odd trailing row/column dropped
    case(f"maxpool2d/{dn(s)}", [I(s)], lambda x: F.max_pool2d(x, 2, 2))
for s, k in (([1, 2, 7, 9], 3), ([1, 1, 24, 24], 21)):
    case(f"avg_pool2d/{dn(s)}_k{k}", [I(s)],
         lambda x, k=k: F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=True))
for s in ([2, 3, 4, 5], [1, 2, 1, 3], [1, 1, 8, 8]):
    case(f"upsample_bilinear2x/{dn(s)}", [I(s)],
         lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))


def gaussian_blur(x, k=11, sigma=1.5):
    """Depthwise conv with the SSIM window g g^T (pytorch-ssim / DRAEM), zero padding k//2.
    The window is exact in double; caf rounds g to float first (a ~1e-15 NMSE effect)."""
    d = torch.arange(k, dtype=torch.float64) - k // 2
    g = torch.exp(-d * d / (2 * sigma * sigma))
    g = g / g.sum()
    w = torch.outer(g, g).expand(x.shape[1], 1, k, k).contiguous()
    return F.conv2d(x, w, padding=k // 2, groups=x.shape[1])


for s in ([1, 3, 12, 12], [2, 1, 5, 7]):
    case(f"gaussian_blur/{dn(s)}_k11", [I(s)], gaussian_blur)
for m, k, n in ((5, 7, 3), (1, 4, 6), (33, 17, 40)):
    case(f"matmul/{m}x{k}x{n}", [I([m, k]), I([k, n])], torch.matmul)

# Added after the others so that their random inputs (one generator, in order) stay as they were.
for s, lo, hi, gamma_grad in (([2, 3, 4, 5], -2, 3, True), ([1, 4, 8, 8], -1, 1, False),
                               ([1, 2, 65, 65], -1, 2, True)):
    c = [s[1]]
    case(f"batchnorm_relu2d_train/{dn(s)}",
         [I(s, lo, hi), I(c, 0.5, 1.5, gamma_grad), I(c, -0.5, 0.5), I(c, -1, 1, False, True),
          I(c, 0.5, 1.5, False, True)],
         bn_relu_train, [True, False, False])
case("batchnorm_relu2d_eval/2x3x4x5",
     [I(SH, -2, 3, False), I(C3, 0.5, 1.5, False), I(C3, -0.5, 0.5, False), I(C3, -1, 1, False),
      I(C3, 0.5, 1.5, False)],
     lambda x, g, b, rm, rv: torch.relu(bn_eval(x, g, b, rm, rv)), [False])


def uniform(gen, shape, lo, hi):
    """float32 values uniform in [lo, hi)."""
    return (torch.rand(shape, dtype=torch.float64, generator=gen) * (hi - lo) + lo).float()


def run_case(gen, name, inputs, fn, out_grad):
    """Returns [(tensor name, float32 tensor)] for one case."""
    out = []
    xs32 = [uniform(gen, s["shape"], s["lo"], s["hi"]) for s in inputs]
    xs = [x.double().requires_grad_(s["grad"]) for x, s in zip(xs32, inputs)]
    for i, x in enumerate(xs32):
        out.append((f"{name}/in{i}", x))
    ys = fn(*xs)
    ys = list(ys) if isinstance(ys, (tuple, list)) else [ys]
    out_grad = out_grad or [True] * len(ys)
    for j, y in enumerate(ys):
        out.append((f"{name}/out{j}", y.detach().float()))
    for i, (x, s) in enumerate(zip(xs, inputs)):
        if s["state"]:  # updated in place by the forward
            out.append((f"{name}/state{i}", x.detach().float()))
    diff = [(j, y) for j, y in enumerate(ys) if out_grad[j]]
    gouts = [uniform(gen, y.shape, -1, 1) for _, y in diff]
    for (j, _), g in zip(diff, gouts):
        out.append((f"{name}/gout{j}", g))
    if diff:
        torch.autograd.backward([y for _, y in diff], [g.double() for g in gouts])
    for i, (x, s) in enumerate(zip(xs, inputs)):
        if s["grad"]:
            out.append((f"{name}/gin{i}", x.grad.float()))
    return [(n, t) for n, t in out if n not in OMIT]


def main():
    torch.set_num_threads(1)  # deterministic summation order in the references
    gen = torch.Generator().manual_seed(SEED)
    names = [c[0] for c in CASES]
    assert len(set(names)) == len(names), "duplicate case name"
    tensors = []
    for name, inputs, fn, out_grad in CASES:
        got = run_case(gen, name, inputs, fn, out_grad)
        for n, t in got:
            assert math.isfinite(float(t.abs().sum())), n
        tensors += got
    cafx.write(OUT, tensors)
    print(f"wrote {len(tensors)} tensors for {len(CASES)} cases to {OUT} "
          f"({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
