"""Eval metrics: ground truth scores ~1, wrong images score low; the command writes its JSON and table."""
import json

import numpy as np
import pytest
from PIL import Image

from qimage.cli import main
from qimage.train import eval as ev


@pytest.fixture(scope="module")
def words():
    items = ev.word_items(6)
    assert {it["bg"] for it in items} >= {"white", "black"}  # light and dark backgrounds alike
    assert items[0]["prompt"] == 'On a white background, displaying black text "MILK".'
    return items


def test_ocr_reads_ground_truth_renders_exactly(words):
    images = [ev.render_word(it["word"], it["bg"], it["fg"], (128, 64)) for it in words]
    s = ev.summarise(ev.score_words(images, words), [])
    assert s["ocr_exact"] == 1.0 and s["char_acc"] == 1.0
    assert s["ocr_exact_light_bg"] == 1.0 and s["ocr_exact_dark_bg"] == 1.0


def test_wrong_words_and_noise_score_low(words):
    wrong = [ev.render_word(w, it["bg"], it["fg"], (128, 64)) for w, it in zip(["XQZV", "PLUM", "HJKW", "BRIM", "ZOOT", "GYPS"], words)]
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)) for _ in words]
    for images in (wrong, noise):
        s = ev.summarise(ev.score_words(images, words), [])
        assert s["ocr_exact"] == 0.0 and s["char_acc"] < 0.4


def test_scenes_checker_on_ground_truth_blank_and_mismatched_images():
    samples = ev.scene_samples(24, (128, 64), seed=3)
    images, metas = [s[0] for s in samples], [s[2] for s in samples]
    assert {m["task"] for m in metas} >= {"counting", "position"}
    assert ev.summarise([], ev.score_scenes(images, metas))["scenes"] == 1.0
    blank = [Image.new("RGB", (128, 64), tuple(m["background"]["rgb"])) for m in metas]
    assert ev.summarise([], ev.score_scenes(blank, metas))["scenes"] == 0.0
    shifted = images[1:] + images[:1]
    assert ev.summarise([], ev.score_scenes(shifted, metas))["scenes"] <= 0.25


def test_position_rule_flips_with_a_mirrored_image():
    samples = [s for s in ev.scene_samples(40, (128, 64), seed=4) if s[2]["relation"]
               and s[2]["relation"]["relation"] in ("left of", "right of")]
    assert samples
    for image, _, meta in samples:
        assert ev.score_scene(image, meta)["position_ok"]
        assert not ev.score_scene(image.transpose(Image.FLIP_LEFT_RIGHT), meta)["position_ok"]


def test_eval_command_writes_json_and_table(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "e.json"
    code = main(["eval", "--model", str(tiny_model_dir), "-o", str(out), "--words", "2", "--scenes", "2",
                 "--steps", "2", "--size", "64x64"])
    assert code == 0
    report = json.loads(out.read_text())
    assert len(report["words"]) == 2 and len(report["scenes"]) == 2
    assert set(report["summary"]) >= {"ocr_exact", "char_acc", "scenes"}
    assert "ocr_exact" in capsys.readouterr().out
    assert out.with_suffix(".words.png").is_file()
    # scenes only: no word is generated, no words metric is claimed
    only = tmp_path / "s.json"
    assert main(["eval", "--model", str(tiny_model_dir), "-o", str(only), "--words", "0", "--scenes", "1",
                 "--steps", "2", "--size", "64x64"]) == 0
    report = json.loads(only.read_text())
    assert report["words"] == [] and len(report["scenes"]) == 1
    assert "scenes" in report["summary"] and "ocr_exact" not in report["summary"]
    assert not only.with_suffix(".words.png").exists()


def test_eval_without_a_shipped_model_is_a_user_error(capsys, monkeypatch, tmp_path):
    import qimage.model_dir

    monkeypatch.setattr(qimage.model_dir, "SHIPPED_TOY", tmp_path / "toy")
    assert main(["eval"]) == 2
    assert "no shipped toy" in capsys.readouterr().err


@pytest.mark.parametrize("steps, needle", [("0", "at least 1"), ("1", "at least 2")])
def test_eval_refuses_too_few_steps_before_any_work(tmp_path, tiny_model_dir, capsys, steps, needle):
    out = tmp_path / "e.json"
    assert main(["eval", "--model", str(tiny_model_dir), "-o", str(out), "--steps", steps]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and not out.exists()
