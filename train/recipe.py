"""Recipes: a model's whole training as one YAML list of `qimage` commands, run with one command.

    qimage train recipe toy                 the shipped toy: data, VAE, decoder fine-tune, denoiser, eval
    qimage train recipe my-recipe.yaml      any file of the same shape

A recipe is a mapping with `steps`, each step a mapping:

    name:     the step's name (shown in progress and in the summary); `what`: optionally, what it does
    run:      a `qimage` command line (without the leading `qimage`); ``{recipes}`` is the folder of the built-in
              recipes, so a recipe can name its own stage configs (`qimage demo` passes more such variables)
    creates:  a path the step leaves behind when it has finished; a step whose `creates` exists is skipped
    resume:   optional: the command line to use instead of `run` when the `resume_if` path exists
              (an interrupted training continues from its checkpoint instead of starting over)

Each step runs as its own `qimage` process (as a person would type it), in order; the first failure stops the recipe
with that step's name and exit status. Wall time per step and in total goes to `OUT/recipe.json` beside the steps'
own outputs (`out` key of the recipe, default runs/<recipe name>), so a model card can quote how long it took.
"""
from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from qimage.errors import UserError

from .checkpoint import write_json_atomic
from qimage.config import read_yaml

RECIPES = Path(__file__).resolve().parent / "recipes"


@dataclass
class Step:
    name: str = ""
    run: str = ""
    creates: str = ""
    what: str = ""  # one sentence for reports
    resume: str = ""
    resume_if: str = ""


@dataclass
class Recipe:
    out: str = ""
    description: str = ""
    steps: list[Step] = field(default_factory=list)


def find(name_or_path: str) -> Path:
    """A recipe file: an existing path, or the name of a built-in recipe (train/recipes/NAME.yaml)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    builtin = RECIPES / f"{name_or_path}.yaml"
    if builtin.is_file() and "/" not in name_or_path:
        return builtin
    names = sorted(f.stem for f in RECIPES.glob("*.yaml") if is_recipe(f))
    raise UserError(f"no recipe {name_or_path!r}: not a file, and the built-in recipes are {', '.join(names)}")


def is_recipe(path: Path) -> bool:
    """Whether a YAML file is a recipe (a mapping with a `steps` list) rather than one step's training config."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:
        return False
    return isinstance(data, dict) and isinstance(data.get("steps"), list)


def load(path: Path) -> Recipe:
    recipe = read_yaml(Recipe, path, "recipe")
    if not recipe.steps:
        raise UserError(f"recipe {path}: `steps` is empty")
    for i, s in enumerate(recipe.steps):
        if not s.name or not s.run:
            raise UserError(f"recipe {path}: steps[{i}] needs `name` and `run`")
        if bool(s.resume) != bool(s.resume_if):
            raise UserError(f"recipe {path}: steps[{i}] ({s.name}) needs both `resume` and `resume_if`, or neither")
    recipe.out = recipe.out or f"runs/{path.stem}"
    return recipe


def _argv(line: str, variables: dict) -> list[str]:
    for key, value in {"recipes": str(RECIPES), **variables}.items():
        line = line.replace("{" + key + "}", shlex.quote(str(value)))  # paths with spaces stay one argument
    return shlex.split(line)


def _call(argv: list[str]) -> int:
    """`qimage ARGV` in this process: a new interpreter per step would import torch, transformers and diffusers
    again each time (several seconds a step, most of a short recipe such as the demo). Every command seeds what it
    draws and reads only its arguments, so a step runs as it would on its own."""
    from qimage.cli import main
    from qimage.datapipe.cluster import shutdown

    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's usage errors (its message is printed already), or sys.exit(...)
        if e.code is None or isinstance(e.code, int):
            rc = e.code or 0
        else:
            print(f"qimage: error: {e.code}", file=sys.stderr)
            rc = 1
    finally:
        shutdown()  # a Ray the step started (data run) would hold its workers' memory through the later steps
    if rc == 130:  # Ctrl-C inside the step: main has said "interrupted"; the recipe stops with the same exit
        raise SystemExit(130)
    return rc


def run_steps(recipe: Recipe, variables: dict | None = None, dry_run: bool = False, label: str = "recipe") -> dict:
    """Runs the recipe's unfinished steps in order; returns (and keeps in OUT/recipe.json) the time of each."""
    variables = variables or {}
    out = Path(recipe.out)
    report_path = out / "recipe.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {"steps": {}}
    total = len(recipe.steps)
    for k, step in enumerate(recipe.steps, 1):
        head = f"[{k}/{total}] {step.name}"
        creates = _argv(step.creates, variables)[0] if step.creates else ""
        resume_if = _argv(step.resume_if, variables)[0] if step.resume_if else ""
        if creates and Path(creates).exists():
            print(f"{head}: done ({creates} exists), skipped", flush=True)
            continue
        line = step.resume if resume_if and Path(resume_if).exists() else step.run
        argv = _argv(line, variables)
        print(f"{head}: qimage {shlex.join(argv)}", flush=True)
        if dry_run:
            continue
        t0 = time.perf_counter()
        rc = _call(argv)
        seconds = time.perf_counter() - t0
        if rc != 0:
            raise UserError(f"{label} step {step.name!r} failed (exit {rc}); fix it and run again to continue")
        prev = report["steps"].get(step.name, {}).get("seconds", 0.0)  # an interrupted step's earlier time counts
        report["steps"][step.name] = {"command": shlex.join(argv), "seconds": round(prev + seconds, 1)}
        report["total_seconds"] = round(sum(s["seconds"] for s in report["steps"].values()), 1)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(report_path, report)
        print(f"{head}: finished in {seconds / 60:.1f} min", flush=True)
    return report


def run(name_or_path: str, dry_run: bool = False) -> dict:
    path = find(name_or_path)
    recipe = load(path)
    report = run_steps(recipe, dry_run=dry_run)
    if not dry_run and report["steps"]:
        print(f"recipe {path.stem}: {report.get('total_seconds', 0) / 60:.1f} min of steps in all; "
              f"times in {Path(recipe.out) / 'recipe.json'}")
    return report
