"""The scores of `qimage eval --edit` (train/edit_eval.py): what the goals of the edit toy are measured with."""
import numpy as np
import pytest
from PIL import Image

from qimage.synth import scenes, words
from qimage.train.edit_eval import WORDS_FACE, asked_color, nearest_color, score_pair


def _asked_by_instruction(meta: dict) -> str:
    kind = meta["type"]
    if kind in ("recolor_text", "recolor_background", "recolor_object"):
        return meta["new"]
    return {"add_object": meta.get("color"), "remove_object": meta.get("background")}[kind]


@pytest.fixture(scope="module")
def colour_pairs():
    pairs = words.eval_edit_pairs(48, 0, faces=WORDS_FACE) + scenes.eval_edit_pairs(24, 0)
    return [p for p in pairs if p["meta"]["type"] != "replace_text"]


def test_the_asked_colour_is_the_instructions_colour(colour_pairs):
    # the mean over every changed pixel named light green for "Make the text light gray." on navy (glyph rims)
    assert len(colour_pairs) >= 40
    for p in colour_pairs:
        rgb, core = asked_color(p)
        assert nearest_color(rgb) == _asked_by_instruction(p["meta"]), p["instruction"]
        src, tgt = (np.asarray(p[k].convert("RGB")) for k in ("source", "target"))
        shows = np.any(src != tgt, axis=-1) & np.all(tgt == rgb, axis=-1)
        assert core.any() and not (core & ~shows).any(), p["instruction"]  # only changed pixels in the asked colour


def test_the_target_scores_right_and_the_unedited_source_wrong(colour_pairs):
    for p in colour_pairs[:24]:
        right = score_pair(p["target"], p)
        assert right["color_right"] == 1.0 and right["psnr_untouched"] == 99.0, p["instruction"]
        if p["meta"]["type"] != "remove_object":  # the source still shows the old colour there
            assert score_pair(p["source"], p)["color_right"] == 0.0, p["instruction"]


def test_colour_is_judged_on_the_glyph_not_its_rim():
    """A text drawn in the asked colour only on its 1-px rim, with the old colour inside, is not the asked colour."""
    from scipy.ndimage import binary_erosion

    p = next(q for q in words.eval_edit_pairs(48, 0, faces=WORDS_FACE) if q["meta"]["type"] == "recolor_text")
    src, tgt = np.asarray(p["source"].convert("RGB")), np.asarray(p["target"].convert("RGB"))
    rgb, _ = asked_color(p, erode=0)
    glyph = np.all(tgt == rgb, axis=-1)
    rim = glyph & ~binary_erosion(glyph)
    fake = src.copy()
    fake[rim] = rgb
    assert score_pair(Image.fromarray(fake), p)["color_right"] == 0.0
    assert score_pair(p["target"], p)["color_right"] == 1.0


def test_a_colour_edit_reports_its_offset_and_a_shifted_one_is_measured():
    p = next(q for q in scenes.eval_edit_pairs(12, 0) if q["meta"]["type"] == "recolor_object")
    assert score_pair(p["target"], p)["shift_px"] < 0.05
    moved = Image.fromarray(np.roll(np.asarray(p["target"]), 2, axis=1))
    assert abs(score_pair(moved, p)["shift_px"] - 2.0) < 0.1


def test_the_report_gives_each_edit_type_the_ceiling_and_a_grid(tmp_path, capsys):
    import json

    from qimage.train.edit_eval import run

    run(output=str(tmp_path / "eval.json"), pairs=3, steps=2)
    report = json.loads((tmp_path / "eval.json").read_text())
    summary = report["summary"]
    assert set(summary["by_type"]) == {"replace_text", "recolor_text", "recolor_background"}
    assert summary["pairs"] == 3 and summary["vae_ceiling"]["pairs"] == 3
    assert summary["vae_ceiling"]["word_exact"] == 1.0  # a round trip of the target reads back its new word
    assert Image.open(tmp_path / "eval.edits.png").size[1] >= 3 * 64
    assert "VAE ceiling" in capsys.readouterr().out
