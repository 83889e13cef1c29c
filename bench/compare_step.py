"""Side-by-side timing of the training step, caf against PyTorch, in alternating rounds.

    python3 bench/compare_step.py --caf build/caf --device cpu --rounds 3 --threads 2 \\
        --config 64,4,16,8 --config 128,8,32,16

Each config is size,batch,R width,S width. Every round runs `caf bench step` and
bench/torch_reference.py once each with the same arguments; the table reports the median over rounds
of each one's median ms/step and the ratio caf/PyTorch (below 1: caf is faster). Alternating
rounds keep slow drifts of a shared machine from favouring either side.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def median_ms(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"median ([0-9.]+) ms/step", out)
    if not m:
        sys.exit(f"no timing in the output of {' '.join(cmd)}:\n{out}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caf", required=True, help="path to the caf binary")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="PyTorch threads (caf uses OpenMP's default)")
    ap.add_argument("--config", action="append", required=True)
    a = ap.parse_args()
    print("| size | batch | widths R/S | caf ms/step | PyTorch ms/step | caf / PyTorch |")
    print("|---|---|---|---|---|---|")
    for cfg in a.config:
        size, batch, wr, ws = cfg.split(",")
        common = ["--device", a.device, "--size", size, "--batch", batch, "--widths", f"{wr},{ws}",
                  "--steps", str(a.steps), "--warmup", "2"]
        caf, torch = [], []
        for _ in range(a.rounds):
            caf.append(median_ms([a.caf, "bench", "step"] + common))
            extra = ["--threads", str(a.threads)] if a.threads else []
            torch.append(median_ms([sys.executable, os.path.join(HERE, "torch_reference.py")] + common + extra))
        c, t = statistics.median(caf), statistics.median(torch)
        print(f"| {size} | {batch} | {wr}/{ws} | {c:.1f} | {t:.1f} | {c / t:.2f} |", flush=True)


if __name__ == "__main__":
    main()
