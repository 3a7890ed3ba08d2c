"""The command: bad input is one line on stderr and exit status 2; good input writes a sample folder."""
import json
import subprocess
import sys

import pytest

from qimage.errors import UserError


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "qimage", "synth", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.parametrize("args,needle", [
    (["pure", "-n", "0", "-o", "{tmp}/o"], '-n 0: the number of samples must be positive'),
    (["pure", "-n", "-3", "-o", "{tmp}/o"], '-n -3: the number of samples must be positive'),
    (["pure", "-n", "many", "-o", "{tmp}/o"], "-n 'many': expected an integer"),
    (["pure", "-n", "2", "-o", "{tmp}/o", "--size", "512"], "--size '512': expected WxH"),
    (["pure", "-n", "2", "-o", "{tmp}/o", "--size", "10x10"], '--size 10x10: width and height must be between 64 and 4096'),
    (["pure", "-n", "2", "-o", "{tmp}/file.txt/o"], 'file.txt/o: cannot write there'),
    (["pure", "-n", "2", "-o", "{tmp}/o", "--fonts", "{tmp}/nofonts"], 'nofonts: not a directory'),
    (["pure", "-n", "2", "-o", "{tmp}/o", "--fonts", "{tmp}/empty"], 'no loadable .ttf/.otf/.ttc font found'),
    (["compose", "-n", "2", "-o", "{tmp}/o", "--backgrounds", "{tmp}/empty"], 'no .jpg/.png/.webp/.bmp image found'),
    (["poster", "-n", "2", "-o", "{tmp}/o"], "unknown kind 'poster'"),
    (["pure", "-n", "2", "-o", "{tmp}/o", "--lang", "fr"], "--lang 'fr': choose one of en, zh, mix"),
    (["pure", "-n", "2", "-o", "{tmp}/o", "--workers", "0"], '--workers 0: must be >= 1'),
    (["words", "-n", "2", "-o", "{tmp}/o", "--faces", "Comic Sans"], "unknown face 'Comic Sans'"),
    (["words", "-n", "2", "-o", "{tmp}/o", "--faces", " , "], "--faces ' , ': names no face"),
    (["pure", "-n", "2", "-o", "{tmp}/o", "--lang", "zh", "--faces", "Arimo 700"], "--faces 'Arimo 700': no such face draws --lang zh text"),
    (["words", "-n", "2", "-o", "{tmp}/o", "--pairs", "white/mauve"], "unknown colour 'mauve'"),
    (["words", "-n", "2", "-o", "{tmp}/o", "--pairs", "white"], "--pairs 'white': expected BACKGROUND/TEXT colour pairs"),
    (["words", "-n", "2", "-o", "{tmp}/o", "--pairs", "black/black"], "'black/black' draws text in its background's colour"),
    (["scenes", "-n", "2", "-o", "{tmp}/o", "--pairs", "white/black"], '--pairs chooses the colours of words'),
    (["scenes", "-n", "2", "-o", "{tmp}/o", "--scale", "3"], '--scale 3.0: must be between 0.25 and 2'),
    (["scenes", "-n", "2", "-o", "{tmp}/o", "--scale", "nan"], '--scale nan: must be between 0.25 and 2'),
    (["scenes", "-n", "2", "-o", "{tmp}/o", "--scale", "big"], "--scale 'big': expected a number"),
    (["words", "-n", "2", "-o", "{tmp}/o", "--scale", "2"], '--scale sizes the objects of scenes'),
    (["scenes", "-n", "2", "-o", "{tmp}/o", "--layout", "grid"], "--layout 'grid': choose one of random, rows"),
    (["words", "-n", "2", "-o", "{tmp}/o", "--layout", "rows"], '--layout places the objects of scenes'),
    (["pure", "-n", "2"], '-o DIR is required'),
])
def test_bad_input_is_one_line_naming_the_problem(tmp_path, args, needle):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    r = _run(*[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("qimage: error: ") and needle in lines[0], r.stderr
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
