"""The strict YAML loader every qimage config goes through: each way a file is wrong is one message naming the key."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from qimage.config import parse, read_yaml
from qimage.errors import UserError


@dataclass
class Inner:
    lr: float = 1e-3
    steps: int = 10
    fused: bool = False
    floor: float | None = None


@dataclass
class Outer:
    name: str = ""
    inner: Inner = field(default_factory=Inner)
    stages: list[Inner] = field(default_factory=list)
    mixture: dict[str, float] = field(default_factory=dict)


def test_values_of_the_right_type_fill_the_dataclass_and_ints_become_floats():
    cfg = parse(Outer, {"name": "a", "inner": {"lr": 2, "floor": 0.5}, "stages": [{"steps": 3}], "mixture": {"x": 1}})
    assert cfg == Outer("a", Inner(lr=2.0, floor=0.5), [Inner(steps=3)], {"x": 1.0})
    assert isinstance(cfg.inner.lr, float) and isinstance(cfg.mixture["x"], float)
    assert parse(Outer, None) == Outer()


@pytest.mark.parametrize("data,message", [
    ({"nme": "a"}, "cfg.yaml: unknown key 'nme' (did you mean 'name'?)"),
    ({"inner": {"lrr": 1.0}}, "cfg.yaml: unknown key 'inner.lrr' (did you mean 'lr'?)"),
    ({"stages": [{}, {"zzz": 1}]}, "cfg.yaml: unknown key 'stages[1].zzz' (known: lr, steps, fused, floor)"),
    ({"inner": {"lr": "fast"}}, "cfg.yaml: inner.lr: expected float, got 'fast'"),
    ({"inner": {"steps": "3"}}, "cfg.yaml: inner.steps: expected int, got '3'"),  # a quoted number is no number
    ({"inner": {"steps": True}}, "cfg.yaml: inner.steps: expected int, got True"),
    ({"inner": {"steps": 2.5}}, "cfg.yaml: inner.steps: expected int, got 2.5"),
    ({"inner": {"fused": 1}}, "cfg.yaml: inner.fused: expected true or false, got 1"),
    ({"inner": 3}, "cfg.yaml: inner: expected a mapping, got 3"),
    ({"stages": {"a": 1}}, "cfg.yaml: stages: expected a list, got {'a': 1}"),
    ({"mixture": {"x": "a lot"}}, "cfg.yaml: mixture.x: expected float, got 'a lot'"),
])
def test_each_problem_is_one_message_naming_the_key(data, message):
    with pytest.raises(UserError) as e:
        parse(Outer, data, "cfg.yaml")
    assert str(e.value) == message


@pytest.mark.parametrize("text,message", [
    (None, "does not exist"),
    ("a: [1, 2", "is not valid YAML"),
    ("- 1\n- 2\n", "must be a mapping of keys to values"),
])
def test_files_that_are_not_a_yaml_mapping(tmp_path, text, message):
    path = tmp_path / "cfg.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UserError, match=message) as e:
        read_yaml(Outer, path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
