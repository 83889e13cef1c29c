"""PyTorch timing of the training step that `caf bench step` times, for side-by-side ratios.

The networks, losses and split step are the reference implementation of
tests/reference/make_net_fixtures.py (our own PyTorch code, written from METHOD.md), imported from
there so the benchmark and the correctness fixture cannot drift apart.

    python3 bench/torch_step.py --device cpu --size 64 --batch 4 --widths 16,8 --steps 10 [--threads 2]
    python3 bench/torch_step.py --device cuda --size 256 --batch 8 --widths 128,64

Prints the median ms/step, images/s (both halves of the split batch) and peak memory, in the
layout of caf's output. --mode chooses how PyTorch runs it (issue 7's comparison points):
  fp32             exact fp32, TF32 off: caf's default math (the default)
  tf32             eager fp32 with TF32 convolutions and matmuls, NCHW: DRAEM-style code as it runs
  bf16-cl          eager, bf16 autocast, channels_last
  compile-bf16-cl  torch.compile + bf16 autocast + channels_last: PyTorch at its best
  all              each of the above in turn (a mode the installed torch lacks is reported, skipped)
"""
import argparse
import contextlib
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import make_net_fixtures as ref  # noqa: E402
from torch_setup import setup  # noqa: E402


MODES = ["fp32", "tf32", "bf16-cl", "compile-bf16-cl"]


def run(a, mode):
    dev, sync = setup(a.device, a.threads)
    if mode != "fp32":
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
    if mode == "compile-bf16-cl" and not hasattr(torch, "compile"):
        print(f"torch {torch.__version__} step: mode {mode}: skipped (this torch has no torch.compile)")
        return
    wr, ws = (int(v) for v in a.widths.split(","))
    nets = ref.Nets(wr, ws).to(dev)
    fmt = torch.channels_last if mode.endswith("-cl") else torch.contiguous_format
    nets = nets.to(memory_format=fmt)
    opt_r = torch.optim.Adam(nets.recon.parameters(), lr=1e-4)
    opt_s = torch.optim.Adam(nets.discr.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    shape = (a.batch, 3, a.size, a.size)
    mask = torch.zeros(a.batch, 1, a.size, a.size)
    mask[:, :, a.size // 4:a.size // 2, a.size // 8:a.size // 2] = 1
    batch = {k: v.to(dev).contiguous(memory_format=fmt)
             for k, v in dict(x_clean=torch.rand(shape, generator=g), x_aug=torch.rand(shape, generator=g),
                              y_aug=torch.rand(shape, generator=g), y_mask=mask).items()}
    autocast = (torch.autocast(device_type=dev.type, dtype=torch.bfloat16) if "bf16" in mode
                else contextlib.nullcontext())
    forward = ref.step_forward
    if mode.startswith("compile"):
        forward = torch.compile(ref.step_forward)

    def step():
        with autocast:
            out = forward(nets, **batch)
        opt_r.zero_grad(set_to_none=False)
        opt_s.zero_grad(set_to_none=False)
        out["loss_total"].backward()
        opt_r.step()
        opt_s.step()
        sync()
        return out["loss_total"]

    for _ in range(a.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    med = times[len(times) // 2]
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    print(f"torch {torch.__version__} step: mode {mode}, device {a.device} ({name}), {a.size}x{a.size}, "
          f"batch {a.batch}, widths R {wr} / S {ws}, threads {torch.get_num_threads()}")
    print(f"  median {med:.2f} ms/step (min {times[0]:.2f}, max {times[-1]:.2f} over {a.steps} steps)")
    print(f"  {2 * a.batch / med * 1e3:.1f} images/s; last loss {float(loss):.5f}")
    if dev.type == "cuda":
        print(f"  peak memory {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--widths", default="128,64")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--mode", default="fp32", choices=MODES + ["all"])
    a = ap.parse_args()
    for mode in MODES if a.mode == "all" else [a.mode]:
        run(a, mode)


if __name__ == "__main__":
    main()
