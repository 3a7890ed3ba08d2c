"""quality_quota (stage 7): keep only the best images of each category (the report's balanced multi-scale stage).

Score: a quality in [0, 1] computed per category from the scores the pipeline already measured, higher is better:
the mean over the available measures of the sample's percentile rank among the category's survivors,

    quality = mean_m rank_m(x) / (n - 1),   m in {clarity (sharper), entropy (richer), aesthetic (higher),
                                                   exposure (less clipped), compression (less blocky)}

(measures a sample lacks are left out of its mean; a category of one sample scores 1). Per category the top
`keep` fraction survives (ceil, so a kept category never empties), `quotas` overriding it per category name
(general, portrait, text); ties fall to the path. Synthetic renders are exempt by default (they skip the photo
measures the score is made of). The default keeps everything: set `keep` below 1 to curate.
"""
from __future__ import annotations

import math

import numpy as np

from qimage.datapipe.filters import Filter, Verdict, register

HIGHER_IS_BETTER = {"clarity": 1.0, "entropy": 1.0, "aesthetic": 1.0, "exposure": -1.0, "compression": -1.0}


def percentile_ranks(values: list[float | None]) -> list[float | None]:
    """Rank of each value among the non-missing ones, scaled to [0, 1] (ties share their mean rank)."""
    from scipy.stats import rankdata

    idx = [i for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    out: list[float | None] = [None] * len(values)
    if len(idx) == 1:
        out[idx[0]] = 1.0
    elif idx:
        r = rankdata([values[i] for i in idx])  # 1..n
        for i, x in zip(idx, r):
            out[i] = float((x - 1) / (len(idx) - 1))
    return out


def quality(rows: list[dict]) -> list[float]:
    """The quality of each row of one category (rows: dicts with score_<measure> keys)."""
    per_measure = []
    for m, sign in HIGHER_IS_BETTER.items():
        col = [r.get(f"score_{m}") for r in rows]
        per_measure.append(percentile_ranks([None if v is None else sign * v for v in col]))
    out = []
    for k in range(len(rows)):
        got = [pm[k] for pm in per_measure if pm[k] is not None]
        out.append(float(np.mean(got)) if got else 1.0)
    return out


@register
class QualityQuota(Filter):
    name = "quality_quota"
    stage = 7
    kind = "global"
    params = {"keep": 1.0, "quotas": {}, "skip_synthetic": True}

    def measure(self, sample) -> float:
        return float("nan")  # decided across the whole input; see resolve()

    def decide(self, score: float) -> Verdict:
        return Verdict(True, score)

    def resolve(self, rows: list[dict]) -> tuple[list[float], dict[int, tuple[float, str]]]:
        """rows: the kept rows (category, path, synthetic, score_<measure>). Returns each row's quality and
        {row index: (quality, reason)} for the rows past their category's quota."""
        scores = [float("nan")] * len(rows)
        out = {}
        by_cat: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            if not (self.skip_synthetic and r["synthetic"]):
                by_cat.setdefault(r["category"], []).append(i)
        for cat, idx in sorted(by_cat.items()):
            q = quality([rows[i] for i in idx])
            for i, x in zip(idx, q):
                scores[i] = x
            share = float(self.cfg["quotas"].get(cat, self.cfg["keep"]))
            n_keep = max(1, math.ceil(share * len(idx)))
            order = sorted(range(len(idx)), key=lambda k: (-q[k], rows[idx[k]]["path"]))
            for rank, k in enumerate(order[n_keep:], start=n_keep + 1):
                out[idx[k]] = (q[k], f"quality {q[k]:.3f} ranks {rank} of {len(idx)} in {cat}; the quota keeps {n_keep}")
        return scores, out
