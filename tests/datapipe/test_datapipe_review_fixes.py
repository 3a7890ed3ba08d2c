"""Regressions from review: recipe params beyond the default YAML, whole-label matching, odd file names,
small sharp images, scenes metadata."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qimage.datapipe import recipe
from qimage.datapipe.filters.watermark import Watermark
from qimage.datapipe.process import display_path, sample_id
from qimage.datapipe.sample import Sample
from qimage.errors import UserError


def test_recipe_may_set_any_declared_filter_param(tmp_path):
    (tmp_path / "r.yaml").write_text("filters:\n  clarity: {max: 5000}\n  luma: {skip_synthetic: true}\n")
    r = recipe.load(tmp_path / "r.yaml")
    assert r["filters"]["clarity"]["max"] == 5000 and r["filters"]["luma"]["skip_synthetic"] is True
    (tmp_path / "bad.yaml").write_text("filters:\n  clarity: {bogus: 1}\n")
    with pytest.raises(UserError, match="filters.clarity.bogus"):
        recipe.load(tmp_path / "bad.yaml")


def test_classifier_labels_match_whole_names():
    f = Watermark(labels=["watermark"])
    f._model = lambda img: {"no_watermark": 0.8, "watermark": 0.2}
    sample = type("S", (), {"work": np.zeros((8, 8, 3), np.uint8)})()
    assert f.measure(sample) == pytest.approx(0.2)


def test_undecodable_file_names_get_stable_ids_and_printable_paths():
    raw = b"\xff\xfe.jpg".decode("utf-8", "surrogateescape")
    assert display_path(raw) == "\\xff\\xfe.jpg"
    assert sample_id(raw) == sample_id(raw) and sample_id(raw) != sample_id("x.jpg")
    display_path(raw).encode("utf-8")  # valid for Parquet


def _sample(arr: np.ndarray, meta: str | None = None) -> Sample:
    import io

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    s = Sample(Path("."), "x.png", buf.getvalue(), None, meta, 10**8)
    s.decode()
    return s


def test_work_view_never_enlarges():
    small = _sample(np.random.default_rng(0).integers(0, 255, (256, 200, 3), dtype=np.uint8))
    assert small.work.shape[:2] == (256, 200)
    big = _sample(np.zeros((1024, 768, 3), np.uint8))
    assert max(big.work.shape[:2]) == 512


def test_scenes_are_synthetic_but_not_text_renders():
    from qimage.datapipe.labels import category
    from qimage.datapipe.ocr import run_ocr

    arr = np.zeros((64, 64, 3), np.uint8)
    scene = _sample(arr, '{"lines": [], "kind": "scenes", "lang": "none", "version": 1}')
    render = _sample(arr, '{"lines": [{"text": "A", "quad": [0, 0, 9, 0, 9, 9, 0, 9]}], "kind": "pure", "version": 1}')
    assert scene.synthetic and not scene.text_render
    assert render.synthetic and render.text_render
    assert run_ocr(scene, {}) == ([], "meta")  # no text, known without running OCR
    scene.ocr, render.ocr = [], run_ocr(render, {})[0]
    cfg = {"text_min_area": 0.01, "portrait_min_face": 0.02}
    assert category(render, "en", cfg) == "text" and category(scene, "none", cfg) != "text"
    # a sidecar is synthetic by one of synth's kinds, not by any "kind" field
    assert not _sample(arr, '{"kind": "photo", "version": 1}').synthetic and _sample(arr, '{"kind": "scenes"}').synthetic


def test_caption_tokens_split_latin_from_chinese():
    from qimage.datapipe.filters.caption_length import count_tokens

    assert count_tokens("abc中文") == 3
    assert count_tokens("A cat, 一只猫!") == 7
