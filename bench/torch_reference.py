"""Our PyTorch implementation of caf's training step, for side-by-side timing and loss tracking.

The networks, losses and split step are the reference implementation of
tests/reference/make_net_fixtures.py (our own PyTorch code, written from METHOD.md), imported from
there so the benchmark and the correctness fixture cannot drift apart.

    python3 bench/torch_reference.py --device cpu --size 64 --batch 4 --widths 16,8 --steps 10 [--threads 2]
    python3 bench/torch_reference.py --device cuda --size 256 --batch 8 --widths 128,64

Prints the median ms/step, images/s (both halves of the split batch) and peak memory, in the
layout of caf's output. --mode chooses how PyTorch runs it (issue 7's comparison points):
  fp32             exact fp32, TF32 off: caf's default math (the default)
  tf32             eager fp32 with TF32 convolutions and matmuls, NCHW: DRAEM-style code as it runs
  tf32-rfirst      tf32 with R's losses sent backward before S runs forward, as caf's split step
                   does (the same gradients; R's saved activations freed before S's exist): what
                   the reordering alone gives PyTorch's memory
  bf16-cl          eager, bf16 autocast, channels_last
  compile-bf16-cl  torch.compile + bf16 autocast + channels_last: PyTorch at its best
  all              each of the above in turn (a mode the installed torch lacks is reported, skipped)
--json FILE writes every mode's result (median/min/max ms, images/s, peak MiB) for scripts.

Loss tracking (issue 7's correctness gate): with --track N --init CKPT (a caf checkpoint, e.g. from
`caf checkpoint-new`), both networks start from caf's weights and run N split steps on the
closed-form batches that `caf bench step --track N` uses (closed_form_batch below); the per-step
losses go to --json, with --envelope-runs (3) runs whose weights are perturbed by 1e-6 (relative):
how far PyTorch drifts from itself sets the scale of the gate. bench/compare_losses.py compares.
"""
import argparse
import contextlib
import json
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import make_net_fixtures as ref  # noqa: E402
from torch_setup import setup  # noqa: E402


MODES = ["fp32", "tf32", "tf32-rfirst", "bf16-cl", "compile-bf16-cl"]


