"""The filter registry.

One operator per file, named as a user writes it in a recipe. Every operator measures one score per sample and
decides keep/reject from thresholds the recipe sets; the pipeline stores the score as `score_<name>` and the first
rejection as (stage, filter, reason, score), so the report can explain every removed file.
"""
from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass
from typing import Any, ClassVar

REGISTRY: dict[str, type["Filter"]] = {}


def register(cls: type["Filter"]) -> type["Filter"]:
    if cls.name in REGISTRY:
        raise RuntimeError(f"two filters named {cls.name}")
    REGISTRY[cls.name] = cls
    return cls


@dataclass
class Verdict:
    keep: bool
    score: float
    reason: str = ""


def _fmt(x: float) -> str:
    return f"{x:.4g}"


class Filter:
    """Base operator. Subclasses set `name`, `stage`, `kind` and `params` (defaults, also the recipe's schema).

    kind tells the pipeline what the operator needs, so the cheap ones run first and the expensive inputs
    (OCR, models) are only produced for samples still alive:
      "file": bytes and size only; "image": decoded pixels; "caption": the caption; "ocr": text boxes;
      "model": a local transformers model; "global": decided across the whole input after the per-row pass.
    """

    name: ClassVar[str] = ""
    stage: ClassVar[int] = 0
    kind: ClassVar[str] = "image"
    # Every key here is a recipe key. `enabled` and `skip_synthetic` exist for all filters.
    params: ClassVar[dict[str, Any]] = {}
    # True for filters that always run (decoding is what makes every later score possible).
    mandatory: ClassVar[bool] = False

    def __init__(self, **cfg: Any) -> None:
        merged = {"enabled": True, "skip_synthetic": False, **self.params}
        merged.update(cfg)
        self.cfg = merged
        self.enabled = bool(merged["enabled"]) or self.mandatory
        self.skip_synthetic = bool(merged["skip_synthetic"])

    def __getattr__(self, key: str) -> Any:
        cfg = self.__dict__.get("cfg", {})
        if key in cfg:
            return cfg[key]
        raise AttributeError(key)

    def setup(self) -> str | None:
        """Load what the operator needs; return a warning to skip it (e.g. no model configured)."""
        return None

    def check(self) -> str | None:
        """What setup() would warn about, without loading anything."""
        return None

    def measure(self, sample) -> float:
        raise NotImplementedError

    def decide(self, score: float) -> Verdict:
        """Keep or reject from the score alone: an operator keeps no state between measure and decide."""
        raise NotImplementedError

    def thresholds(self) -> list[tuple[str, float]]:
        """(label, value) pairs the report draws on the score histogram."""
        return []

    def __call__(self, sample) -> Verdict:
        return self.decide(self.measure(sample))


class RangeFilter(Filter):
    """Keep when min <= score <= max; either bound may be null (off)."""

    what: ClassVar[str] = "score"
    params = {"min": None, "max": None}

    def decide(self, score: float) -> Verdict:
        lo, hi = self.cfg.get("min"), self.cfg.get("max")
        if score is None or (isinstance(score, float) and math.isnan(score)):
            return Verdict(True, float("nan"))
        if lo is not None and score < lo:
            return Verdict(False, score, f"{self.what} {_fmt(score)} < min {_fmt(lo)}")
        if hi is not None and score > hi:
            return Verdict(False, score, f"{self.what} {_fmt(score)} > max {_fmt(hi)}")
        return Verdict(True, score)

    def thresholds(self) -> list[tuple[str, float]]:
        return [(k, float(self.cfg[k])) for k in ("min", "max") if self.cfg.get(k) is not None]


ENTRY_POINTS = "qimage.filters"


def load_all(plugins=()) -> dict[str, type[Filter]]:
    """Every operator, registered by importing its module: this package's, those installed packages declare under
    the ``qimage.filters`` entry-point group, and the modules a recipe names in ``plugins``. A plugin that cannot be
    imported is a UserError naming it."""
    from importlib.metadata import entry_points

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    for ep in entry_points(group=ENTRY_POINTS):
        _import(ep.value.split(":")[0], f"entry point {ep.name!r} of {ep.group}")
    for name in plugins:
        _import(name, "recipe: plugins")
    return REGISTRY


def _import(module: str, where: str) -> None:
    from qimage.errors import UserError

    try:
        importlib.import_module(module)
    except Exception as e:  # a plugin's own error, whatever it is, must read as one line naming the plugin
        raise UserError(f"{where}: cannot import {module!r} ({type(e).__name__}: {e})") from None
