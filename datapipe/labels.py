"""Labels of stages 4, 6 and 7: text language, category, aspect-ratio bucket, and the resampling weights.

Per row: lang (from the shared OCR boxes), category, bucket. Across the kept set: weights, because a rebalance
weight is a target share over an observed share and only the whole run knows the observed one.
"""
from __future__ import annotations

import math
from collections import Counter

from qimage.datapipe.ocr import box_hw

CATEGORIES = ("general", "portrait", "text")


def category(sample, lang: str, cfg: dict) -> str:
    """text when OCR text covers >= text_min_area of the image (or the sample is a synthetic text render), portrait when
    the largest face covers >= portrait_min_face, else general. Text first: a sign held by a person is text data."""
    if sample.text_render:
        return "text"
    if lang not in ("none", "unknown") and sample.ocr:
        area = sum(h * w for h, w in (box_hw(q) for q, _, _ in sample.ocr))
        if area / float(sample.width * sample.height) >= cfg["text_min_area"]:
            return "text"
    faces = sample.faces
    if faces and max(w * h for _, _, w, h in faces) / float(sample.width * sample.height) >= cfg["portrait_min_face"]:
        return "portrait"
    return "general"


def bucket_sizes(base: int, ratios: list[str], multiple: int) -> list[tuple[int, int]]:
    """Every base gets one W x H per aspect ratio with about base^2 pixels, sides a multiple of `multiple`."""
    out = []
    for r in ratios:
        a, b = (float(x) for x in str(r).split(":"))
        k = math.sqrt(a / b)
        out.append((max(multiple, round(base * k / multiple) * multiple), max(multiple, round(base / k / multiple) * multiple)))
    return out


def bucket(width: int, height: int, cfg: dict) -> str:
    """The largest base the image covers (pixels >= min_cover * base^2; else the smallest base), then the bucket of
    that base whose aspect ratio is nearest in log space."""
    bases = sorted(int(b) for b in cfg["bases"])
    fit = [b for b in bases if width * height >= cfg["min_cover"] * b * b]
    base = fit[-1] if fit else bases[0]
    target = math.log(width / height)
    w, h = min(bucket_sizes(base, cfg["ratios"], int(cfg["multiple"])), key=lambda s: (abs(math.log(s[0] / s[1]) - target), s))
    return f"{w}x{h}"


def balance(counts: dict[str, int], targets: dict[str, float], lo: float, hi: float) -> dict[str, float]:
    """Per class weight = target share / observed share, clamped to [lo, hi]; classes without a target keep 1."""
    total = sum(counts.values())
    tsum = sum(targets.get(k, 0.0) for k in counts if counts[k]) or 1.0
    out = {}
    for k, n in counts.items():
        if not n or k not in targets:
            out[k] = 1.0
            continue
        out[k] = min(hi, max(lo, (targets[k] / tsum) / (n / total)))
    return out


def _is_text(r: dict) -> bool:
    return r["category"] == "text" or r["lang"] in ("en", "zh", "other")


def _factor(rows: list[dict], key: str, cfg: dict, applies=lambda r: True) -> list[float]:
    """Per row, the balance() weight of its value of `key` among the rows it applies to (1 for the others)."""
    counts = Counter(r[key] for r in rows if applies(r))
    cw = balance(dict(counts), cfg["targets"], cfg["min_weight"], cfg["max_weight"])
    return [cw.get(r[key], 1.0) if applies(r) else 1.0 for r in rows]


def weights(rows: list[dict], labels_cfg: dict, stage6: bool, stage7: bool) -> list[float]:
    """Final weight per kept row: category rebalance (stage 6) times text-language resampling (stage 7)."""
    w = [1.0] * len(rows)
    if stage6:
        w = [x * f for x, f in zip(w, _factor(rows, "category", labels_cfg["rebalance"]))]
    if stage7:
        w = [x * f for x, f in zip(w, _factor(rows, "lang", labels_cfg["text_resample"], _is_text))]
    return [round(x, 6) for x in w]