def closed_form_batch(size, batch, t):
    """Step t's batch, the same formula as tools/bench_step.cpp (double, then float32)."""
    h = torch.arange(size, dtype=torch.float64).view(1, 1, size, 1)
    w = torch.arange(size, dtype=torch.float64).view(1, 1, 1, size)
    c = torch.arange(3, dtype=torch.float64).view(1, 3, 1, 1)
    n = torch.arange(batch, dtype=torch.float64).view(batch, 1, 1, 1)

    def base(k):
        return 0.5 + 0.3 * torch.sin(0.061 * h + 0.097 * w + 0.5 * c + 1.7 * n + 0.3 * t + 2.1 * k) * \
            torch.cos(0.023 * (h - w) + 0.4 * k)
    rect = torch.zeros(1, 1, size, size, dtype=torch.float64)
    rect[:, :, size // 4:size // 2, size // 8:size // 2] = 1
    x_clean = base(0)
    x_aug = x_clean * (1 - rect) + base(1) * rect
    y_aug = base(2) * (1 - rect) + base(3) * rect
    mask = rect.expand(batch, 1, size, size)
    return {k: v.float().contiguous() for k, v in
            dict(x_clean=x_clean, x_aug=x_aug, y_aug=y_aug, y_mask=mask).items()}


def load_caf_checkpoint(nets, path):
    """A caf checkpoint (safetensors with PyTorch's state-dict names, plus caf's optimiser state)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    sd = nets.state_dict()
    loaded = 0
    for name, info in header.items():
        if name == "__metadata__" or name.startswith("optim."):
            continue
        target = sd.get(name)
        if target is None:
            sys.exit(f"{path}: tensor {name} has no place in the PyTorch networks")
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).view(info["shape"])
        target.copy_(t.to(target.device))
        loaded += 1
    return loaded


def step_forward_mixed(nets, autocast, x_clean, x_aug, y_aug, y_mask):
    """ref.step_forward with the networks under `autocast` and the losses in fp32 outside it, as
    careful mixed-precision code does (and as caf computes them): inside autocast, SSIM's window
    convolutions and arithmetic would run in bf16, where its constants C1 = 1e-4 vanish."""
    R, S = nets.recon, nets.discr
    R.train()
    with autocast:
        rec_x = R(x_aug)
    rec_x = rec_x.float()
    l2, l_ssim = F.mse_loss(rec_x, x_clean), 1 - ref.ssim(rec_x, x_clean)
    R.eval()
    with torch.no_grad(), autocast:
        rec_y = R(y_aug)
    R.train()
    S.train()
    with autocast:
        logits = S(torch.cat([y_aug, rec_y.float()], 1))
    l_focal = ref.focal_loss(logits.float(), y_mask)
    return dict(loss_l2=l2, loss_ssim=l_ssim, loss_focal=l_focal, loss_total=l2 + l_ssim + l_focal)


def step_r_first(nets, x_clean, x_aug, y_aug, y_mask):
    """ref.step_forward's step, with both backward passes, in caf's order: R's losses go backward
    before S runs forward. The two graphs share nothing (R's pass on Y is detached), so the
    gradients are those of the summed loss, and R's saved activations are freed before S's exist."""
    R, S = nets.recon, nets.discr
    R.train()
    rec_x = R(x_aug)
    l2, l_ssim = F.mse_loss(rec_x, x_clean), 1 - ref.ssim(rec_x, x_clean)
    (l2 + l_ssim).backward()
    del rec_x
    R.eval()
    with torch.no_grad():
        rec_y = R(y_aug)
    R.train()
    S.train()
    l_focal = ref.focal_loss(S(torch.cat([y_aug, rec_y], 1)), y_mask)
    l_focal.backward()
    return dict(loss_l2=l2.detach(), loss_ssim=l_ssim.detach(), loss_focal=l_focal.detach(),
                loss_total=(l2 + l_ssim + l_focal).detach())


def track(a, mode, perturb=0.0, seed=1):
    """Losses of a.track steps; perturb > 0 multiplies every initial weight by (1 + perturb * N(0,1))
    first: PyTorch against its own perturbed run measures how fast rounding-level differences grow."""
    dev, sync = setup(a.device, a.threads)
    torch.backends.cudnn.allow_tf32 = mode != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = mode != "fp32"
    autocast = (torch.autocast(device_type=dev.type, dtype=torch.bfloat16) if mode == "bf16"
                else contextlib.nullcontext())
    wr, ws = (int(v) for v in a.widths.split(","))
    nets = ref.Nets(wr, ws).to(dev)
    loaded = load_caf_checkpoint(nets, a.init)
    if perturb:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in nets.parameters():
                p.mul_(1 + perturb * torch.randn(p.shape, generator=g).to(dev))
    opt_r = torch.optim.Adam(nets.recon.parameters(), lr=1e-4)
    opt_s = torch.optim.Adam(nets.discr.parameters(), lr=1e-4)
    losses = []
    for t in range(a.track):
        batch = {k: v.to(dev) for k, v in closed_form_batch(a.size, a.batch, t).items()}
        out = step_forward_mixed(nets, autocast, **batch)
        opt_r.zero_grad(set_to_none=False)
        opt_s.zero_grad(set_to_none=False)
        out["loss_total"].backward()
        opt_r.step()
        opt_s.step()
        losses.append({k: float(out["loss_" + k]) for k in ("l2", "ssim", "focal")})
    sync()
    print(f"torch {torch.__version__} track: mode {mode}, {loaded} tensors from {a.init}, {a.track} steps"
          f"{f', weights perturbed by {perturb:g}' if perturb else ''}; first {losses[0]}, last {losses[-1]}")
    return losses


def run(a, mode):
    dev, sync = setup(a.device, a.threads)
    if mode != "fp32":
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
    if mode == "compile-bf16-cl" and not hasattr(torch, "compile"):
        print(f"torch {torch.__version__} step: mode {mode}: skipped (this torch has no torch.compile)")
        return None
    wr, ws = (int(v) for v in a.widths.split(","))
    torch.manual_seed(0)  # every mode starts from the same weights
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
        if mode.endswith("-rfirst"):
            opt_r.zero_grad(set_to_none=False)
            opt_s.zero_grad(set_to_none=False)
            out = step_r_first(nets, **batch)  # both backward passes done
        else:
            with autocast:
                out = forward(nets, **batch)
            opt_r.zero_grad(set_to_none=False)
            opt_s.zero_grad(set_to_none=False)
            out["loss_total"].backward()
        opt_r.step()
        opt_s.step()
        sync()
        return out["loss_total"]

    t_warm = time.perf_counter()
    for _ in range(a.warmup):
        step()
    print(f"  warm-up ({a.warmup} steps, compilation included): {time.perf_counter() - t_warm:.1f} s", flush=True)
    if a.start_after:
        # Compiled in the background while other work used the GPU: time only once told to.
        print(f"  waiting for {a.start_after} before timing", flush=True)
        while not os.path.exists(a.start_after):
            time.sleep(0.2)
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
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    if peak is not None:
        print(f"  peak memory {peak:.1f} MiB")
    return {"tool": "torch", "torch": torch.__version__, "mode": mode, "device": a.device, "device_name": name,
            "size": a.size, "batch": a.batch, "widths": [wr, ws], "steps": a.steps, "median_ms": med,
            "min_ms": times[0], "max_ms": times[-1], "images_per_s": 2 * a.batch / med * 1e3, "peak_mib": peak}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--widths", default="128,64")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--mode", default="fp32", help="one of %s, a comma list, or all" % ", ".join(MODES))
    ap.add_argument("--json", default="", help="write the results (a list, one entry per mode) here")
    ap.add_argument("--track", type=int, default=0, help="loss tracking: N steps from --init (fp32/tf32/bf16)")
    ap.add_argument("--envelope-runs", type=int, default=3, help="perturbed runs for the envelope (--track)")
    ap.add_argument("--init", default="", help="caf checkpoint with the initial weights (for --track)")
    ap.add_argument("--start-after", default="",
                    help="after the warm-up (and compilation), wait until this file exists before timing")
    a = ap.parse_args()
    modes = MODES if a.mode == "all" else a.mode.split(",")
    for m in modes if not a.track else []:
        if m not in MODES:
            sys.exit(f"--mode {m}: expected one of {', '.join(MODES)}, a comma list of them, or all")
    if a.track:
        if not a.init or a.mode not in ("fp32", "tf32", "bf16"):
            sys.exit("--track needs --init CKPT and --mode fp32, tf32 or bf16 (autocast, NCHW)")
        results = [{"tool": "torch", "mode": a.mode, "track": track(a, a.mode),
                    "perturbation": 1e-6,
                    "track_perturbed": [track(a, a.mode, 1e-6, seed) for seed in range(1, a.envelope_runs + 1)]}]
    else:
        results = [r for r in (run(a, mode) for mode in modes) if r is not None]
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
