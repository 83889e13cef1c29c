#!/usr/bin/python3
"""Writes tests/reference/metrics.json: reference values for train/metrics.h.

Run with the system Python (scikit-learn 1.2, scipy, numpy):
    /usr/bin/python3 tests/reference/make_metric_fixtures.py

Scores are float32 (as caf's maps are), so ties are decided in float32 on both sides; each is
written as the exact decimal of its float32 value. Cases:
  binary:  roc_auc_score and average_precision_score, plus roc_curve(drop_intermediate=False)
           and precision_recall_curve for the small ones;
  au_pro:  AU-PRO by the MVTec AD evaluation code's definition (below);
  image_score: the max of a zero-padded, padding-counted k x k mean (scipy uniform_filter).
"""
import json
import os

import numpy as np
from scipy import ndimage
from sklearn.metrics import (average_precision_score, precision_recall_curve, roc_auc_score,
                             roc_curve)

rng = np.random.default_rng(20240611)


def f32_list(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def binary_case(name, scores, labels, curves=False):
    scores = np.asarray(scores, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.uint8)
    case = {
        "name": name,
        "scores": f32_list(scores),
        "labels": [int(v) for v in labels],
        "auroc": float(roc_auc_score(labels, scores)),
        "ap": float(average_precision_score(labels, scores)),
    }
    if curves:
        fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
        precision, recall, _ = precision_recall_curve(labels, scores)
        case.update(roc_x=fpr.tolist(), roc_y=tpr.tolist(),
                    pr_x=recall[::-1].tolist(), pr_y=precision[::-1].tolist())
    return case


# --- AU-PRO, following the MVTec AD evaluation code (pro_curve_util.compute_pro and
# generic_util.trapezoid): regions are scipy.ndimage.label components with structure
# np.ones((3, 3)); every distinct score is a threshold (exact sweep, no grid); the curve starts at
# (0, 0); the area up to fpr_limit interpolates the crossing point; the result is divided by it.
STRUCTURE = np.ones((3, 3), dtype=int)


def pro_curve(maps, masks, structure=STRUCTURE):
    fp_changes, pro_changes = [], []
    n_ok, n_regions = 0, 0
    for gt in masks:
        labeled, n = ndimage.label(gt, structure)
        n_regions += n
        ok = labeled == 0
        n_ok += int(ok.sum())
        fp = np.zeros(gt.shape, np.float64)
        pro = np.zeros(gt.shape, np.float64)
        fp[ok] = 1
        for k in range(n):
            region = labeled == k + 1
            pro[region] = 1.0 / region.sum()
        fp_changes.append(fp)
        pro_changes.append(pro)
    scores = np.array(maps, dtype=np.float32).ravel()
    order = np.argsort(scores, kind="mergesort")[::-1]
    scores = scores[order]
    fprs = np.cumsum(np.array(fp_changes).ravel()[order]) / n_ok
    pros = np.cumsum(np.array(pro_changes).ravel()[order]) / n_regions
    keep = np.append(np.diff(scores) != 0, True)  # one point per distinct score
    fprs = np.concatenate(([0.0], np.clip(fprs[keep], None, 1.0), [1.0]))
    pros = np.concatenate(([0.0], np.clip(pros[keep], None, 1.0), [1.0]))
    return fprs, pros, n_regions


def trapezoid(x, y, x_max):
    correction = 0.0
    if x_max not in x:
        ins = int(np.searchsorted(x, x_max, side="right"))  # bisect.bisect
        assert 0 < ins < len(x)
        y_interp = y[ins - 1] + (y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_interp + y[ins - 1]) * (x_max - x[ins - 1])
    keep = x <= x_max
    x, y = x[keep], y[keep]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction)


def au_pro_case():
    h, w = 32, 32
    masks = np.zeros((3, h, w), np.uint8)
    masks[0, 4:10, 4:12] = 1     # a 6x8 block ...
    masks[0, 10:13, 12:14] = 1   # ... and a 3x2 block touching it only at a corner: one region
    masks[0, 20:28, 22:25] = 1   # a second region
    yy, xx = np.mgrid[0:h, 0:w]
    masks[1] = ((yy - 16) ** 2 + (xx - 15) ** 2 <= 36).astype(np.uint8)  # a disc
    masks[1, 2, 28:31] = 1       # a 3-pixel sliver
    # image 2: a normal image, negatives only
    maps = rng.random((3, h, w)).astype(np.float32) * 0.6
    maps += masks * rng.uniform(0.1, 0.5, (3, h, w)).astype(np.float32)
    maps = np.round(maps, 2).astype(np.float32)  # many ties: thresholds must not split them

    fprs, pros, n_regions = pro_curve(maps, masks)
    assert n_regions == 4, n_regions
    # The structure matters here: 4-connectivity would split image 0's corner-touching blocks.
    fprs4, pros4, n4 = pro_curve(maps, masks, ndimage.generate_binary_structure(2, 1))
    assert n4 == 5, n4
    assert abs(trapezoid(fprs4, pros4, 0.3) - trapezoid(fprs, pros, 0.3)) > 1e-3
    limits = [0.3, 0.05, 1.0]
    return {
        "height": h, "width": w,
        "maps": f32_list(maps),
        "masks": [int(v) for v in masks.ravel()],
        "limits": limits,
        "au_pro": [trapezoid(fprs, pros, lim) / lim for lim in limits],
    }


def image_score_cases():
    cases = []
    for (h, w, k) in [(24, 30, 21), (24, 30, 5), (8, 10, 21), (12, 9, 1)]:
        m = rng.random((h, w)).astype(np.float32)
        m[h // 3, w // 2] = 3.0  # a peak, so the window placement matters
        ref = ndimage.uniform_filter(m.astype(np.float64), size=k, mode="constant", cval=0.0)
        # uniform_filter with mode='constant' is the zero-padded mean that counts the padding.
        r = k // 2
        padded = np.pad(m.astype(np.float64), r)
        direct = np.array([[padded[y:y + k, x:x + k].sum() / (k * k) for x in range(w)]
                           for y in range(h)])
        assert np.max(np.abs(direct - ref)) < 1e-12
        cases.append({"height": h, "width": w, "k": k, "map": f32_list(m),
                      "score": float(ref.max())})
    return cases


def main():
    n = 1000
    labels = (rng.random(n) < 0.3).astype(np.uint8)
    scores = rng.normal(0, 1, n) + 0.8 * labels
    binary = [binary_case("random_1000", scores, labels)]
    binary.append(binary_case("ties_1_decimal", np.round(rng.random(n) * 0.7 + 0.3 * labels, 1),
                              labels, curves=True))
    sep = rng.random(200).astype(np.float32)
    binary.append(binary_case("perfect", sep, sep > 0.6))
    binary.append(binary_case("inverted", sep, sep < 0.6))
    binary.append(binary_case("hand", [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], curves=True))
    binary.append(binary_case("signed_zeros", [-0.0, 0.0, -1.5, 0.0, 2.0, -0.0, -1.5, 1e-30],
                              [1, 0, 0, 1, 1, 0, 1, 0], curves=True))
    out = {
        "generator": "tests/reference/make_metric_fixtures.py",
        "binary": binary,
        "au_pro": au_pro_case(),
        "image_score": image_score_cases(),
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
