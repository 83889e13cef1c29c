"""Issue 7's table from one tools/gpu_check.sh run: caf and PyTorch side by side, as Markdown.

    python3 bench/summary.py DIR

DIR holds what gpu_check.sh wrote: caf_*.json (caf bench step --json: tf32, tf32_unfused, augment,
graph, bf16, bf16_graph, bf16_nhwc_graph, bf16act, bf16act_graph, bf16act_nhwc_graph,
bf16act_nhwc_graph_f32grads, fastest, reproducible, fp32, memory_bf16act_nhwc: --memory's census),
convs_{bf16,tf32}.json and torch_convs_{bf16,tf32}.json (caf bench convs, bench/torch_convs.py),
torch.json and torch_compile.json (bench/torch_reference.py --json),
augment_8.txt (caf bench augment's output), quickstart_gpu.json (the README's main job on the GPU:
eval metrics). A missing file leaves its cells "not run".
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
    caf = {k: load(d, f"caf_{k}.json") for k in ("tf32", "tf32_unfused", "augment", "graph", "bf16", "bf16_graph",
                                                "bf16_nhwc_graph", "bf16act", "bf16act_graph", "bf16act_nhwc_graph",
                                                "bf16act_nhwc_graph_f32grads",
                                                "fastest", "reproducible", "fp32", "memory_bf16act_nhwc")}
    torch = {r["mode"]: r for f in ("torch.json", "torch_compile.json") for r in (load(d, f) or [])}
    aug = None
    try:
        m = re.search(r"throughput: ([0-9.]+) images/s", open(os.path.join(d, "augment_8.txt")).read())
        aug = float(m.group(1)) if m else None
    except OSError:
        pass

    def ms(r):
        return f"{r['median_ms']:.1f} ms" if r else "not run"

    # The full step (with augmentation) at its fastest among what ran.
    full = [r for k, r in caf.items() if r and r.get("augment") and k != "memory_bf16act_nhwc"]
    best = min(full, key=lambda r: r["median_ms"]) if full else None
    label = (f"{best['precision']}{', bf16 activations' if best.get('activations') == 'bf16' else ''}"
             f"{', NHWC convolutions' if best.get('layout') == 'nhwc' else ''}"
             f"{', fp32 gradients' if best.get('activations') == 'bf16' and best.get('bf16_gradients') is False else ''}"
             f"{', graph' if best.get('graph') else ''}"
             f"{', ' + best['algos'] + ' algorithms' if best.get('algos') in ('fastest', 'reproducible') else ''}"
             ) if best else ""
    rows = [
        ("step time, bf16 mixed precision (augmentation, CUDA graph)", "<= 20 ms", ms(caf["bf16_graph"])),
        ("step time, bf16 mixed precision, NHWC convolutions (augmentation, CUDA graph)", "<= 20 ms",
         ms(caf["bf16_nhwc_graph"])),
        ("step time, bf16 mixed precision, bf16 activations (augmentation, CUDA graph)", "<= 20 ms",
         ms(caf["bf16act_graph"])),
        ("step time, bf16 mixed precision, channels-last bf16 activations (augmentation, CUDA graph)",
         "<= 20 ms", ms(caf["bf16act_nhwc_graph"])),
        ("step time, as the row above with fp32 activation gradients (--bf16-grads off)", "-",
         ms(caf["bf16act_nhwc_graph_f32grads"])),
        ("step time, bf16 mixed precision (augmentation, eager)", "-", ms(caf["bf16"])),
        ("step time, bf16 mixed precision, bf16 activations (augmentation, eager)", "-", ms(caf["bf16act"])),
        ("step time, TF32 (augmentation, CUDA graph)", "<= 38 ms", ms(caf["graph"])),
        ("step time, TF32 (augmentation, eager)", "-", ms(caf["augment"])),
        ("step time, TF32 (networks only, eager)", "-", ms(caf["tf32"])),
        ("step time, TF32 (networks only, eager), as run 8: batch norm and ReLU unfused, no recompute, zero-filled gradients", "-",
         ms(caf["tf32_unfused"])),
        ("step time, TF32, graph, fastest (non-deterministic) algorithms", "-", ms(caf["fastest"])),
        ("step time, TF32, graph, reproducible algorithms (cuDNN's heuristics, untimed)", "-",
         ms(caf["reproducible"])),
        ("step time, exact fp32 (networks only)", "-", ms(caf["fp32"])),
    ]

    def ratio(mode, target, name):
        t = torch.get(mode)
        if not t or not best:
            return (f"vs PyTorch {name}", target, "not run")
        r = t["median_ms"] / best["median_ms"]
        return (f"vs PyTorch {name} ({t['median_ms']:.1f} ms; caf {best['median_ms']:.1f} ms, {label})", target,
                f"{r:.2f}x faster" if r >= 1 else f"{1 / r:.2f}x slower")
    rows.append(ratio("tf32", ">= 3x faster", "eager TF32, NCHW (DRAEM-style)"))
    rows.append(ratio("compile-bf16-cl", ">= 1.3x faster", "torch.compile + bf16 + channels_last"))
    rows.append(ratio("bf16-cl", "-", "eager bf16 + channels_last"))
    tp = torch.get("tf32", {}).get("peak_mib")
    tpr = torch.get("tf32-rfirst", {}).get("peak_mib")
    for key, name in (("augment", "TF32"), ("tf32", "TF32 (networks only)"), ("bf16", "bf16"),
                      ("bf16act", "bf16 with bf16 activations"), ("tf32_unfused", "TF32 as run 8 (networks only)"),
                      ("memory_bf16act_nhwc", "bf16 with channels-last bf16 activations")):
        r = caf[key]
        if r:
            rel = f" ({r['peak_mib'] / tp:.2f}x PyTorch eager TF32's {tp / 1024:.2f} GiB" if tp else ""
            if tp and tpr:  # PyTorch in caf's order: what the reordering alone would give it
                rel += f"; {r['peak_mib'] / tpr:.2f}x its {tpr / 1024:.2f} GiB with R's backward first"
            rel += ")" if tp else ""
            rows.append((f"peak GPU memory in use, {name}, eager", "<= 6 GB and <= 0.5x PyTorch eager",
                         f"{r['peak_mib'] / 1024:.2f} GiB{rel}"))
    rows.append(("augmentation, batch 8", ">= 20,000 images/s", f"{aug:,.0f} images/s" if aug else "not run"))
    g = caf["graph"] or caf["bf16_graph"]
    if g:
        rows.append(("host synchronisations / copies per step (graph replay)", "none",
                     f"{g['host_syncs_per_step']:.0f} / {g['host_copies_per_step']:.0f}; "
                     f"{g['allocs_while_timing']} allocations; {g['graph_nodes']} graph nodes"))
    if best:
        rows.append(("one bottle class, 18,900 steps (steps alone, from the best full step)", "<= 7 minutes",
                     f"{18900 * best['median_ms'] / 60000:.1f} minutes"))
    q = load(d, "quickstart_gpu.json")
    rows.append(("README main job on the GPU (toy class, tiny preset, quickstart_gpu.json)",
                 "image AUROC > 0.80, pixel AUROC > 0.95",
                 f"image AUROC {q['image_auroc']:.3f}, pixel AUROC {q['pixel_auroc']:.3f}, "
                 f"pixel AP {q['pixel_ap']:.3f}, AU-PRO {q['pixel_aupro_0.3']:.3f}" if q else "not run"))
    print("| | target | measured |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    census = (caf["memory_bf16act_nhwc"] or {}).get("memory_census")
    if census:
        print(f"\nmemory at the peak, caf bf16 with channels-last bf16 activations ({census['peak_mib']:.1f} MiB): " +
              ", ".join(f"{r['label']} {r['mib']:.1f} MiB" for r in census["rows"][:12]))
        if census.get("phases"):
            print("peak in use by phase, in the step's order (MiB): " +
                  ", ".join(f"{p['phase']} {p['mib']:.1f}" for p in census["phases"]))
    for key in ("tf32", "tf32_unfused", "augment", "bf16", "bf16act", "bf16act_nhwc_graph"):
        r = caf[key]
        if r and r.get("phases_ms"):
            print(f"\nphases, caf {key} (median ms): " +
                  ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["phases_ms"].items(), key=lambda kv: -kv[1])))
        if r and r.get("ops_ms"):
            top = sorted(r["ops_ms"].items(), key=lambda kv: -kv[1])[:12]
            print(f"ops, caf {key} (ms per step): " + ", ".join(f"{k} {v:.2f}" for k, v in top))
    for prec in ("bf16", "tf32"):  # every convolution alone (caf bench convs), PyTorch beside it
        c, t = load(d, f"convs_{prec}.json"), load(d, f"torch_convs_{prec}.json")
        if not c:
            continue
        tflops = c["flops_per_step"] / c["per_step_ms"] * 1e-9 if c["per_step_ms"] > 0 else 0.0
        line = (f"\nconvolutions alone, caf {prec} ({len(c['layers'])} layers): {c['per_step_ms']:.2f} ms per step, "
                f"{tflops:.0f} TFLOP/s")
        if t:
            line += f"; PyTorch {t['torch_per_step_ms']:.2f} ms (PyTorch / caf {t['torch_per_step_ms'] / c['per_step_ms']:.2f})"
        print(line)
        torch_by = {(r["net"], r["cin"], r["cout"], r["h"], r["first"]): r for r in (t or {}).get("layers", [])}
        for r in sorted(c["layers"], key=lambda r: -r["per_step_ms"])[:8]:
            tr = torch_by.get((r["net"], r["cin"], r["cout"], r["h"], r["first"]))
            passes = [(r["fwd_ms"], "fwd"), (r["data_ms"], "data"), (r["filter_ms"], "filter")]
            rate = ", ".join(f"{name} {r['flops_per_pass'] / ms * 1e-9:.0f}" for ms, name in passes if ms > 0)
            print(f"  {r['net']} {r['cin']}->{r['cout']} @{r['h']}x{r['w']} x{r['count']}: {r['per_step_ms']:.2f} ms/step "
                  f"(TFLOP/s {rate})" + (f"; PyTorch {tr['torch_per_step_ms']:.2f}" if tr else ""))


if __name__ == "__main__":
    main()
