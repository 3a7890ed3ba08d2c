"""A training run in its directory, as every trainer runs it: refuse to clobber a run, build the trainer on every
process, resume it, record the config, fit, and write the finished marker (``done.json``) a recipe step waits for
(an interrupted run has a checkpoint but no marker).

A trainer is anything with ``resume()`` and ``fit(stop_at, max_minutes) -> {"step", "stopped", ...}``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from qimage.errors import UserError

from . import distributed
from .checkpoint import STATE_FILE, write_json_atomic


def run(make_trainer, cfg, out=None, resume: bool = False, overwrite: bool | None = None, stop_at: int | None = None,
        progress: bool = True, max_minutes: float | None = None) -> dict:
    """``make_trainer(cfg, root, world, device, progress)`` trained in ``out`` (default ``cfg.out``); ``overwrite``
    None: the command has no --overwrite."""
    import yaml

    world, device = distributed.init(cfg.device)
    try:
        root = Path(out or cfg.out)
        if world.main:
            root.mkdir(parents=True, exist_ok=True)
            if not resume and not overwrite and (root / STATE_FILE).exists():
                instead = "--overwrite to start over" if overwrite is not None else "choose another --out"
                raise UserError(f"{root} already holds a run; pass --resume to continue it or {instead}")
        distributed.barrier(world)
        trainer = make_trainer(cfg, root, world, device, progress)
        if resume:
            trainer.resume()
        if world.main:
            (root / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
        result = trainer.fit(stop_at, max_minutes)
        if world.main and not result["stopped"]:
            write_json_atomic(root / "done.json", {"step": result["step"]})
        return result
    finally:
        distributed.shutdown(world)
