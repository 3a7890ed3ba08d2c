"""Rewards: Flow-GRPO's OCR formula by hand, the fast reader on ground truth, scenes credit, weighting, guards."""
import numpy as np
import pytest
from PIL import Image

from qimage.errors import UserError
from qimage.train import eval as ev
from qimage.train import rewards


@pytest.mark.parametrize("read, target, want", [
    ("ABCD", "ABCD", 1.0),
    ("xx abcd yy", "ABCD", 1.0),  # the target inside the read text counts as read
    ("ABCE", "ABCD", 0.75),  # one substitution of four
    ("AB", "ABCD", 0.5),  # two deletions
    ("QQQQQQQQ", "ABCD", 0.0),  # distance capped at the target's length
    ("", "ABCD", 0.0),
])
def test_ocr_score_is_flow_grpos_formula(read, target, want):
    assert rewards.ocr_score(read, target) == pytest.approx(want)


def test_quoted_text():
    assert rewards.quoted('On a white background, displaying black text "MILK".') == "MILK"
    assert rewards.quoted("no quotes here") is None and rewards.quoted('empty ""') is None


def test_fast_reader_scores_ground_truth_one_and_wrong_words_low():
    items = [{**it, "text": it["word"]} for it in ev.word_items(16)]
    truth = [ev.render_word(it["word"], it["bg"], it["fg"], (128, 64)) for it in items]
    assert rewards.ocr(truth, items) == [1.0] * 16
    wrong = [ev.render_word("XQZV", it["bg"], it["fg"], (128, 64)) for it in items]
    assert max(rewards.ocr(wrong, items)) <= 0.25  # at most one letter of four in common by chance


def test_ink_crop_finds_the_text_box():
    im = Image.new("RGB", (128, 64), (255, 255, 255))
    im.paste((0, 0, 0), (40, 20, 90, 40))
    crop = rewards.ink_crop(im)
    pad = round(0.1 * 64)
    assert crop.shape[:2] == (20 + 2 * pad, 50 + 2 * pad)
    blank = rewards.ink_crop(Image.new("RGB", (128, 64), (9, 9, 9)))
    assert blank.shape[:2] == (64, 128)  # nothing stands out: the whole image


def test_scenes_reward_gives_partial_credit():
    samples = ev.scene_samples(6, (128, 64), seed=0)
    images, items = [s[0] for s in samples], [{"meta": s[2]} for s in samples]
    assert rewards.scenes(images, items) == [1.0] * 6
    blank = [Image.new("RGB", (128, 64), tuple(s[2]["background"]["rgb"])) for s in samples]
    got = rewards.scenes(blank, items)
    # no blobs: no count credit, no judged shapes; the position rule fails too
    assert got == [0.0] * 6


def test_weighted_reward_averages_the_rewards_that_apply():
    items = [{"text": "ABCD", "meta": None}, {"text": None, "meta": ev.scene_samples(1, (128, 64))[0][2]}]
    images = [ev.render_word("ABCD", "white", "black", (128, 64)), ev.scene_samples(1, (128, 64))[0][0]]
    assert rewards.resolve("weighted", {"ocr": 2.0, "scenes": 1.0})(images, items) == [1.0, 1.0]
    with pytest.raises(UserError, match="unknown reward 'clip'"):
        rewards.resolve("weighted", {"clip": 1.0})
    with pytest.raises(UserError, match="neither quoted text nor a scenes answer key"):
        rewards.resolve("weighted", {"ocr": 1.0})(images[:1], [{"text": None, "meta": None}])


def test_user_rewards_by_module_path_and_their_errors():
    assert rewards.resolve("numpy:mean") is np.mean
    with pytest.raises(UserError, match="cannot import"):
        rewards.resolve("no_such_module_xyz:f")
    with pytest.raises(UserError, match="is not callable"):
        rewards.resolve("numpy:pi")


def test_guards_count_dark_and_blank_images():
    black = Image.new("RGB", (16, 16), (0, 0, 0))
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    g = rewards.guards([black, noise])
    assert g["blank_frac"] == 0.5
    assert 0.5 <= g["dark_frac"] <= 0.56  # the black image, plus ~10% of the noise image's pixels
