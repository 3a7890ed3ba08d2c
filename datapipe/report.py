"""report.json (counts a script can check) and report.html (the same, for people: funnel, per-filter histograms
with the thresholds drawn, rejected thumbnails with their reasons). The page is a Jinja2 template
(report_template.html, autoescaped) with matplotlib's histograms; self-contained: charts and thumbnails are base64
images, no scripts, no network.
"""
from __future__ import annotations

import base64
import math
from collections import Counter

import numpy as np
import yaml

from qimage.datapipe.pipeline import STAGE_NAMES, stages_text
from qimage.templates import number, render

BINS = 30


def _hist(values: list[float], marks: list[float], rejected: list[bool]) -> dict:
    """30 bins over the values and thresholds; counts of all, of the kept and of the rejected samples."""
    v = np.asarray(values, dtype=np.float64)
    rej = np.asarray(rejected, dtype=bool)
    lo, hi = float(v.min()), float(v.max())
    # heavy-tailed scores (file sizes) read better on a log axis
    log = lo > 0 and hi / lo > 50
    if log:
        # bounds from the transformed values themselves: math.log10 and np.log10 can differ in the last bit, which
        # would drop the smallest or largest value out of the histogram's range
        v = np.log10(v)
        lo, hi = float(v.min()), float(v.max())
        marks = [math.log10(m) for m in marks if m > 0]
    for m in marks:
        lo, hi = min(lo, m), max(hi, m)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(v, bins=BINS, range=(lo, hi))
    rejected_counts, _ = np.histogram(v[rej], bins=edges)
    return {"log10": log, "edges": [round(float(e), 6) for e in edges], "counts": counts.tolist(),
            "kept": (counts - rejected_counts).tolist(), "rejected": rejected_counts.tolist()}


def build_report(root: str, out: str, recipe: dict, plan, stages, rows, warnings: list[str],
                 seconds: float) -> dict:
    """rows: finalize's Rows (columns, with a row view per index)."""
    n = len(rows)
    is_rejected = np.array([f is not None for f in rows.column("filter")], dtype=bool)
    rejected = [rows[i] for i in np.flatnonzero(is_rejected)]
    kept = [rows[i] for i in np.flatnonzero(~is_rejected)]
    by_filter = Counter(r["filter"] for r in rejected)
    failing = Counter(x.split(":")[0] for r in rejected for x in (r["reasons"] or []))
    active = {f.name for f in plan.filters}
    stage_list, alive = [], n
    for s in range(1, 8):
        filters = []
        for f in [f for f in plan.all if f.stage == s]:
            col = rows.column(f"score_{f.name}")  # NaN: not measured
            measured = ~np.isnan(col)
            vals = col[measured].tolist()
            marks = [v for _, v in f.thresholds()]
            status = "on" if f.name in active else ("off" if not f.enabled else
                                                   "outside --stages" if s not in stages else "skipped")
            filters.append({"name": f.name, "status": status, "rejected": by_filter.get(f.name, 0),
                            "failed": failing.get(f.name, 0), "scored": len(vals), "thresholds": dict(f.thresholds()),
                            "histogram": _hist(vals, marks, is_rejected[measured]) if vals else None,
                            "reasons": dict(Counter(r["reason"].split(":")[0].split(" (")[0]
                                                    for r in rejected if r["filter"] == f.name).most_common(8))
                            if f.name == "broken_file" else {}})
        out_n = alive - sum(x["rejected"] for x in filters)
        stage_list.append({"stage": s, "name": STAGE_NAMES[s], "in": alive, "rejected": alive - out_n, "out": out_n,
                           "run": s in stages or s == 1, "filters": filters})
        alive = out_n
    weight_by_cat: dict[str, list[float]] = {}
    for r in kept:
        weight_by_cat.setdefault(r["category"], []).append(r.get("weight", 1.0))
    errors = sum(1 for r in rejected if r["reason"] and r["reason"].startswith("error in filter"))
    # an edit pair is one sample of two files (its target rides in target_path); a source whose target could not be
    # paired is a pair too (rejected by edit_pair), without a second file
    pairs = [r for r in rows if r.get("edit") is not None]
    targets = sum(r.get("target_path") is not None for r in rows)
    return {
        "input": root, "output": out, "stages": stages_text(stages),
        "counts": {"inputs": n, "kept": len(kept), "rejected": len(rejected), "conserved": len(kept) + len(rejected) == n,
                   "failing_filters": dict(failing.most_common()),  # every filter a rejected sample failed, not only the first
                   "filter_errors": errors, "missing_caption": sum(not r["has_caption"] for r in rows),
                   "synthetic": sum(bool(r["synthetic"]) for r in rows),
                   "files": n + targets,  # inputs are samples; files adds the edit pairs' targets
                   "pairs": {"inputs": len(pairs), "kept": sum(r["filter"] is None for r in pairs),
                             "rejected": sum(r["filter"] is not None for r in pairs), "targets": targets}},
        "stages_detail": stage_list,
        "labels": {"lang": dict(Counter(r["lang"] for r in kept)), "category": dict(Counter(r["category"] for r in kept)),
                   "bucket": dict(sorted(Counter(r["bucket"] for r in kept).items())),
                   "ocr": dict(Counter(r["ocr"] or "not run" for r in rows if r["width"])),
                   "mean_weight": {k: round(sum(v) / len(v), 4) for k, v in sorted(weight_by_cat.items())}},
        "warnings": warnings,
        "seconds": round(seconds, 2),
    }


# -- HTML --------------------------------------------------------------------------------------------------------
def plot_histogram(h: dict, thresholds: dict, title: str) -> bytes:
    """PNG of one filter's histogram (matplotlib): kept below, rejected stacked on top, thresholds dashed."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.asarray(h["edges"])
    left, width = edges[:-1], np.diff(edges) * 0.92
    fig, ax = plt.subplots(figsize=(4.2, 1.7), dpi=100)
    ax.bar(left, h["kept"], width, align="edge", color="#6b9bea")
    ax.bar(left, h["rejected"], width, bottom=h["kept"], align="edge", color="#e0787a")
    for name, value in thresholds.items():
        if h["log10"] and value <= 0:
            continue
        x = math.log10(value) if h["log10"] else value
        ax.axvline(x, color="#d32f2f", linestyle="--", linewidth=1.5)
        ax.annotate(f"{name} {number(value)}", (x, 1), xycoords=("data", "axes fraction"), xytext=(3, -10),
                    textcoords="offset points", color="#d32f2f", fontsize=7)
    ticks = np.linspace(edges[0], edges[-1], 5)
    ax.set_xticks(ticks, [number(10 ** t if h["log10"] else t) for t in ticks], fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(title, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _pairs_line(c: dict) -> str:
    p = c.get("pairs") or {}
    if not p.get("inputs"):
        return ""
    return f'{c["files"]} files; {p["inputs"]} edit pairs ({p["kept"]} kept)'


def html_page(rep: dict, thumbs: dict, recipe: dict) -> str:
    """report.html: self-contained (plots and thumbnails inline)."""
    plots = {f["name"]: base64.b64encode(plot_histogram(f["histogram"], f["thresholds"], f["name"])).decode()
             if f["histogram"] else None for s in rep["stages_detail"] for f in s["filters"]}
    page = render("report_template.html", "qimage.datapipe", rep=rep, c=rep["counts"], thumbs=thumbs, plots=plots,
                  pairs_line=_pairs_line(rep["counts"]),
                  recipe_yaml=yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True))
    return page
