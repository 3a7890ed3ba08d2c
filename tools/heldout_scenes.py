"""Chooses the held-out scenes combinations of `qimage eval` (writes synth/heldout_scenes.txt).

    python tools/heldout_scenes.py > qimage_heldout.txt      (then review and move it over synth/heldout_scenes.txt)

A combination (``scenes.combo_key``: task, objects with counts, relation; no language, background or placement) is a
candidate when it appears in none of the scenes any built-in recipe trains on: every ``synth scenes`` step of
train/recipes/*.yaml and the demo's scenes (their seeds, sizes, scales and layouts, read from the commands). Counting
and single-object combinations cannot be held out from the shipped toy (its 16,000 training scenes show 273 of the
275 counting and all 55 single-object combinations), so the eval holds out the three compositional tasks: two
objects, a position relation, two counted groups. Candidates are drawn from a stream no recipe uses (seed
1,000,003) at the toy's 128x64, 16 per task, interleaved so that any prefix of the list is balanced.
"""
from __future__ import annotations

import sys

TASKS = ("two_object", "position", "counting_two")
PER_TASK = 16
SEED = 1_000_003


def training_keys() -> set[str]:
    from qimage.synth import scenes
    from qimage.synth.runner import context
    from qimage.synth.sample import rng_for

    keys = set()
    for cfg in recipe_scene_configs():
        ctx = context(cfg)
        for i in range(cfg.n):
            p = scenes.plan(ctx, rng_for(cfg.seed, i), cfg.lang)
            keys.add(scenes.combo_key(p.task, p.objects, p.relation))
    return keys


def recipe_scene_configs():
    """RunConfig of every `synth scenes` step that a built-in recipe or the demo runs."""
    import argparse
    import shlex

    from qimage.synth import cli
    from qimage.synth.runner import RunConfig
    from qimage.train import demo, recipe

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    lines = [s.run for path in sorted(recipe.RECIPES.glob("*.yaml")) if recipe.is_recipe(path)
             for s in recipe.load(path).steps]
    lines += [s.run.format(out="OUT", seed=0, model="MODEL", edit_model="EDIT_MODEL") for s in demo.recipe("OUT", "MODEL", 192, 64, 16, 8).steps]
    out = []
    for line in lines:
        argv = shlex.split(line)
        if argv[:2] != ["synth", "scenes"]:
            continue
        a = parser.parse_args(argv)
        w, h = (int(v) for v in a.size.split("x"))
        out.append(RunConfig(kind="scenes", n=int(a.n), out=".", lang=a.lang, width=w, height=h, seed=int(a.seed),
                             scale=float(a.scale), layout=a.layout))
    return out


def choose(seen: set[str]) -> list[str]:
    from qimage.synth import scenes
    from qimage.synth.runner import RunConfig, context
    from qimage.synth.sample import rng_for

    ctx = context(RunConfig(kind="scenes", n=1, out=".", width=128, height=64, scale=2.0, layout="rows"))
    picked = {t: [] for t in TASKS}
    i = 0
    while any(len(v) < PER_TASK for v in picked.values()):
        p = scenes.plan(ctx, rng_for(SEED, i), "en")
        i += 1
        key = scenes.combo_key(p.task, p.objects, p.relation)
        if p.task in picked and key not in seen and key not in picked[p.task] and len(picked[p.task]) < PER_TASK:
            picked[p.task].append(key)
    return [picked[t][k] for k in range(PER_TASK) for t in TASKS]


if __name__ == "__main__":
    from qimage.synth import scenes

    scenes.heldout = lambda: ()  # draw the streams as they were before any combination was held out
    sys.stdout.write("\n".join(choose(training_keys())) + "\n")
