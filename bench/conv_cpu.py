"""CPU convolution, caf against PyTorch, side by side.

Times PyTorch's F.conv2d (3x3, stride 1, padding 1, with bias) forward and backward (input, weight
and bias gradients) at the shapes of `caf_ops perf conv2d/perf` (tests/ops/cases.cpp), and, given
the path of caf's `caf_ops` binary, runs that too and prints both with ratios.

    /usr/bin/python3 bench/conv_cpu.py [--caf build/tests/caf_ops] [--threads 2] [--rounds 5]

Units: milliseconds per call and GFLOP/s, forward FLOPs = 2*N*K*C*H*W*9, backward = twice that
(data + filter gradients; the bias gradient is timed but not counted). The two runs alternate,
round by round, so that a burst of other load on the machine hits both; each round gives PyTorch's
median over --calls calls and caf's figure from one `caf_ops perf` run (its mean over >= 0.3 s),
and the table shows the median over rounds. ratio = caf ms / PyTorch ms (below 1: caf is faster).
"""
import argparse
import os
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F

# (case name in caf_ops, N, C, H, W, K out)
SHAPES = [("conv2d/perf_4x64x64x64_k64", 4, 64, 64, 64, 64),
          ("conv2d/perf_8x128x32x32_k128", 8, 128, 32, 32, 128)]


def median_ms(fn, calls):
    """Median wall time of `calls` calls of fn, after two warm-up calls."""
    fn()
    fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def torch_round(calls):
    """{case: (fwd ms, bwd ms)} for PyTorch, one round."""
    out = {}
    for name, n, c, h, w, k in SHAPES:
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(n, c, h, w, generator=gen, requires_grad=True)
        wt = torch.rand(k, c, 3, 3, generator=gen).sub_(0.5).requires_grad_()
        b = torch.rand(k, generator=gen, requires_grad=True)
        gy = torch.rand(n, k, h, w, generator=gen)
        with torch.no_grad():
            fwd = median_ms(lambda: F.conv2d(x, wt, b, padding=1), calls)
        y = F.conv2d(x, wt, b, padding=1)
        bwd = median_ms(lambda: torch.autograd.grad(y, (x, wt, b), gy, retain_graph=True), calls)
        out[name] = (fwd, bwd)
    return out


def caf_round(binary, threads):
    """{case: (fwd ms, bwd ms)} from one `caf_ops perf conv2d/perf` run, CPU rows only."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), CAF_DEVICE="cpu")
    text = subprocess.run([binary, "perf", "conv2d/perf"], env=env, check=True,
                          capture_output=True, text=True).stdout
    out = {}
    for line in text.splitlines():
        f = line.split()
        # columns: case, dev, fwd ms, bwd ms, then rates
        if len(f) >= 4 and f[1] == "cpu" and f[0].startswith("conv2d/"):
            out[f[0]] = (float(f[2]), float(f[3]))
    missing = [s[0] for s in SHAPES if s[0] not in out]
    if missing:
        raise SystemExit(f"{binary} printed no cpu timing for {missing}:\n{text}")
    return out


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--caf", help="path of caf's caf_ops binary (omit: PyTorch only)")
    ap.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--calls", type=int, default=15, help="PyTorch calls per round (default 15)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    load0 = os.getloadavg()[0]
    tr, cr = [], []
    for _ in range(a.rounds):
        tr.append(torch_round(a.calls))
        if a.caf:
            cr.append(caf_round(a.caf, a.threads))
    load1 = os.getloadavg()[0]

    def med(rounds, name, i):
        return statistics.median(r[name][i] for r in rounds)

    print(f"torch {torch.__version__}, {a.threads} threads, {cpu_model()}, {os.cpu_count()} CPUs")
    print(f"{a.rounds} rounds; 1-min load average {load0:.2f} before, {load1:.2f} after")
    head = f"{'case':30s} {'pass':4s} {'torch ms':>9s} {'GF/s':>6s}"
    if a.caf:
        head += f" {'caf ms':>9s} {'GF/s':>6s} {'caf/torch':>9s}"
    print(head)
    for name, n, c, h, w, k in SHAPES:
        flops = 2.0 * n * k * c * h * w * 9
        for i, (pas, fl) in enumerate((("fwd", flops), ("bwd", 2 * flops))):
            t = med(tr, name, i)
            row = f"{name:30s} {pas:4s} {t:9.2f} {fl / t * 1e-6:6.1f}"
            if a.caf:
                cm = med(cr, name, i)
                row += f" {cm:9.2f} {fl / cm * 1e-6:6.1f} {cm / t:9.2f}"
            print(row)


if __name__ == "__main__":
    main()
