"""The summary table of issue 7 from one tools/gpu_check.sh run: caf and PyTorch side by side.

    python3 bench/summary.py DIR

DIR holds what gpu_check.sh wrote: caf_tf32.json, caf_fp32.json, caf_augment.json (caf bench step
--json), caf_graph.json (optional), torch.json (bench/torch_reference.py --mode all --json), and
augment_8.txt (caf bench augment's output). Missing files leave their rows blank. Prints Markdown.
"""
import json
import os
import re
import sys


def load(d, name):
    try:
        with open(os.path.join(d, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    d = sys.argv[1]
    c32, ctf, caug, cgraph = (load(d, f"caf_{k}.json") for k in ("fp32", "tf32", "augment", "graph"))
    torch = {r["mode"]: r for r in (load(d, "torch.json") or [])}
    aug = None
    try:
        m = re.search(r"throughput: ([0-9.]+) images/s", open(os.path.join(d, "augment_8.txt")).read())
        aug = float(m.group(1)) if m else None
    except OSError:
        pass

    def ms(r):
        return f"{r['median_ms']:.1f} ms" if r else "not run"

    best = cgraph or caug or ctf
    rows = [("step time, bf16 mixed precision", "<= 20 ms", "not implemented (see the note)"),
            ("step time, TF32 (networks only)", "<= 38 ms", ms(ctf)),
            ("step time, TF32, with augmentation", "<= 38 ms", ms(caug))]
    if cgraph:
        rows.append(("step time, TF32, augmentation, CUDA graph", "<= 38 ms", ms(cgraph)))
    rows.append(("step time, exact fp32 (networks only)", "-", ms(c32)))

    def ratio(mode, target):
        t = torch.get(mode)
        if not t or not best:
            return (f"vs PyTorch {mode}", target, "not run")
        return (f"vs PyTorch {mode} ({t['median_ms']:.1f} ms)", target,
                f"{t['median_ms'] / best['median_ms']:.2f}x faster" if t['median_ms'] >= best['median_ms']
                else f"{best['median_ms'] / t['median_ms']:.2f}x slower")
    rows.append(ratio("tf32", ">= 3x faster"))
    rows.append(ratio("compile-bf16-cl", ">= 1.3x faster"))
    rows.append(ratio("bf16-cl", "-"))
    rows.append(ratio("fp32", "-"))
    if best and torch.get("tf32") and torch["tf32"].get("peak_mib"):
        pk, tp = best["peak_mib"], torch["tf32"]["peak_mib"]
        rows.append(("peak GPU memory", "<= 6 GB and <= 0.5x PyTorch eager",
                     f"{pk / 1024:.2f} GiB ({pk / tp:.2f}x PyTorch tf32's {tp / 1024:.2f} GiB)"))
    rows.append(("augmentation, batch 8", ">= 20,000 images/s", f"{aug:,.0f} images/s" if aug else "not run"))
    if best:
        rows.append(("new device allocations while timing", "none", str(best["allocs_while_timing"])))
        rows.append(("one bottle class, 18,900 steps (estimate from the step time)", "<= 7 minutes",
                     f"{18900 * best['median_ms'] / 60000:.1f} minutes (steps only)"))
    print("| | target | measured |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    for name, r in (("caf tf32", ctf), ("caf tf32 + augmentation", caug)):
        if r and r.get("phases_ms"):
            print(f"\nphases, {name} (median ms): " +
                  ", ".join(f"{k} {v:.2f}" for k, v in r["phases_ms"].items() if k != "step"))


if __name__ == "__main__":
    main()
