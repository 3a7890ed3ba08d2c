"""Metadata follows docs/contracts.md; quads lie inside the image and enclose the ink they label."""
import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from qimage.synth import complex as complex_
from qimage.synth import compose, pure
from qimage.synth.runner import FULL_KINDS, KINDS, RunConfig, run
from qimage.synth.sample import rng_for


@pytest.mark.parametrize("kind, lang", [(k, lang) for k in KINDS for lang in ("en", "zh") if k in FULL_KINDS or lang == "en"])
def test_metadata_schema(tmp_path, kind, lang):
    run(RunConfig(kind=kind, n=3, out=str(tmp_path), lang=lang, width=192, height=160, seed=3), progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["count"] == 3 and [e["id"] for e in manifest["samples"]] == [f"{kind}_{i:06d}" for i in range(3)]
    for e in manifest["samples"]:
        meta = json.loads((tmp_path / e["meta"]).read_text())
        caption = (tmp_path / e["caption"]).read_text().strip()
        img = Image.open(tmp_path / e["image"])
        assert img.size == (192, 160) and img.mode == "RGB"
        assert caption and meta["kind"] == kind and isinstance(meta["font"], str)
        assert meta["lang"] in (("none",) if kind == "scenes" else ("en", "zh", "mix"))
        assert isinstance(meta["lines"], list)
        if kind == "scenes":
            assert meta["lines"] == [] and meta["objects"]
            continue
        assert meta["lines"] and meta["font"]
        for line in meta["lines"]:
            assert isinstance(line["text"], str) and line["text"].strip()
            q = np.asarray(line["quad"], float)
            assert q.shape == (4, 2)
            assert (q[:, 0] >= 0).all() and (q[:, 0] <= 191).all() and (q[:, 1] >= 0).all() and (q[:, 1] <= 159).all()
            # clockwise from top-left: positive signed area in image coordinates
            x, y = q[:, 0], q[:, 1]
            assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0
        if kind in ("pure", "compose"):  # the caption quotes the rendered text verbatim
            sep = "" if meta["lang"] == "zh" else " "
            assert sep.join(ln["text"] for ln in meta["lines"]) in caption


def _ink(a: np.ndarray, b: np.ndarray, thr: int = 24) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).max(-1) > thr


@pytest.mark.parametrize("lang", ["en", "zh", "mix"])
def test_pure_quads_enclose_all_ink(make_ctx, quad_mask, lang):
    ctx = make_ctx(256, 256)
    for i in range(6):
        s = pure.make(ctx, rng_for(21, i), lang)
        img = np.asarray(s.image)
        ink = _ink(img, np.array(s.meta["background"]["rgb"])[None, None])
        assert ink.sum() > 20
        assert not (ink & ~quad_mask([ln["quad"] for ln in s.meta["lines"]], img.shape)).any()
        for ln in s.meta["lines"]:  # and no quad is empty
            assert (ink & quad_mask([ln["quad"]], img.shape)).sum() > 5


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_compose_quads_follow_curvature_and_homography(make_ctx, quad_mask, lang):
    """Render each plan with and without its text: every changed pixel lies inside the written quads."""
    ctx = make_ctx(256, 256)
    for i in range(5):
        p = compose.plan(ctx, rng_for(5, i), lang)
        with_text = np.asarray(compose.render(ctx, p))
        without = np.asarray(compose.render(ctx, replace(p, block=replace(p.block, lines=[]))))
        ink = _ink(with_text, without, 12)
        quads = compose.line_quads(p)
        assert ink.sum() > 20
        assert not (ink & ~quad_mask(quads, with_text.shape, grow=1)).any()
        # and the quads are tight: most of each quad's area is near ink, not empty medium
        for q in quads:
            m = quad_mask([q], with_text.shape)
            assert (ink & m).sum() > 0.05 * m.sum()


def test_complex_quads_enclose_each_box_ink(make_ctx, quad_mask):
    ctx = make_ctx(256, 256)
    for i in range(6):
        p = complex_.plan(ctx, rng_for(8, i), ["en", "zh"][i % 2])
        full = np.asarray(complex_.render(ctx, p))
        for k, fl in enumerate(p.fills):
            if fl.block is None or fl.spec.get("marker"):
                continue
            fills = list(p.fills)
            fills[k] = replace(fl, block=None)
            ink = _ink(full, np.asarray(complex_.render(ctx, replace(p, fills=fills))), 12)
            x0, y0 = p.frame[:2]
            quads = [[[x + x0, y + y0] for x, y in ln.quad()] for ln in fl.block.lines]
            assert ink.any() and not (ink & ~quad_mask(quads, full.shape, grow=1)).any()


def test_compose_uses_user_background_photos(tmp_path):
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(2):
        Image.fromarray(rng.integers(0, 255, size=(300, 400, 3), dtype=np.uint8)).save(photos / f"p{k}.jpg")
    out = tmp_path / "out"
    run(RunConfig(kind="compose", n=6, out=str(out), width=192, height=192, seed=2, backgrounds=str(photos)),
        progress=False)
    kinds = []
    for k in range(6):
        meta = json.loads((out / f"compose_{k:06d}.json").read_text())
        kinds.append(meta["background"]["type"])
        if meta["background"]["type"] == "photo":
            assert meta["background"]["path"].startswith(str(photos)) and meta["scene"] == "a real-world scene"
    assert kinds.count("photo") >= 3
