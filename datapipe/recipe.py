"""The YAML recipe: load the shipped default, merge a user file over it, validate every key and value.

Validation is strict because a misspelt threshold that silently does nothing is the worst failure a cleaning
pipeline can have: any unknown key or wrongly typed value is a UserError naming the key.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from qimage.errors import UserError

DEFAULT_PATH = Path(__file__).parent / "recipes" / "default.yaml"


def default_text() -> str:
    return DEFAULT_PATH.read_text(encoding="utf-8")


def _merge(base: Any, over: Any, where: str) -> Any:
    if isinstance(base, dict):
        if not isinstance(over, dict):
            raise UserError(f"recipe: {where or 'top level'}: expected a mapping, got {over!r}")
        out = copy.deepcopy(base)
        # Filter settings are checked against each filter's declared params in load(), not against the keys the
        # default YAML happens to spell out, so any documented param (e.g. clarity.max) may be set.
        open_keys = where == "filters" or where.startswith("filters.")
        for k, v in over.items():
            path = f"{where}.{k}" if where else str(k)
            if k not in base and open_keys:
                out[k] = v
                continue
            if k not in base:
                near = difflib.get_close_matches(str(k), [str(x) for x in base], n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(map(str, base))})"
                raise UserError(f"recipe: unknown key {path!r}{hint}")
            out[k] = _merge(base[k], v, path) if isinstance(base[k], dict) else v
        return out
    return over


def _check_type(default: Any, value: Any, where: str) -> None:
    def bad(kind: str):
        raise UserError(f"recipe: {where}: expected {kind}, got {value!r}")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            bad("true or false")
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad("a number")
        if value < 0:
            bad("a number >= 0")
    elif isinstance(default, str):
        if not isinstance(value, str):
            bad("a string")
    elif isinstance(default, list):
        if not isinstance(value, list):
            bad("a list")
        if default and value:
            for i, v in enumerate(value):
                _check_type(default[0], v, f"{where}[{i}]")


def load(path: str | Path | None = None) -> dict:
    """The effective recipe as a plain dict (default merged with `path`), validated."""
    from qimage.datapipe.filters import load_all

    base = yaml.safe_load(default_text())
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"recipe file not found: {p}")
        try:
            user = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise UserError(f"recipe {p}: not valid YAML ({str(e).splitlines()[0]})") from None
        recipe = _merge(base, user, "")
    else:
        recipe = base
    registry = load_all()
    # generic checks against the default's own types
    for section in ("run", "ocr"):
        for k, v in recipe[section].items():
            _check_type(base[section][k], v, f"{section}.{k}")
    if recipe["run"]["shard_size"] < 1 or recipe["run"]["task_cpus"] <= 0 or recipe["run"]["object_store_mb"] < 64:
        raise UserError("recipe: run.shard_size must be >= 1, run.task_cpus > 0, run.object_store_mb >= 64")
    for name, cfg in recipe["filters"].items():
        cls = registry.get(name)
        if cls is None:
            near = difflib.get_close_matches(str(name), list(registry), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known: {', '.join(sorted(registry))}"
            raise UserError(f"recipe: unknown key 'filters.{name}' ({hint})")
        if not isinstance(cfg, dict):
            raise UserError(f"recipe: filters.{name}: expected a mapping")
        allowed = {"enabled": True, "skip_synthetic": False, **cls.params}
        for k, v in cfg.items():
            where = f"filters.{name}.{k}"
            if k not in allowed:
                near = difflib.get_close_matches(str(k), list(allowed), n=1)
                hint = f"did you mean {near[0]!r}?" if near else f"allowed: {', '.join(sorted(allowed))}"
                raise UserError(f"recipe: unknown key {where!r} ({hint})")
            d = allowed[k]
            if d is None:  # optional threshold or model path
                if v is not None and not isinstance(v, (int, float, str)) or isinstance(v, bool):
                    raise UserError(f"recipe: {where}: expected a number, a path or null, got {v!r}")
                if k in ("min", "max") and isinstance(v, str):
                    raise UserError(f"recipe: {where}: expected a number or null, got {v!r}")
            elif k in ("min", "max") and v is None:
                pass
            else:
                _check_type(d, v, where)
        lo, hi = cfg.get("min", cls.params.get("min")), cfg.get("max", cls.params.get("max"))
        if lo is not None and hi is not None and lo > hi:
            raise UserError(f"recipe: filters.{name}: min {lo} > max {hi}")
    for name in registry:
        recipe["filters"].setdefault(name, {})
    labels = recipe["labels"]
    for key in ("rebalance", "text_resample"):
        targets = labels[key]["targets"]
        for k, v in targets.items():
            _check_type(0.0, v, f"labels.{key}.targets.{k}")
    for k in ("text_min_area", "portrait_min_face"):
        _check_type(0.0, labels["category"][k], f"labels.category.{k}")
    for r in labels["buckets"]["ratios"]:
        try:
            a, b = (float(x) for x in str(r).split(":"))
            assert a > 0 and b > 0
        except (ValueError, AssertionError):
            raise UserError(f"recipe: labels.buckets.ratios: {r!r} is not W:H") from None
    for b in labels["buckets"]["bases"]:
        _check_type(1, b, "labels.buckets.bases[]")
    return recipe


def fingerprint(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
