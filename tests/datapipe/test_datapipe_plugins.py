"""Third-party filters: a module the recipe names in `plugins` registers an operator that the real pipeline runs
(in its Ray workers too), and a plugin that cannot be imported is a one-line error naming it."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

PLUGIN = '''
from qimage.datapipe.filters import RangeFilter, register


@register
class RedShare(RangeFilter):
    """Share of pixels whose red channel dominates."""
    name = "red_share"
    stage = 2
    what = "red share"
    params = {"min": None, "max": 0.5}

    def measure(self, sample) -> float:
        r, g, b = (sample.rgb[..., k].astype(int) for k in range(3))
        return float(((r > g + 40) & (r > b + 40)).mean())
'''


def _run(tmp_path, recipe: str):
    (tmp_path / "plugin").mkdir(exist_ok=True)
    (tmp_path / "plugin" / "myfilters.py").write_text(PLUGIN)
    (tmp_path / "r.yaml").write_text(recipe)
    # the module must import on every Ray worker: PYTHONPATH reaches them, as an installed package would
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(tmp_path / "plugin")}
    return subprocess.run([sys.executable, "-m", "qimage", "data", "run", tmp_path / "in", "-o", tmp_path / "out",
                           "--recipe", tmp_path / "r.yaml", "--stages", "1-2", "-q"],
                          capture_output=True, text=True, timeout=300, env=env)


def test_a_recipe_plugin_filter_rejects_through_the_pipeline(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    for k in range(4):
        img = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)  # textured, passes stage 2's quality filters
        if k % 2:
            img[..., 0], img[..., 1:] = 230, img[..., 1:] // 4  # red
        Image.fromarray(img).save(tmp_path / "in" / f"im{k}.png")
    r = _run(tmp_path, "plugins: [myfilters]\nfilters: {red_share: {max: 0.5}, entropy: {enabled: false},"
                       " texture: {enabled: false}, saturation: {enabled: false}}\n")
    assert r.returncode == 0, r.stderr
    rows = [x for p in (tmp_path / "out" / "rejected").glob("*.parquet") for x in pq.read_table(p).to_pylist()]
    assert sorted(x["path"] for x in rows) == ["im1.png", "im3.png"]
    assert all(x["filter"] == "red_share" and x["reasons"][0].startswith("red_share: red share 1 > max 0.5")
               for x in rows), rows


def test_a_plugin_that_cannot_be_imported_is_one_line_naming_it(tmp_path, capsys):
    from qimage.cli import main

    (tmp_path / "in").mkdir()
    Image.new("RGB", (300, 300)).save(tmp_path / "in" / "a.png")
    args = ["data", "run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--recipe", str(tmp_path / "r.yaml"), "-q"]
    (tmp_path / "r.yaml").write_text("plugins: [no_such_filters]\n")
    assert main(args) == 2  # in this process: the recipe is refused before any Ray starts
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "recipe: plugins: cannot import 'no_such_filters' (ModuleNotFoundError" in lines[0], lines
    (tmp_path / "r.yaml").write_text("plugins: myfilters\n")
    assert main(args) == 2
    assert "recipe: plugins: expected a list of module names, got 'myfilters'" in capsys.readouterr().err
