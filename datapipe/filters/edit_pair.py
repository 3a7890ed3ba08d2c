"""edit_pair (stage 1): an edit pair's target is a usable image of the source's size, with an instruction.

Score: the share of pixels the edit changed (0-1): pixels of the target, at the source's working size (long side
512), whose largest channel difference from the source exceeds 16 levels. Plain samples (no target) have none. The
filter is mandatory and runs on synthetic samples too (the target's bytes ship with the pair, so they must
decode). It rejects a pair whose source JSON names a target that discovery could not pair (missing or hidden,
outside the input folder, a sidecar, the sample itself, already another source's target), a target that cannot be
read or decoded (the same tests as broken_file), a target of another size than the source (`same_size`), a pair
with no instruction (`edit.instruction` in neither sidecar), and, when set, a changed share outside `min` / `max`
(`min` above 0 drops no-op edits). Every reason names the target's path.
"""
from __future__ import annotations


import cv2
import numpy as np

from qimage.datapipe.filters import Filter, Verdict, _fmt, register
from qimage.datapipe.sample import DecodeError, fit_side

CHANGE_LEVEL = 16


def changed_share(source: np.ndarray, target: np.ndarray) -> float:
    """Share of `target`'s pixels (RGB, resized to `source`'s shape when it differs) more than CHANGE_LEVEL away."""
    if target.shape[:2] != source.shape[:2]:
        target = cv2.resize(target, (source.shape[1], source.shape[0]), interpolation=cv2.INTER_AREA)
    diff = cv2.absdiff(source, target).max(axis=2)
    return float(np.count_nonzero(diff > CHANGE_LEVEL)) / max(1, diff.size)


@register
class EditPair(Filter):
    name = "edit_pair"
    stage = 1
    kind = "file"
    mandatory = True
    params = {"same_size": True, "min": None, "max": None}

    def __call__(self, sample) -> Verdict:
        nan = float("nan")
        if sample.edit_error:
            return Verdict(False, nan, sample.edit_error)
        t = sample.target
        if t is None:
            return Verdict(True, nan)
        where = f"target {t.rel}"
        if t.read_error:
            return Verdict(False, nan, f"{where}: {t.read_error}")
        t.max_pixels = sample.max_pixels  # broken_file set the source's
        try:
            t.decode()
        except DecodeError as e:
            return Verdict(False, nan, f"{where}: {e}")
        if self.cfg["same_size"] and (t.width, t.height) != (sample.width, sample.height):
            return Verdict(False, nan, f"{where} is {t.width}x{t.height}, its source {sample.width}x{sample.height}")
        if not sample.instruction:
            return Verdict(False, nan, f"{where}: no instruction (edit.instruction in the source's or the target's JSON)")
        score = changed_share(sample.work, fit_side(t.rgb, max(sample.work.shape[:2])))
        lo, hi = self.cfg.get("min"), self.cfg.get("max")
        if lo is not None and score < lo:
            return Verdict(False, score, f"{where}: changed share {_fmt(score)} < min {_fmt(lo)}")
        if hi is not None and score > hi:
            return Verdict(False, score, f"{where}: changed share {_fmt(score)} > max {_fmt(hi)}")
        return Verdict(True, score)

    def thresholds(self) -> list[tuple[str, float]]:
        return [(k, float(self.cfg[k])) for k in ("min", "max") if self.cfg.get(k) is not None]
