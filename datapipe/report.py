"""report.json (counts a script can check) and report.html (the same, for people: funnel, per-filter histograms
with the thresholds drawn, rejected thumbnails with their reasons). Self-contained HTML: inline SVG charts and
base64 JPEG thumbnails, no scripts, no network.
"""
from __future__ import annotations

import base64
import html
import math
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from qimage.datapipe.pipeline import STAGE_NAMES, stages_text

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


def build_report(root: Path, out: Path, recipe: dict, plan, stages, rows: list[dict], warnings: list[str],
                 seconds: float) -> dict:
    n = len(rows)
    rejected = [r for r in rows if r["filter"] is not None]
    kept = [r for r in rows if r["filter"] is None]
    by_filter = Counter(r["filter"] for r in rejected)
    failing = Counter(x.split(":")[0] for r in rejected for x in (r["reasons"] or []))
    active = {f.name for f in plan.filters}
    stage_list, alive = [], n
    for s in range(1, 8):
        filters = []
        for f in [f for f in plan.all if f.stage == s]:
            col = f"score_{f.name}"
            measured = [r for r in rows if r.get(col) is not None and not math.isnan(r[col])]
            vals = [r[col] for r in measured]
            marks = [v for _, v in f.thresholds()]
            status = "on" if f.name in active else ("off" if not f.enabled else
                                                   "outside --stages" if s not in stages else "skipped")
            filters.append({"name": f.name, "status": status, "rejected": by_filter.get(f.name, 0),
                            "failed": failing.get(f.name, 0), "scored": len(vals), "thresholds": dict(f.thresholds()),
                            "histogram": _hist(vals, marks, [r["filter"] is not None for r in measured]) if vals else None,
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
        "input": str(root), "output": str(out), "stages": stages_text(stages),
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
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:2px solid #dde1e8;padding-bottom:4px}
h3{font-size:15px;margin:0 0 6px}.sub{color:#5b6475}
.cards{display:flex;gap:12px;margin:16px 0}.card{background:#fff;border-radius:8px;padding:12px 18px;box-shadow:0 1px 2px #0001;min-width:150px}
.card b{display:block;font-size:26px}.ok{color:#1a7f37}.bad{color:#c62828}
table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 2px #0001}
th,td{padding:6px 10px;border-bottom:1px solid #eceef2;text-align:left}th{background:#f0f2f5;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#e8ebf0;height:10px;border-radius:5px;position:relative;min-width:160px}
.bar i{position:absolute;left:0;top:0;bottom:0;background:#3b82f6;border-radius:5px}
.filter{background:#fff;border-radius:8px;padding:14px;margin:12px 0;box-shadow:0 1px 2px #0001}
.row{display:flex;gap:18px;flex-wrap:wrap;align-items:flex-start}
.thumbs{display:flex;flex-wrap:wrap;gap:8px;flex:1;min-width:300px}
figure{margin:0;width:150px;font-size:11px;color:#5b6475}figure img,figure .ph{width:144px;height:112px;object-fit:contain;background:#eef0f3;border-radius:4px;display:block}
figure .ph{display:flex;align-items:center;justify-content:center;font-size:20px;color:#9aa2b1}
figcaption{overflow:hidden;text-overflow:ellipsis;display:-webkit-box;-webkit-line-clamp:4;-webkit-box-orient:vertical;word-break:break-all}
.tag{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;background:#e8ebf0}
.tag.on{background:#d9f2e1;color:#1a7f37}.tag.off,.tag.skipped{background:#fdecea;color:#a33}
pre{background:#fff;padding:12px;border-radius:8px;overflow:auto;font-size:12px}
.warn{background:#fff7e0;border-left:4px solid #f0b400;padding:8px 12px;margin:6px 0}
"""


def _svg_hist(h: dict, thresholds: dict, title: str, width: int = 420, height: int = 170) -> str:
    counts, edges = h["counts"], h["edges"]
    pad_l, pad_b, pad_t = 36, 34, 10
    W, H = width - pad_l - 28, height - pad_b - pad_t  # right margin: room for the last tick label
    top = max(counts) or 1
    x0, x1 = edges[0], edges[-1]
    sx = lambda v: pad_l + (v - x0) / (x1 - x0) * W
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title)}"><rect width="100%" height="100%" fill="#fff"/>']
    for i, c in enumerate(counts):
        if not c:
            continue
        x, w = sx(edges[i]) + 0.5, max(1.0, sx(edges[i + 1]) - sx(edges[i]) - 1)
        base = pad_t + H
        for n, colour in ((h["kept"][i], "#6b9bea"), (h["rejected"][i], "#e0787a")):  # kept below, rejected on top
            bh = n / top * H
            if n:
                parts.append(f'<rect x="{x:.1f}" y="{base - bh:.1f}" width="{w:.1f}" height="{bh:.1f}" fill="{colour}"/>')
            base -= bh
    parts.append(f'<line x1="{pad_l}" y1="{pad_t + H}" x2="{pad_l + W}" y2="{pad_t + H}" stroke="#555"/>')
    for v in np.linspace(x0, x1, 5):
        label = _num(10 ** v if h["log10"] else v)
        parts.append(f'<text x="{sx(v):.1f}" y="{pad_t + H + 14}" font-size="10" text-anchor="middle" fill="#444">{label}</text>')
    parts.append(f'<text x="{pad_l - 4}" y="{pad_t + 8}" font-size="10" text-anchor="end" fill="#444">{top}</text>')
    parts.append(f'<text x="{pad_l - 4}" y="{pad_t + H}" font-size="10" text-anchor="end" fill="#444">0</text>')
    for name, shown in thresholds.items():
        val = shown
        if h["log10"]:
            if val <= 0:
                continue
            val = math.log10(val)
        x = sx(val)
        parts.append(f'<line x1="{x:.1f}" y1="{pad_t - 4}" x2="{x:.1f}" y2="{pad_t + H}" stroke="#d32f2f" stroke-width="2" stroke-dasharray="5 3"/>')
        anchor = "start" if x < pad_l + W * 0.7 else "end"
        dx = 4 if anchor == "start" else -4
        parts.append(f'<text x="{x + dx:.1f}" y="{pad_t + 8}" font-size="11" fill="#d32f2f" text-anchor="{anchor}">{name} {_num(shown)}</text>')
    axis = "score (log scale)" if h["log10"] else "score"
    parts.append(f'<text x="{pad_l + W / 2}" y="{height - 4}" font-size="10" text-anchor="middle" fill="#777">{axis}; blue: kept, '
                 'red: rejected (by any filter); dashed: threshold</text>')
    parts.append("</svg>")
    return "".join(parts)


def _num(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a < 1e4 and float(v).is_integer():
        return str(int(v))
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"


def _bars(d: dict, title: str) -> str:
    total = sum(d.values()) or 1
    rows = "".join(f'<tr><td>{html.escape(str(k))}</td><td class="n">{v}</td><td class="n">{v / total:.0%}</td>'
                   f'<td><div class="bar"><i style="width:{v / total * 100:.1f}%"></i></div></td></tr>'
                   for k, v in sorted(d.items(), key=lambda kv: -kv[1]))
    return f'<div style="flex:1;min-width:260px"><h3>{title}</h3><table><tr><th>value</th><th>kept</th><th>share</th><th></th></tr>{rows}</table></div>'


def _pairs_line(c: dict) -> str:
    p = c.get("pairs") or {}
    if not p.get("inputs"):
        return ""
    return f'{c["files"]} files; {p["inputs"]} edit pairs ({p["kept"]} kept)'


def write_html(path: Path, rep: dict, thumbs: dict, recipe: dict) -> None:
    c = rep["counts"]
    e = html.escape
    h = [f"<!doctype html><html lang=en><meta charset=utf-8><title>qimage data report</title><style>{CSS}</style><main>",
         "<h1>Data-quality report</h1>",
         f'<div class="sub">input <code>{e(rep["input"])}</code> &rarr; <code>{e(rep["output"])}</code> &middot; '
         f'stages {rep["stages"]} &middot; {rep["seconds"]} s</div>',
         '<div class="cards">',
         f'<div class="card">input {"samples" if _pairs_line(c) else "files"}<b>{c["inputs"]}</b>{_pairs_line(c)}</div>',
         f'<div class="card">kept<b class="ok">{c["kept"]}</b>{c["kept"] / max(1, c["inputs"]):.1%}</div>',
         f'<div class="card">rejected<b class="bad">{c["rejected"]}</b>{c["rejected"] / max(1, c["inputs"]):.1%}</div>',
         f'<div class="card">accounted for<b class="{"ok" if c["conserved"] else "bad"}">{"all" if c["conserved"] else "NO"}</b>'
         f'kept + rejected = inputs</div>',
         f'<div class="card">filter errors<b class="{"bad" if c["filter_errors"] else "ok"}">{c["filter_errors"]}</b>'
         f'missing captions: {c["missing_caption"]}</div></div>']
    for w in rep["warnings"]:
        h.append(f'<div class="warn">{e(w)}</div>')
    # funnel
    h.append("<h2>Funnel by stage</h2><table><tr><th>stage</th><th>in</th><th>rejected</th><th>out</th><th>surviving share of input</th><th>rejections by filter</th></tr>")
    for s in rep["stages_detail"]:
        by = ", ".join(f'{f["name"]} {f["rejected"]}' for f in s["filters"] if f["rejected"]) or "&ndash;"
        share = s["out"] / max(1, c["inputs"])
        note = "" if s["run"] else ' <span class="tag">not run</span>'
        h.append(f'<tr><td>{s["stage"]}. {e(s["name"])}{note}</td><td class="n">{s["in"]}</td><td class="n">{s["rejected"]}</td>'
                 f'<td class="n">{s["out"]}</td><td><div class="bar"><i style="width:{share * 100:.1f}%"></i></div></td><td>{by}</td></tr>')
    h.append("</table>")
    # labels
    lab = rep["labels"]
    h.append('<h2>What was kept</h2><div class="row">')
    h.append(_bars(lab["lang"], "Text language (stage 4)") + _bars(lab["category"], "Category (stage 6)"))
    h.append(_bars(lab["bucket"], "Aspect-ratio bucket (stage 7)"))
    mw = "".join(f"<tr><td>{e(k)}</td><td class=n>{v}</td></tr>" for k, v in lab["mean_weight"].items())
    h.append(f'<div style="min-width:200px"><h3>Mean resampling weight</h3><table><tr><th>category</th><th>weight</th></tr>{mw}</table>'
             f'<p class="sub">OCR per decoded image: {e(", ".join(f"{k} {v}" for k, v in lab["ocr"].items()))}</p></div></div>')
    # per filter
    h.append("<h2>Filters</h2><p class=sub>Histogram: scores of every sample the filter measured (a sample is measured "
             "until a stage rejects it; every filter of that stage still measures it), kept and rejected stacked. "
             "Thumbnails: rejected examples, first by path, with every filter they failed.</p>")
    for s in rep["stages_detail"]:
        h.append(f'<h2 style="font-size:16px">Stage {s["stage"]}: {e(s["name"])}</h2>')
        for f in s["filters"]:
            th = ", ".join(f"{k} {_num(v)}" for k, v in f["thresholds"].items()) or "&ndash;"
            h.append(f'<div class="filter"><h3>{e(f["name"])} <span class="tag {e(f["status"].split()[0])}">{e(f["status"])}</span> '
                     f'<span class="sub">rejected {f["rejected"]} (first reason) &middot; failed {f["failed"]} &middot; measured {f["scored"]} &middot; thresholds {th}</span></h3>'
                     '<div class="row">')
            if f["reasons"]:
                h.append('<div class="sub" style="width:100%">' + e(", ".join(f"{k}: {v}" for k, v in f["reasons"].items())) + "</div>")
            if f["histogram"]:
                h.append(_svg_hist(f["histogram"], f["thresholds"], f["name"]))
            figs = []
            for row, jpg in thumbs.get(f["name"], []):
                img = (f'<img alt="" src="data:image/jpeg;base64,{base64.b64encode(jpg).decode()}">' if jpg
                       else '<div class="ph">&#8709;</div>')
                why = "; ".join(row["reasons"] or [row["reason"] or ""])
                figs.append(f'<figure>{img}<figcaption title="{e(row["path"])}: {e(why)}"><b>{e(row["path"])}</b><br>'
                            f'{e(why)}</figcaption></figure>')
            if figs:
                h.append(f'<div class="thumbs">{"".join(figs)}</div>')
            elif f["status"] == "on" and not f["rejected"]:
                h.append('<div class="sub">nothing rejected</div>')
            h.append("</div></div>")
    h.append(f"<h2>Recipe</h2><pre>{e(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True))}</pre></main></html>")
    path.write_text("".join(h), encoding="utf-8")
