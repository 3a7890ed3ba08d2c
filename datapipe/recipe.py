"""The YAML recipe: load the shipped default, merge a user file over it, validate every key and value (qimage.config,
the strict loader training configs use too, against a schema built from the default and the filters' params).

Validation is strict because a misspelt threshold that silently does nothing is the worst failure a cleaning
pipeline can have: any unknown key or wrongly typed value is a UserError naming the key.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import yaml
from pydantic import Field

from qimage.config import parse, read_mapping
from qimage.errors import UserError

DEFAULT_PATH = Path(__file__).parent / "recipes" / "default.yaml"


def default_text() -> str:
    return DEFAULT_PATH.read_text(encoding="utf-8")


def _merge(base: Any, over: Any) -> Any:
    """``over`` laid over ``base``, mapping by mapping (validation is ``_schema``'s job)."""
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return over
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if k in base else v
    return out


# Numbers in a recipe are thresholds, sizes and shares: never negative. An int is a number too.
_NUMBER = Annotated[float, Field(ge=0)]


def _value_type(default: Any, name: str):
    """The type a recipe value must have, from its default (the default recipe's or a filter's ``params``)."""
    if isinstance(default, bool):
        return bool
    if isinstance(default, (int, float)):
        return _NUMBER
    if isinstance(default, str):
        return str
    if isinstance(default, list):
        return list[_value_type(default[0], name)] if default else list[Any]
    if isinstance(default, dict):
        return dict[str, Any]  # a filter's open mapping (quality_quota's quotas)
    # no default: an optional threshold is a number; a model path (or other setting) a number or a string
    return Optional[_NUMBER] if name in ("min", "max") else Optional[Union[_NUMBER, str]]


def _section(name: str, default: dict) -> type:
    """A dataclass of a recipe section's keys: nested sections are dataclasses, every key has its default's type."""
    fields = []
    for k, v in default.items():
        tp = _section(f"{name}_{k}", v) if isinstance(v, dict) and v else _value_type(v, k)
        fields.append((k, tp, dataclasses.field(default=None)))
    return dataclasses.make_dataclass(name, fields)


def _filter_schema(cls) -> type:
    params = {"enabled": True, "skip_synthetic": False, **cls.params}
    fields = [(k, _value_type(v, k) if k not in ("min", "max") else Optional[_NUMBER], dataclasses.field(default=None))
              for k, v in params.items()]
    return dataclasses.make_dataclass(f"filter_{cls.name}", fields)


@functools.lru_cache(maxsize=None)
def _schema(filters: tuple) -> type:
    """The recipe's schema: run, ocr and labels as the default recipe spells them; under filters, every registered
    filter with the keys its ``params`` declare (so any documented param may be set, not only those the default
    recipe names)."""
    from qimage.datapipe.filters import load_all

    base = yaml.safe_load(default_text())
    registry = load_all()
    fields = [(k, _section(f"recipe_{k}", v) if isinstance(v, dict) else _value_type(v, k),
               dataclasses.field(default=None)) for k, v in base.items() if k != "filters"]
    filter_fields = [(n, _filter_schema(registry[n]), dataclasses.field(default=None)) for n in filters]
    fields.append(("filters", dataclasses.make_dataclass("recipe_filters", filter_fields),
                   dataclasses.field(default=None)))
    return dataclasses.make_dataclass("Recipe", fields)


def _read_user(path) -> dict:
    if not Path(path).is_file():
        raise UserError(f"recipe file not found: {path}")
    return read_mapping(path, "recipe")


def load(path: str | Path | None = None) -> dict:
    """The effective recipe as a plain dict (default merged with `path`), validated (``qimage.config``: every key
    known, every value of its default's type), then checked where types cannot say."""
    from qimage.datapipe.filters import load_all

    base = yaml.safe_load(default_text())
    recipe = _merge(base, _read_user(path)) if path is not None else base
    plugins = recipe.get("plugins")
    if not isinstance(plugins, list) or not all(isinstance(m, str) for m in plugins):
        raise UserError(f"recipe: plugins: expected a list of module names, got {plugins!r}")
    registry = load_all(plugins)
    parse(_schema(tuple(sorted(registry))), recipe, "recipe")
    _check_values(recipe, registry)
    for name in registry:
        recipe["filters"].setdefault(name, {})
    return recipe


def _check_values(recipe: dict, registry: dict) -> None:
    run = recipe["run"]
    if run["shard_size"] < 1 or run["task_cpus"] <= 0 or run["object_store_mb"] < 64:
        raise UserError("recipe: run.shard_size must be >= 1, run.task_cpus > 0, run.object_store_mb >= 64")
    for name, cfg in recipe["filters"].items():
        lo, hi = cfg.get("min", registry[name].params.get("min")), cfg.get("max", registry[name].params.get("max"))
        if lo is not None and hi is not None and lo > hi:
            raise UserError(f"recipe: filters.{name}: min {lo} > max {hi}")
    for r in recipe["labels"]["buckets"]["ratios"]:
        try:
            a, b = (float(x) for x in str(r).split(":"))
            assert a > 0 and b > 0
        except (ValueError, AssertionError):
            raise UserError(f"recipe: labels.buckets.ratios: {r!r} is not W:H") from None


def fingerprint(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
