"""PyTorch's time for every convolution `caf bench convs` timed, side by side, as ratios.

    caf bench convs --device cuda --precision bf16 --json caf_convs.json
    python3 bench/torch_convs.py caf_convs.json [--json torch_convs.json]

Reads caf's layer list (shapes, counts, precision, layout, batch) and times each layer's forward,
input gradient and weight gradient with PyTorch on the same device the same way caf does: the
median over caf's --trials of --calls back-to-back calls between two synchronisations, after two
warm-up calls. PyTorch's settings are its fastest for the precision: cudnn.benchmark on; tf32:
TF32 convolutions; fp32: TF32 off; bf16: bf16 operands (channels_last memory format when caf's
layout is nhwc). The gradients come from aten.convolution_backward with one output asked for, so
each pass is one cuDNN call, as caf's are. Then one row per layer: caf's and PyTorch's ms per
training step (caf's count: R forward twice, every backward once, no input gradient for a first
layer) and the ratio, costliest first; and the totals.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F


def median_ms(fn, device, trials, calls):
    fn()
    fn()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    ms = []
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        ms.append((time.perf_counter() - t0) * 1e3 / calls)
    ms.sort()
    return ms[len(ms) // 2]


def time_layer(layer, cfg, device):
    n, cin, cout, h, w = cfg["batch"], layer["cin"], layer["cout"], layer["h"], layer["w"]
    dtype = torch.bfloat16 if cfg["precision"] == "bf16" else torch.float32
    fmt = torch.channels_last if cfg["layout"] == "nhwc" else torch.contiguous_format
    torch.manual_seed(cin * 131 + cout * 7 + h)  # drawn on the device: no host time on a lent GPU
    rand = lambda *s: torch.randn(*s, device=device).to(dtype)
    x = rand(n, cin, h, w).contiguous(memory_format=fmt)
    wt = rand(cout, cin, 3, 3).contiguous(memory_format=fmt)
    gy = rand(n, cout, h, w).contiguous(memory_format=fmt)
    # caf: fp32/TF32 forward with its bias, bf16 forward raw (the bias goes with the next op)
    b = rand(cout) if dtype == torch.float32 else None
    bwd = lambda mask: torch.ops.aten.convolution_backward(gy, x, wt, None, [1, 1], [1, 1], [1, 1], False,
                                                           [0, 0], 1, mask)
    trials, calls = cfg["trials"], cfg["calls"]
    with torch.no_grad():
        return (median_ms(lambda: F.conv2d(x, wt, b, padding=1), device, trials, calls),
                median_ms(lambda: bwd([True, False, False]), device, trials, calls),
                median_ms(lambda: bwd([False, True, False]), device, trials, calls))


def per_step(layer, fwd, data, filt):
    forwards = 2.0 if layer["net"] == "R" else 1.0
    return layer["count"] * (forwards * fwd + (0.0 if layer["first"] else data) + filt)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("caf", help="caf bench convs --json output")
    ap.add_argument("--json", help="write PyTorch's times and the ratios here")
    a = ap.parse_args()
    with open(a.caf) as f:
        cfg = json.load(f)
    device = cfg["device"]
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit(f"{a.caf}: caf ran on cuda, and PyTorch sees no GPU here")
    torch.backends.cudnn.benchmark = True
    tf32 = cfg["precision"] == "tf32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    print(f"torch convs: PyTorch {torch.__version__}, {device}, precision {cfg['precision']}, layout {cfg['layout']}, "
          f"batch {cfg['batch']}, {len(cfg['layers'])} layers (caf's list: {a.caf})")
    rows = []
    for layer in cfg["layers"]:
        fwd, data, filt = time_layer(layer, cfg, device)
        rows.append(dict(layer, torch_fwd_ms=fwd, torch_data_ms=data, torch_filter_ms=filt,
                         torch_per_step_ms=per_step(layer, fwd, data, filt)))
    rows.sort(key=lambda r: -r["per_step_ms"])
    print(f"  {'net':3} {'layer':26} {'count':>5} | {'caf ms/step':>11} {'torch':>9} {'torch/caf':>9} | "
          f"{'fwd':>5} {'data':>5} {'filt':>5} (torch/caf per pass)")
    ratio = lambda t, c: t / c if c > 0 else float("nan")
    for r in rows:
        name = f"{r['cin']}->{r['cout']} @{r['h']}x{r['w']}" + (" (first)" if r["first"] else "")
        print(f"  {r['net']:3} {name:26} {r['count']:5} | {r['per_step_ms']:11.3f} {r['torch_per_step_ms']:9.3f} "
              f"{ratio(r['torch_per_step_ms'], r['per_step_ms']):9.2f} | {ratio(r['torch_fwd_ms'], r['fwd_ms']):5.2f} "
              f"{ratio(r['torch_data_ms'], r['data_ms']):5.2f} {ratio(r['torch_filter_ms'], r['filter_ms']):5.2f}")
    caf_total = sum(r["per_step_ms"] for r in rows)
    torch_total = sum(r["torch_per_step_ms"] for r in rows)
    print(f"  per step: caf {caf_total:.3f} ms, PyTorch {torch_total:.3f} ms of convolutions "
          f"(PyTorch / caf {ratio(torch_total, caf_total):.2f}; above 1: caf's are faster)")
    if a.json:
        out = {"tool": "torch convs", "torch": torch.__version__, "caf_json": a.caf, "device": device,
               "precision": cfg["precision"], "layout": cfg["layout"], "layers": rows,
               "caf_per_step_ms": caf_total, "torch_per_step_ms": torch_total}
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
