"""The model-based filters (nsfw, watermark, aesthetic, clip_similarity) on tiny random models made here.

A random model has no opinion, so each test measures two inputs and puts the threshold between their scores: the
filter must then keep one and reject the other, in the direction its threshold says. That checks loading from a
local dir, the label lookup and the decision, which is what the pipeline owns (the weights are the user's).
"""
from __future__ import annotations

import numpy as np
import pytest
import skimage.data as skd

from qimage.datapipe.filters import load_all
from qimage.datapipe.process import Plan
from qimage.datapipe.recipe import load as load_recipe
from datapipe_tiny_models import tiny_classifier, tiny_clip
from datapipe_helpers import sample

REG = load_all()


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"nsfw": tiny_classifier(root / "nsfw", ["normal", "nsfw"]),
            "watermark": tiny_classifier(root / "wm", ["clean", "watermark"]),
            "aesthetic": tiny_classifier(root / "aes", ["score"]),
            "clip_similarity": tiny_clip(root / "clip")}


def _pair():
    a = sample(skd.astronaut())
    b = sample(skd.coffee()[:, ::-1].copy())
    return a, b


@pytest.mark.parametrize("name,bound", [("nsfw", "max"), ("watermark", "max"), ("aesthetic", "min")])
def test_classifier_filters_split_at_the_threshold(model_dirs, name, bound):
    probe = REG[name](model=str(model_dirs[name]))
    assert probe.setup() is None
    a, b = _pair()
    sa, sb = probe.measure(a), probe.measure(b)
    assert sa != sb and all(np.isfinite([sa, sb]))
    if name != "aesthetic":
        assert 0.0 <= sa <= 1.0
    mid = (sa + sb) / 2
    f = REG[name](model=str(model_dirs[name]), **{bound: mid, ("min" if bound == "max" else "max"): None})
    f.setup()
    hi, lo = (a, b) if sa > sb else (b, a)
    keeps_high = bound == "min"
    assert f(hi).keep is keeps_high and f(lo).keep is not keeps_high


def test_clip_similarity_splits_captions_and_ignores_other_sources(model_dirs):
    f = REG["clip_similarity"](model=str(model_dirs["clip_similarity"]))
    f.setup()
    img = skd.astronaut()
    s1, s2 = sample(img, caption="a photo of a cat"), sample(img, caption="the red car")
    v1, v2 = f.measure(s1), f.measure(s2)
    assert v1 != v2 and -1.0 <= v1 <= 1.0
    f.cfg["min"] = (v1 + v2) / 2
    assert f(s1).keep != f(s2).keep
    recap = sample(img, caption="the red car", meta={"caption_source": "recaptioned"})
    assert np.isnan(f.measure(recap)) and f(recap).keep
    assert f(sample(img)).keep  # no caption: nothing to compare


def test_unconfigured_model_filters_are_skipped_with_a_warning():
    # nsfw is not among them: with model null it runs nudenet's bundled detector (test_datapipe_nsfw.py)
    plan = Plan(load_recipe())
    names = {f.name for f in plan.filters}
    assert not names & {"watermark", "aesthetic", "clip_similarity"}
    assert sorted(w.split()[0] for w in plan.warnings) == ["aesthetic", "clip_similarity", "watermark"]
