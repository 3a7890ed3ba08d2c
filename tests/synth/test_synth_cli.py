"""The command: bad input is one line on stderr and exit status 2; good input writes a sample folder."""
import json
import subprocess
import sys

import pytest

from qimage.errors import UserError


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "qimage", "synth", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.parametrize("args", [
    ["pure", "-n", "0", "-o", "{tmp}/o"],
    ["pure", "-n", "-3", "-o", "{tmp}/o"],
    ["pure", "-n", "many", "-o", "{tmp}/o"],
    ["pure", "-n", "2", "-o", "{tmp}/o", "--size", "512"],
    ["pure", "-n", "2", "-o", "{tmp}/o", "--size", "10x10"],
    ["pure", "-n", "2", "-o", "{tmp}/file.txt/o"],
    ["pure", "-n", "2", "-o", "{tmp}/o", "--fonts", "{tmp}/nofonts"],
    ["pure", "-n", "2", "-o", "{tmp}/o", "--fonts", "{tmp}/empty"],
    ["compose", "-n", "2", "-o", "{tmp}/o", "--backgrounds", "{tmp}/empty"],
    ["poster", "-n", "2", "-o", "{tmp}/o"],
    ["pure", "-n", "2", "-o", "{tmp}/o", "--lang", "fr"],
    ["pure", "-n", "2", "-o", "{tmp}/o", "--workers", "0"],
    ["words", "-n", "2", "-o", "{tmp}/o", "--faces", "Comic Sans"],
    ["words", "-n", "2", "-o", "{tmp}/o", "--faces", " , "],
    ["pure", "-n", "2", "-o", "{tmp}/o", "--lang", "zh", "--faces", "Arimo 700"],
    ["words", "-n", "2", "-o", "{tmp}/o", "--pairs", "white/mauve"],
    ["words", "-n", "2", "-o", "{tmp}/o", "--pairs", "white"],
    ["words", "-n", "2", "-o", "{tmp}/o", "--pairs", "black/black"],
    ["scenes", "-n", "2", "-o", "{tmp}/o", "--pairs", "white/black"],
    ["scenes", "-n", "2", "-o", "{tmp}/o", "--scale", "3"],
    ["scenes", "-n", "2", "-o", "{tmp}/o", "--scale", "nan"],
    ["scenes", "-n", "2", "-o", "{tmp}/o", "--scale", "big"],
    ["words", "-n", "2", "-o", "{tmp}/o", "--scale", "2"],
    ["scenes", "-n", "2", "-o", "{tmp}/o", "--layout", "grid"],
    ["words", "-n", "2", "-o", "{tmp}/o", "--layout", "rows"],
    ["pure", "-n", "2"],
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    r = _run(*[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("qimage: error: "), r.stderr
    assert "Traceback" not in r.stderr


def test_good_run_writes_samples_and_manifest(tmp_path):
    out = tmp_path / "out"
    r = _run("scenes", "-n", "3", "-o", str(out), "--size", "96x80", "--seed", "5", "--edit-pairs")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == 3 and manifest["config"]["width"] == 96
    for e in manifest["samples"]:
        for key in ("image", "caption", "meta", "edit"):
            assert (out / e[key]).is_file()


def test_compose_refuses_canvases_too_small_for_legible_media(tmp_path):
    from qimage.synth.runner import RunConfig, validate

    with pytest.raises(UserError, match="at least 128x128"):
        validate(RunConfig(kind="compose", n=1, out=str(tmp_path), lang="en", width=64, height=64, seed=0,
                           workers=1, fonts=None, backgrounds=None, edit_pairs=False))
