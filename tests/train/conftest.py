"""Shared fixtures for the training tests: tiny synthesised data in both contract-2 forms and a config writer."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# importlib mode: let tests import the helpers next to them (post_helpers)
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def synth_dirs(tmp_path_factory):
    """`qimage synth` folders at 64x64: pure text and scenes (small, so every test stays fast)."""
    from qimage.synth.runner import RunConfig, run

    root = tmp_path_factory.mktemp("synth")
    out = {}
    for kind, n in (("pure", 12), ("scenes", 12)):
        run(RunConfig(kind=kind, n=n, out=str(root / kind), width=64, height=64, seed=1), progress=False)
        out[kind] = root / kind
    return out


@pytest.fixture(scope="session")
def parquet_dir(tmp_path_factory, synth_dirs):
    """A `qimage data run`-shaped output (OUT/kept/*.parquet) holding the pure samples, some resized to 96x48."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    root = tmp_path_factory.mktemp("cleaned")
    (root / "kept").mkdir()
    rows = {k: [] for k in ("id", "path", "image", "width", "height", "caption", "meta")}
    for i, png in enumerate(sorted(synth_dirs["pure"].glob("*.png"))):
        im = Image.open(png).convert("RGB")
        if i % 2:
            im = im.resize((96, 48))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        rows["id"].append(f"id{i:03d}")
        rows["path"].append(png.name)
        rows["image"].append(buf.getvalue())
        rows["width"].append(im.width)
        rows["height"].append(im.height)
        rows["caption"].append(png.with_suffix(".txt").read_text())
        rows["meta"].append(png.with_suffix(".json").read_text())
    pq.write_table(pa.table(rows), root / "kept" / "part-0000.parquet")
    return root


@pytest.fixture
def write_config(tmp_path):
    """Writes a YAML config (a dict) into the test's folder and returns its path."""
    import yaml

    def _write(data: dict, name: str = "config.yaml"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(json.loads(json.dumps(data))))
        return path

    return _write


@pytest.fixture
def pretrain_config(tiny_model_dir):
    """A small two-stage pretraining config (dict) on the tiny model; keyword arguments override top-level keys."""
    return lambda sources, out, **over: _pretrain_config(tiny_model_dir, sources, out, **over)


def _pretrain_config(model_dir, sources: dict, out, **over) -> dict:
    cfg = {
        "out": str(out),
        "seed": 0,
        "model": {"dir": str(model_dir), "init": "adaln-zero"},
        "sources": {k: {"path": str(v)} for k, v in sources.items()},
        "batch_size": 4,
        "optim": {"lr": 1e-3, "warmup_steps": 2},
        "stages": [{"name": "a", "steps": 2, "buckets": ["64x64"]}, {"name": "b", "steps": 3, "resolution": 64}],
        "log": {"every": 1, "checkpoint_every": 100, "sample_every": 0},
    }
    cfg.update(over)
    return cfg


@pytest.fixture(scope="module")
def small_model(tmp_path_factory, tiny_model_dir):
    """The tiny model with its own settings (post-training tests): 32x32 samples (4 image tokens), 4 steps, CFG 4."""
    import shutil

    root = tmp_path_factory.mktemp("post-model") / "tiny"
    shutil.copytree(tiny_model_dir, root)
    (root / "qimage.json").write_text(json.dumps({"width": 32, "height": 32, "steps": 4, "cfg": 4.0}))
    return root


@pytest.fixture
def brightness(tmp_path, monkeypatch):
    """A user reward by module:function: mean brightness (a random tiny model reads no text, so OCR is all 0)."""
    (tmp_path / "toyreward.py").write_text(
        "import numpy as np\n"
        "def brightness(images, items):\n"
        "    return [float(np.asarray(im.convert('L')).mean() / 255) for im in images]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "toyreward:brightness"
