"""Checkpoints: a complete model directory plus a trainer state, each written atomically.

    OUT/model/                      the EMA weights in the model-directory layout (safetensors), usable as is by
                                    `qimage generate`, `qimage eval` and diffusers; written by `write_model_dir`
    OUT/trainer_state.safetensors   everything `--resume` needs: raw weights, EMA, optimiser, LR schedule, RNG,
                                    step (the data position: batches are a pure function of the step)

The trainer state is one safetensors file: the tensors of the nested state (optimiser moments, RNG states, ...) are
stored under their path, and the rest of the structure goes to the file's metadata as JSON with a placeholder for each
tensor. It is written to a temporary name in the same folder and renamed over the old one, so a crash leaves either the
old state or the new one. The state is self-contained; the model directory is written first, so after a crash between
the two the state may be one checkpoint behind the directory, never ahead of it.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

STATE_FILE = "trainer_state.safetensors"


def _flatten(obj, tensors: dict, path: str):
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: _flatten(v, tensors, f"{path}/{k}") for k, v in obj.items()}}
        return {"__items__": [[k, _flatten(v, tensors, f"{path}/{k}")] for k, v in obj.items()]}  # int keys (optimiser)
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_flatten(v, tensors, f"{path}/{i}") for i, v in enumerate(obj)], "tuple": isinstance(obj, tuple)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {path} in a trainer state")


def _unflatten(obj, tensors: dict):
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"].items()}
        if "__items__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__items__"]}
        items = [_unflatten(v, tensors) for v in obj["__list__"]]
        return tuple(items) if obj["tuple"] else items
    return obj


def save_state(path, state: dict) -> Path:
    """Writes a nested dict of tensors and plain values as one safetensors file, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict = {}
    skeleton = _flatten(state, tensors, "s")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"skeleton": json.dumps(skeleton)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_state(path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        skeleton = json.loads(f.metadata()["skeleton"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return _unflatten(skeleton, tensors)


def write_json_atomic(path, data) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
