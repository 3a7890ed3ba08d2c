"""The CLI: bad input is one line and a non-zero exit; a prompts file reproduces single-prompt generation.

Bad-input cases call `main` in this process (`cli`): the same code path as the console script, without paying a
fresh interpreter's imports per case; one case per command goes through `python -m qimage` to cover the entry point.
"""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def qimage(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "qimage", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def cli(capsys, *args):
    """`main(args)` in this process, returned like subprocess.run's result (argparse errors exit with 2)."""
    from qimage.cli import main

    capsys.readouterr()
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out.out, out.err)


def assert_one_line_error(res, needle):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    errors = [ln for ln in lines if "error" in ln.lower()]
    assert errors == lines[-1:] and lines[-1].startswith("qimage: error:") and needle in lines[-1], res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--size", "65x64"], "multiple of 16"),
        (["--size", "big"], "--size"),
        (["--size", "0x0"], "positive"),  # was silently the model's default size
        (["--size", "16x0"], "positive"),
        (["--steps", "0"], "--steps"),
        (["--steps", "1"], "at least 2"),  # shift_terminal: one step would give NaN sigmas
    ],
)
def test_bad_generate_arguments(tiny_model_dir, tmp_path, capsys, args, needle):
    assert_one_line_error(cli(capsys, "generate", "x", "--model", tiny_model_dir, "-o", tmp_path / "o.png", *args), needle)


def test_bad_model_directories(tmp_path, capsys):
    assert_one_line_error(qimage("generate", "x", "--model", tmp_path / "missing", "-o", tmp_path / "o.png"), "does not exist")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model_index.json").write_text("{")
    assert_one_line_error(cli(capsys, "generate", "x", "--model", bad, "-o", tmp_path / "o.png"), "not valid JSON")
    (bad / "model_index.json").write_text("{}")
    assert_one_line_error(cli(capsys, "generate", "x", "--model", bad, "-o", tmp_path / "o.png"), "missing transformer")


def test_unreadable_prompts_file(tiny_model_dir, tmp_path, capsys):
    res = cli(capsys, "generate", "--prompts-file", tmp_path / "nope.txt", "--model", tiny_model_dir, "-o", tmp_path)
    assert_one_line_error(res, "cannot read prompts file")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\xfa")
    res = cli(capsys, "generate", "--prompts-file", tmp_path / "bin.txt", "--model", tiny_model_dir, "-o", tmp_path)
    assert_one_line_error(res, "cannot read prompts file")


def test_init_refuses_a_non_empty_directory_and_unknown_presets(tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    assert_one_line_error(qimage("init", tmp_path / "full"), "not empty")
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    assert_one_line_error(cli(capsys, "init", tmp_path / "new", "--preset", "huge"), "unknown preset")
    (tmp_path / "file").write_text("keep me too")
    assert_one_line_error(cli(capsys, "init", tmp_path / "file"), "is a file, not a directory")  # was an internal error
    assert (tmp_path / "file").read_text() == "keep me too"


def test_prompts_file_image_k_equals_single_prompt_with_seed_plus_k(tiny_model_dir, tmp_path):
    (tmp_path / "prompts.txt").write_text('a red circle\nOn a white background, displaying black text "QWEN".\n\n')
    common = ["--model", tiny_model_dir, "--steps", "2", "--size", "64x64", "--seed", "10"]
    res = qimage("generate", "--prompts-file", tmp_path / "prompts.txt", "-o", tmp_path / "out", *common, "--batch-size", "2")
    assert res.returncode == 0, res.stderr
    index = json.loads((tmp_path / "out" / "prompts.json").read_text())
    assert [e["seed"] for e in index] == [10, 11] and (tmp_path / "out" / "grid.png").is_file()
    single = ["--model", tiny_model_dir, "--steps", "2", "--size", "64x64", "--seed", "11"]
    res = qimage("generate", index[1]["prompt"], "-o", tmp_path / "one.png", *single)
    assert res.returncode == 0, res.stderr
    a = np.asarray(Image.open(tmp_path / "out" / "0001.png"), dtype=int)
    b = np.asarray(Image.open(tmp_path / "one.png"), dtype=int)
    assert np.abs(a - b).max() <= 1  # batched with another prompt or alone: the same image


def test_init_toy_loads_in_diffusers_and_gives_the_same_image(tmp_path):
    import torch
    from diffusers import QwenImagePipeline

    res = qimage("init", tmp_path / "toy", "--preset", "toy", "--seed", "3")
    assert res.returncode == 0, res.stderr
    settings = json.loads((tmp_path / "toy" / "qimage.json").read_text())
    assert (settings["width"], settings["height"]) == (128, 64)
    res = qimage("generate", "a red kite", "--model", tmp_path / "toy", "-o", tmp_path / "q.png", "--steps", "2",
                 "--cfg", "2", "--seed", "4")
    assert res.returncode == 0, res.stderr
    pipe = QwenImagePipeline.from_pretrained(tmp_path / "toy")
    pipe.set_progress_bar_config(disable=True)
    ref = pipe("a red kite", negative_prompt=" ", true_cfg_scale=2.0, width=128, height=64, num_inference_steps=2,
               generator=torch.Generator().manual_seed(4)).images[0]
    ours = np.asarray(Image.open(tmp_path / "q.png"), dtype=float)
    assert ours.shape == (64, 128, 3) and np.abs(ours - np.asarray(ref, dtype=float)).mean() <= 2
