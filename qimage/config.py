"""Strict configs from YAML, for every qimage file a user writes (training configs, recipes, data-pipeline recipes).

A config is a dataclass; a YAML mapping fills it through pydantic in strict mode: every key that is not a field is
an error naming the key and the field it could have been, and every value must already have the field's type
(``"3"`` is not an int, ``true`` is not a number; an int is a float), so a typo never silently runs with a default.
Every way a file can be wrong becomes one ``UserError`` line:

    bad.yaml: unknown key 'optim.warmup' (did you mean 'warmup_steps'?)
    bad.yaml: optim.lr: expected float, got 'fast'
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import types
import typing
from pathlib import Path
from typing import Any

from qimage.errors import UserError

# What a pydantic error type asks for, in the words of the one-line message.
_EXPECTED = {
    "int_type": "int", "int_from_float": "int", "float_type": "float", "bool_type": "true or false",
    "string_type": "str", "list_type": "a list", "dict_type": "a mapping", "dataclass_type": "a mapping",
    "greater_than_equal": "a number >= {ge:g}",
}


def parse(cls: type, data: Any, where: str = "config"):
    """An instance of dataclass ``cls`` from a mapping (YAML data), strictly; the first problem is a UserError."""
    from pydantic import ValidationError

    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of keys to values, got {data!r}")
    try:
        # JSON mode: a mapping may stand for a dataclass while every scalar is still checked strictly
        return _adapter(cls).validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as e:
        raise UserError(_message(cls, e.errors(), where)) from None


def read_mapping(path, what: str = "config file") -> dict:
    """A YAML file's top-level mapping; a missing file, bad YAML or a non-mapping is one UserError."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{what} {p} is not valid YAML: {str(e).strip().splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{what} {p} must be a mapping of keys to values")
    return data


def read_yaml(cls: type, path, what: str = "config file"):
    """An instance of dataclass ``cls`` from a YAML file (``read_mapping``, then ``parse`` named by the file)."""
    return parse(cls, read_mapping(path, what), Path(path).name)


@functools.lru_cache(maxsize=None)
def _adapter(cls: type):
    from pydantic import ConfigDict, TypeAdapter

    for c in _dataclasses_in(cls):
        # set on each class: pydantic reads a dataclass's own config, nested ones included
        c.__pydantic_config__ = ConfigDict(extra="forbid")
    return TypeAdapter(cls)


def _dataclasses_in(tp, seen=None) -> list[type]:
    seen = [] if seen is None else seen
    if dataclasses.is_dataclass(tp) and tp not in seen:
        seen.append(tp)
        for hint in typing.get_type_hints(tp, include_extras=True).values():
            _dataclasses_in(hint, seen)
    for arg in typing.get_args(tp):
        _dataclasses_in(arg, seen)
    return seen


def _message(cls: type, errors: list[dict], where: str) -> str:
    """The first problem, in one line; a value that fits no member of a Union lists what each would take."""
    err = errors[0]
    loc = _key_loc(cls, err["loc"])
    if err["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        names = [f.name for f in dataclasses.fields(_type_at(cls, loc[:-1]))]
        near = difflib.get_close_matches(str(loc[-1]), names, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(names)})"
        return f"{where}: unknown key {_path(loc)!r}{hint}"
    same = [e for e in errors if _key_loc(cls, e["loc"]) == loc]
    what = " or ".join(dict.fromkeys(_expected(e) for e in same))
    return f"{where}: {_path(loc) or 'top level'}: expected {what}, got {err['input']!r}"


def _expected(err: dict) -> str:
    expected = _EXPECTED.get(err["type"])
    return expected.format(**err.get("ctx", {})) if expected else err["msg"][0].lower() + err["msg"][1:]


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _key_loc(cls: type, loc: tuple) -> tuple:
    """``loc`` without pydantic's own steps after the last key (which member of a Union failed)."""
    tp, keys = cls, []
    for part in loc:
        tp = _strip(tp)
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp, include_extras=True)
            if part not in hints:
                return (*keys, part)  # an unknown key
            tp = hints[part]
        elif typing.get_origin(tp) in (list, dict):
            tp = typing.get_args(tp)[-1]
        else:
            break
        keys.append(part)
    return tuple(keys)


def _type_at(tp, loc: tuple):
    """The dataclass at ``loc`` inside ``tp`` (through fields, list items, dict values and Optional)."""
    for part in loc:
        tp = _strip(tp)
        if dataclasses.is_dataclass(tp):
            tp = typing.get_type_hints(tp, include_extras=True)[part]
        else:
            tp = typing.get_args(tp)[-1]  # list[X] -> X, dict[K, V] -> V
    return _strip(tp)


def _strip(tp):
    """X from Annotated[X, ...] and from Optional[X]."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _strip(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return tp
