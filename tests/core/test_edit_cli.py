"""`qimage edit` and `qimage init --preset tiny-edit` from the command line: outputs, and one-line errors."""
import json

import numpy as np
import pytest
from PIL import Image

from qimage.cli import main


@pytest.fixture(scope="module")
def edit_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli") / "tiny-edit"
    assert main(["init", str(d), "--preset", "tiny-edit"]) == 0
    s = json.loads((d / "qimage.json").read_text())
    (d / "qimage.json").write_text(json.dumps({**s, "condition_area": 64 * 64, "steps": 2}))  # small, fast
    return d


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    p = tmp_path_factory.mktemp("in") / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 96, 3), dtype=np.uint8)).save(p)
    return p


def test_one_edit_takes_the_inputs_calculated_size(edit_dir, photo, tmp_path):
    out = tmp_path / "o.png"
    assert main(["edit", str(photo), "Make the text red.", "-o", str(out), "--model", str(edit_dir)]) == 0
    assert Image.open(out).size == (96, 32)  # calculate_dimensions(64*64, 2): 90.5 x 45.25 rounded to 32s


def test_instructions_file_and_several_images(edit_dir, photo, tmp_path):
    ins = tmp_path / "ins.txt"
    ins.write_text("Make the text red.\n\nMake the background black.\n")
    second = tmp_path / "b.png"
    Image.open(photo).transpose(Image.FLIP_LEFT_RIGHT).save(second)
    out = tmp_path / "out"
    assert main(["edit", str(photo), str(second), "--instructions-file", str(ins), "-o", str(out),
                 "--model", str(edit_dir), "--seed", "4"]) == 0
    index = json.loads((out / "edits.json").read_text())
    assert [e["instruction"] for e in index] == ["Make the text red.", "Make the background black."]
    assert [e["seed"] for e in index] == [4, 5] and (out / "grid.png").is_file()


def test_same_seed_same_bytes(edit_dir, photo, tmp_path):
    outs = [tmp_path / f"{k}.png" for k in range(2)]
    for o in outs:
        main(["edit", str(photo), "Add a blue square.", "-o", str(o), "--model", str(edit_dir), "--seed", "9"])
    assert outs[0].read_bytes() == outs[1].read_bytes()


@pytest.mark.parametrize("case, expect", [
    ("missing", "input image .*missing.png does not exist"),
    ("garbage", "input image .*garbage.png is not an image PIL can read"),
    ("folder", "input image .* is not a file"),
    ("size", "size 100x64 is not a positive multiple of 16"),
    ("zero", "--size must be positive in both dimensions"),
    ("t2i", "is not an edit model .*QwenImagePipeline"),
    ("no-instruction", "give an input IMAGE and an INSTRUCTION"),
    ("output", "-o .*out.txt should be an image file name"),
    ("steps", "--steps must be at least 1"),
])
def test_bad_input_is_one_line_naming_it(edit_dir, tiny_model_dir, photo, tmp_path, capsys, case, expect):
    import re

    (tmp_path / "garbage.png").write_bytes(b"not a png")
    (tmp_path / "folder.png").mkdir()
    img = {"missing": tmp_path / "missing.png", "garbage": tmp_path / "garbage.png",
           "folder": tmp_path / "folder.png"}.get(case, photo)
    args = ["edit", str(img), "Make the text red.", "-o", str(tmp_path / "o.png"), "--model", str(edit_dir)]
    if case == "size":
        args += ["--size", "100x64"]
    if case == "zero":
        args += ["--size", "0x0"]
    if case == "t2i":
        args[args.index("--model") + 1] = str(tiny_model_dir)
    if case == "no-instruction":
        args = ["edit", str(photo), "-o", str(tmp_path / "o.png"), "--model", str(edit_dir)]
    if case == "output":
        args[args.index("-o") + 1] = str(tmp_path / "out.txt")
    if case == "steps":
        args += ["--steps", "0"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(expect, err), err


def test_init_zero_cond_t_needs_an_edit_preset(tmp_path, capsys):
    assert main(["init", str(tmp_path / "m"), "--preset", "tiny", "--zero-cond-t"]) == 2
    assert "--zero-cond-t is an edit model option" in capsys.readouterr().err
