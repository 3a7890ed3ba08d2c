"""The model-based filters (nsfw, watermark, aesthetic, clip_similarity) on tiny seeded models made here.

A random model has no opinion, so the tests check what the pipeline owns (the weights are the user's): each filter's
score is what transformers itself computes for the same local model and pixels (its image-classification pipeline,
CLIP's own feature methods), and the filter's decision flips exactly at its threshold, on either side of that score.
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
EPS = 1e-4  # the threshold's distance from the score: far above float noise (the scores agree within 1e-6)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"nsfw": tiny_classifier(root / "nsfw", ["normal", "nsfw"]),
            "watermark": tiny_classifier(root / "wm", ["clean", "watermark"]),
            "aesthetic": tiny_classifier(root / "aes", ["score"]),
            "clip_similarity": tiny_clip(root / "clip")}


def _images():
    return [sample(skd.astronaut()), sample(skd.coffee()[:, ::-1].copy())]


def _reference_score(path, rgb: np.ndarray, label: str | None) -> float:
    """transformers' own image-classification pipeline on the same pixels: a label's softmax probability, or the
    raw output of a one-output head."""
    from PIL import Image
    from transformers import pipeline

    clf = pipeline("image-classification", model=str(path), function_to_apply="none", top_k=None, device="cpu")
    logits = {r["label"]: r["score"] for r in clf(Image.fromarray(rgb))}
    if label is None:
        (value,) = logits.values()
        return value
    z = np.array(list(logits.values()), dtype=np.float64)
    return float(np.exp(logits[label] - z.max()) / np.exp(z - z.max()).sum())


def _decides_at(make, s, score: float, bound: str) -> None:
    """Just inside the threshold keeps the sample, just past it rejects it."""
    inside, past = (score + EPS, score - EPS) if bound == "max" else (score - EPS, score + EPS)
    other = "min" if bound == "max" else "max"
    for value, keep in ((inside, True), (past, False)):
        f = make(**{bound: value, other: None})
        f.setup()
        assert f(s).keep is keep, (bound, value, score)


@pytest.mark.parametrize("name,label,bound", [("nsfw", "nsfw", "max"), ("watermark", "watermark", "max"),
                                              ("aesthetic", None, "min")])
def test_classifier_filters_score_the_models_label_and_split_at_the_threshold(model_dirs, name, label, bound):
    probe = REG[name](model=str(model_dirs[name]), labels=[label] if label else [])
    assert probe.setup() is None
    scores = []
    for s in _images():
        expected = _reference_score(model_dirs[name], s.work, label)
        assert probe.measure(s) == pytest.approx(expected, abs=1e-6)
        _decides_at(lambda **kw: REG[name](model=str(model_dirs[name]), **kw), s, expected, bound)
        scores.append(expected)
    assert abs(scores[0] - scores[1]) > 10 * EPS  # two images, two scores: the model reads its input


def _reference_cosine(path, rgb: np.ndarray, text: str) -> float:
    import torch
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    model = CLIPModel.from_pretrained(path).eval()
    toks = AutoTokenizer.from_pretrained(path)([text], return_tensors="pt", padding="max_length", max_length=16)
    pixels = CLIPImageProcessor.from_pretrained(path)(images=rgb, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        img = model.vision_model(pixel_values=pixels).pooler_output @ model.visual_projection.weight.T
        txt = model.text_model(input_ids=toks["input_ids"], attention_mask=toks["attention_mask"]).pooler_output
        txt = txt @ model.text_projection.weight.T
    return float((img @ txt.T)[0, 0] / (img.norm() * txt.norm()))


def test_clip_similarity_is_the_clip_cosine_split_at_min_and_ignores_other_sources(model_dirs):
    path = model_dirs["clip_similarity"]
    f = REG["clip_similarity"](model=str(path))
    f.setup()
    img = skd.astronaut()
    scores = []
    for caption in ("a photo of a cat", "the red car"):
        s = sample(img, caption=caption)
        expected = _reference_cosine(path, s.work, caption)
        assert f.measure(s) == pytest.approx(expected, abs=1e-6)
        _decides_at(lambda **kw: REG["clip_similarity"](model=str(path), **kw), s, expected, "min")
        scores.append(expected)
    assert abs(scores[0] - scores[1]) > 10 * EPS
    recap = sample(img, caption="the red car", meta={"caption_source": "recaptioned"})
    assert np.isnan(f.measure(recap)) and f(recap).keep
    assert f(sample(img)).keep  # no caption: nothing to compare


def test_unconfigured_model_filters_are_skipped_with_a_warning():
    # nsfw is not among them: with model null it runs nudenet's bundled detector (test_datapipe_nsfw.py)
    plan = Plan(load_recipe())
    names = {f.name for f in plan.filters}
    assert not names & {"watermark", "aesthetic", "clip_similarity"}
    assert sorted(w.split()[0] for w in plan.warnings) == ["aesthetic", "clip_similarity", "watermark"]
