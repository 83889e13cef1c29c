"""Issue 7's correctness gate: caf's losses against PyTorch's, step by step, same start, same data.

    caf checkpoint-new --widths 128,64 --out init.safetensors
    caf bench step --device cuda --precision tf32 --track 50 --init init.safetensors --json caf.json
    python3 bench/torch_reference.py --device cuda --mode tf32 --track 50 --init init.safetensors --json torch.json
    python3 bench/compare_losses.py caf.json torch.json

Prints the relative deviation |caf - torch| / |torch| of each loss at a few steps, beside the
deviation of PyTorch from itself when its initial weights are perturbed by 1e-6 (relative; the
"envelope": the largest over the perturbed runs (3 by default) written by torch_reference.py). Gate:
    dev_caf(t) <= 3 * max over s <= t of dev_envelope(s) + floor(t)
Why: Adam's first steps move each weight by about lr whatever its gradient's size, so the sign of a
near-zero gradient, which rounding decides, changes the trajectory; batch norm over few values
amplifies it further. On small shapes a 1e-7 perturbation of PyTorch's own weights grows to 1e-2
relative loss differences within 5 steps (measured), so no fixed tolerance separates a bug from
rounding; the envelope does: a bug shows as a deviation far outside it, from step 0 on.
floor at step 0: 1e-5 for fp32 (same weights, same data: the losses agree to ~1e-6, see
       tests/train/test_torch_match); 5e-3 for tf32 (TF32 products carry a 10-bit mantissa and the
       two sides pick different cuDNN algorithms, so step 0 already differs by ~1e-3).
bf16 (caf's mixed precision against PyTorch's autocast, the losses in fp32 on both sides):
       2e-2 at step 0, 5e-2 after. caf rounds only the convolutions' operands to bf16 and keeps
       every other activation fp32; autocast also keeps the activations between convolutions
       (batch norm, ReLU, pooling, upsampling) in bf16, so the two differ by several bf16 units
       (2^-8 each) from step 0 on (measured at 32x32, widths 8/4: 5.7e-3 at step 0).
floor after step 0: 1e-3 for fp32, 1e-2 for tf32: caf's and PyTorch's step-0 gradients differ by
       summation order (up to 2e-3 of a tensor's largest value at tiny shapes, where batch norm
       runs over a handful of values), more than a 1e-6 weight perturbation changes them, so the
       envelope alone under-estimates the first steps (measured at 32x32, widths 8/4: caf 9.0e-4
       at step 1 against an envelope of 1.9e-4; by step 2 the envelope is larger than caf's).
"""
import argparse
import json
import sys


def load(path):
    with open(path) as f:
        j = json.load(f)
    return j[0] if isinstance(j, list) else j


def rel(x, y):
    return max(abs(x[k] - y[k]) / max(abs(y[k]), 1e-12) for k in ("l2", "ssim", "focal"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("caf")
    ap.add_argument("torch")

    a = ap.parse_args()
    cj, tj = load(a.caf), load(a.torch)
    c, t, p = cj["track"], tj["track"], tj.get("track_perturbed")
    if len(c) != len(t) or not p or any(len(q) != len(t) for q in p):
        sys.exit(f"{a.caf} / {a.torch}: need equally long 'track' lists and the torch file's 'track_perturbed'")
    floors = {"fp32": (1e-5, 1e-3), "tf32": (5e-3, 1e-2), "bf16": (2e-2, 5e-2)}[tj["mode"]]
    envelope, worst_ratio, failures = 0.0, 0.0, []
    print(f"caf {cj['mode']} against PyTorch {tj['mode']}, {len(c)} steps; floors {floors[0]:g} (step 0), "
          f"{floors[1]:g} (after)")
    print("| step | l2 caf / torch | ssim caf / torch | focal caf / torch | caf dev. | PyTorch envelope | bound |")
    print("|---|---|---|---|---|---|---|")
    for i, (cs, ts) in enumerate(zip(c, t)):
        dev = rel(cs, ts)
        envelope = max([envelope] + [rel(q[i], ts) for q in p])
        bound = 3 * envelope + floors[min(i, 1)]
        worst_ratio = max(worst_ratio, dev / bound)
        if dev > bound:
            failures.append(i)
        if i in (0, 1, 2, 4, 9, 19, 29, 39, 49) or i == len(c) - 1:
            print(f"| {i} | {cs['l2']:.6f} / {ts['l2']:.6f} | {cs['ssim']:.6f} / {ts['ssim']:.6f} | "
                  f"{cs['focal']:.6f} / {ts['focal']:.6f} | {dev:.2e} | {envelope:.2e} | {bound:.2e} |")
    print(f"largest deviation / bound: {worst_ratio:.2f}; "
          + (f"OVER the bound at steps {failures[:10]}" if failures else "within the bound at every step"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
