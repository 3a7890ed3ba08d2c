"""nsfw's default detector (nudenet's bundled ONNX model): clean images pass, the score is the max confidence of the
listed classes, it is on by default in `qimage data run`, and it is skipped when disabled or when nudenet is missing.

Measured with nudenet 3.4.2 / onnxruntime 1.32 (the bounds below carry their margins):
  astronaut, coffee, chelsea, a flat grey image, a black-on-white text render: score 0.0 each (no box of a listed
  class; nudenet reports boxes of confidence >= 0.2 only). Bound: <= 0.25, half of max 0.5.
  astronaut's face: FACE_FEMALE 0.720 (an unlisted class, so it does not count). Bound: > 0.5, which shows the
  detector sees the picture (in the channel order of a file read from disk) and not a blank.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import skimage.data as skd

from qimage.cli import main
from qimage.datapipe.demo import draw_text
from qimage.datapipe.filters import load_all
from qimage.datapipe.filters import nsfw as nsfw_mod
from qimage.datapipe.process import Plan
from qimage.datapipe.recipe import load as load_recipe
from qimage.errors import UserError
from datapipe_helpers import encode, sample

REG = load_all()
nudenet = pytest.importorskip("nudenet")  # a dependency in pyproject.toml; the skip only guards a partial install

CLEAN = {
    "astronaut": lambda: skd.astronaut(),
    "coffee": lambda: skd.coffee(),
    "chelsea": lambda: skd.chelsea(),
    "flat": lambda: np.full((384, 512, 3), 128, np.uint8),
    "text_render": lambda: draw_text(np.full((512, 768, 3), 255, np.uint8), [("Qwen-Image 通义", 40, 200, 80)]),
}


@pytest.fixture(scope="module")
def nsfw():
    f = REG["nsfw"]()
    assert f.setup() is None
    return f


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_images_score_low_and_are_kept(nsfw, name):
    v = nsfw(sample(CLEAN[name]()))
    assert v.keep, v.reason
    assert 0.0 <= v.score <= 0.25  # measured 0.0 on each


def test_the_detector_sees_the_image_as_if_read_from_a_file(nsfw, tmp_path):
    s = sample(skd.astronaut())
    path = tmp_path / "work.png"
    path.write_bytes(encode(s.work))
    fake_calls = []
    real = nsfw._detector

    class Spy:
        def detect(self, img):
            fake_calls.append(img)
            return real.detect(img)

    nsfw._detector = Spy()
    try:
        assert nsfw.measure(s) == 0.0
    finally:
        nsfw._detector = real
    (arr,) = fake_calls
    assert arr.dtype == np.uint8 and arr.shape == s.work.shape
    from_file = real.detect(str(path))  # nudenet's documented input: a path, read by cv2.imread (BGR)
    assert real.detect(arr) == from_file
    faces = [d["score"] for d in from_file if d["class"] == "FACE_FEMALE"]
    assert faces and max(faces) == pytest.approx(0.720, abs=0.02)  # measured 0.720; margin for onnxruntime builds


class FakeDetector:
    def __init__(self, detections):
        self.detections = detections
        self.seen = []

    def detect(self, img):
        self.seen.append(img)
        return self.detections


def det(cls, score):
    return {"class": cls, "score": score, "box": [0, 0, 10, 10]}


@pytest.fixture
def fake(monkeypatch):
    """nsfw with a detector returning what the test sets (setup goes through the module's detector())."""
    holder = FakeDetector([])
    monkeypatch.setattr(nsfw_mod, "detector", lambda: holder)

    def make(detections, **cfg):
        holder.detections = detections
        f = REG["nsfw"](**cfg)
        assert f.setup() is None
        return f

    return make


def test_score_is_the_max_confidence_of_the_listed_classes(fake):
    f = fake([det("FACE_FEMALE", 0.97), det("MALE_BREAST_EXPOSED", 0.9), det("BUTTOCKS_EXPOSED", 0.62),
              det("FEMALE_BREAST_EXPOSED", 0.81), det("FEET_EXPOSED", 0.88)])
    v = f(sample(skd.coffee()))
    assert v.score == pytest.approx(0.81)
    assert not v.keep
    assert "FEMALE_BREAST_EXPOSED" in v.reason and "> max 0.5" in v.reason


def test_unlisted_classes_never_count(fake):
    f = fake([det("FACE_FEMALE", 0.99), det("FEMALE_BREAST_COVERED", 0.95), det("BELLY_EXPOSED", 0.9)])
    v = f(sample(skd.coffee()))
    assert v.keep and v.score == 0.0


def test_at_or_below_max_is_kept_and_the_recipe_sets_max_and_classes(fake):
    s = sample(skd.coffee())
    assert fake([det("BUTTOCKS_EXPOSED", 0.5)])(s).keep  # keep when score <= max
    v = fake([det("BUTTOCKS_EXPOSED", 0.45)], max=0.4)(s)
    assert not v.keep and v.score == pytest.approx(0.45) and "BUTTOCKS_EXPOSED" in v.reason
    v = fake([det("FACE_FEMALE", 0.97), det("ANUS_EXPOSED", 0.3)], classes=["FACE_FEMALE"])(s)
    assert not v.keep and v.score == pytest.approx(0.97) and "FACE_FEMALE" in v.reason


def test_detector_gets_the_work_image_in_bgr(fake):
    f = fake([])
    s = sample(skd.astronaut())
    f(s)
    (img,) = f._detector.seen
    assert np.array_equal(img, cv2.cvtColor(s.work, cv2.COLOR_RGB2BGR))


def test_recipe_classes_are_checked_and_the_list_matches_nudenet():
    assert set(nsfw_mod.NUDENET_CLASSES) == set(getattr(nudenet.nudenet, "__labels"))
    assert set(nsfw_mod.EXPLICIT) <= set(nsfw_mod.NUDENET_CLASSES)
    with pytest.raises(UserError, match="BREAST_EXPOSD"):
        REG["nsfw"](classes=["FEMALE_BREAST_EXPOSD"]).check()


def _plan(**nsfw_cfg):
    recipe = load_recipe()
    recipe["filters"]["nsfw"].update(nsfw_cfg)
    return Plan(recipe, stages=(1,))


def test_default_recipe_runs_it_and_disabled_skips_it():
    plan = _plan()
    assert "nsfw" in {f.name for f in plan.filters}
    assert not [w for w in plan.warnings if w.startswith("nsfw")]
    off = _plan(enabled=False)
    assert "nsfw" not in {f.name for f in off.filters} and not off.warnings


def test_missing_nudenet_or_model_dir_is_skipped_with_a_warning(monkeypatch, tmp_path):
    # a model dir set: the classifier path, never a silent fall-back to nudenet
    plan = _plan(model=str(tmp_path / "nowhere"))
    assert "nsfw" not in {f.name for f in plan.filters}
    assert [w for w in plan.warnings if w.startswith("nsfw skipped") and "config.json" in w]
    real = nsfw_mod.importlib.util.find_spec
    monkeypatch.setattr(nsfw_mod.importlib.util, "find_spec", lambda n, *a: None if n == "nudenet" else real(n, *a))
    f = REG["nsfw"]()
    problem = f.setup()
    assert problem and problem.startswith("nsfw skipped") and "nudenet" in problem
    plan = _plan()
    assert "nsfw" not in {f.name for f in plan.filters}


def test_qimage_data_run_scores_nsfw_without_a_skip_warning(tmp_path, ray_session, capsys):
    root = tmp_path / "in"
    root.mkdir()
    for name, img in [("astronaut", skd.astronaut()), ("coffee", skd.coffee()), ("chelsea", skd.chelsea())]:
        (root / f"{name}.jpg").write_bytes(encode(img, "JPEG", quality=92))
    out = tmp_path / "out"
    # stages 1-3: nsfw is stage 1, and the unconfigured model filter of stage 3 (clip_similarity) must still warn
    assert main(["data", "run", str(root), "-o", str(out), "--stages", "1-3"]) == 0  # the command, in this process
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "clip_similarity skipped" in text
    assert "nsfw" not in text
    rep = json.loads((out / "report.json").read_text())
    assert not [w for w in rep["warnings"] if "nsfw" in w]
    (f,) = [f for s in rep["stages_detail"] for f in s["filters"] if f["name"] == "nsfw"]
    assert f["status"] == "on" and f["scored"] == 3 and f["rejected"] == 0
