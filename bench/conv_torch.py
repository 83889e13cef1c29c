"""PyTorch timing of the convolution shapes of `caf_ops perf perf` (tests/ops/cases.cpp), for
side-by-side ratios. Usage: python3 bench/conv_torch.py [--device cpu|cuda] [--threads N]
Forward FLOPs = 2*N*K*C*H*W*9; backward (data + filter gradients) = twice that. fp32, TF32 off,
so the numbers compare with caf's default (exact fp32) math."""
import argparse
import time

import torch
import torch.nn.functional as F

from torch_setup import setup

SHAPES = [("conv2d/perf_4x64x64x64_k64", 4, 64, 64, 64, 64),
          ("conv2d/perf_8x128x32x32_k128", 8, 128, 32, 32, 128)]


def timed(fn, sync, min_s=0.3):
    fn()
    sync()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        sync()
        n += 1
        el = time.perf_counter() - t0
        if el > min_s or n >= 1000:
            return el / n * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    dev, sync = setup(a.device, a.threads)
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}")
    print(f"{'case':36s} {'fwd ms':>10s} {'bwd ms':>10s} {'fwd GF/s':>10s} {'bwd GF/s':>10s}")
    for name, n, c, h, w, k in SHAPES:
        x = torch.rand(n, c, h, w, device=dev, requires_grad=True)
        wt = torch.randn(k, c, 3, 3, device=dev, requires_grad=True)
        b = torch.randn(k, device=dev, requires_grad=True)
        gy = torch.randn(n, k, h, w, device=dev)
        flops = 2.0 * n * k * c * h * w * 9
        with torch.no_grad():
            f = timed(lambda: F.conv2d(x, wt, b, padding=1), sync)
        y = F.conv2d(x, wt, b, padding=1)
        bw = timed(lambda: torch.autograd.grad(y, (x, wt, b), gy, retain_graph=True), sync)
        print(f"{name:36s} {f:10.3f} {bw:10.3f} {flops / f * 1e-6:10.1f} {2 * flops / bw * 1e-6:10.1f}")


if __name__ == "__main__":
    main()
