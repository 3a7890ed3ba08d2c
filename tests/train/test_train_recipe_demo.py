"""`qimage train recipe` (steps skipped once done, the failing step named) and `qimage demo` end to end on a tiny model."""
import html
import json

import pytest

from qimage.cli import main


def _write(path, text):
    path.write_text(text)
    return path


def test_recipe_runs_steps_skips_finished_ones_and_names_the_failure(tmp_path, capsys):
    rec = _write(tmp_path / "r.yaml", f"""
out: {tmp_path}/run
steps:
  - {{name: init, run: synth words -n 1 -o {tmp_path}/w --size 128x64, creates: {tmp_path}/w/manifest.json}}
  - {{name: bad, run: synth words -n 0 -o {tmp_path}/x}}
""")  # synth's steps: the runner is under test, and synth starts in a second where a model command takes ten
    assert main(["train", "recipe", str(rec)]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("qimage:")]  # the rest is synth's progress bar
    assert errors == ["qimage: error: -n 0: the number of samples must be positive",  # the step's own line
                      "qimage: error: recipe step 'bad' failed (exit 2); fix it and run again to continue"], errors
    times = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert set(times["steps"]) == {"init"} and times["steps"]["init"]["command"].startswith("synth words -n 1")
    assert main(["train", "recipe", str(rec)]) == 2
    assert "[1/2] init: done" in capsys.readouterr().out


@pytest.mark.parametrize("text, needle", [
    ("steps: []", "`steps` is empty"),
    ("steps: [{name: a, run: x, creats: y}]", "unknown key 'steps[0].creats'"),
    ("steps: [{name: a}]", "needs `name` and `run`"),
    ("steps: [{name: a, run: x, resume: y}]", "needs both `resume` and `resume_if`"),
])
def test_bad_recipes_are_one_line_errors(tmp_path, capsys, text, needle):
    assert main(["train", "recipe", str(_write(tmp_path / "r.yaml", text))]) == 2
    assert needle in capsys.readouterr().err


def test_generate_defaults_to_the_shipped_toy(tmp_path, monkeypatch, capsys, tiny_model_dir):
    import qimage.model_dir

    monkeypatch.setattr(qimage.model_dir, "SHIPPED_TOY", tiny_model_dir)
    assert main(["generate", "a red kite", "-o", str(tmp_path / "k.png"), "--steps", "2", "--size", "32x32"]) == 0
    assert (tmp_path / "k.png").is_file()
    monkeypatch.setattr(qimage.model_dir, "SHIPPED_TOY", tmp_path / "none")
    capsys.readouterr()
    assert main(["generate", "a red kite", "-o", str(tmp_path / "k.png")]) == 2
    assert capsys.readouterr().err.strip() == "qimage: error: no shipped toy model in this install; pass --model DIR"


@pytest.mark.slow
def test_demo_end_to_end_on_a_tiny_model(tmp_path, tiny_model_dir):
    from qimage.train import demo

    out = tmp_path / "demo"
    report = demo.run(out, model=tiny_model_dir, steps=2, n_words=12, n_scenes=6, eval_words=2, eval_scenes=2)
    page = report.read_text()
    data = json.loads((out / "data" / "clean" / "report.json").read_text())
    counts = data["counts"]
    assert counts["conserved"] and counts["inputs"] == counts["kept"] + counts["rejected"]
    assert counts["kept"] >= 12  # the renders pass the demo's data recipe
    rejected = {f["name"] for st in data["stages_detail"] for f in st["filters"] if f.get("rejected")}
    assert {"broken_file", "duplicate", "invalid_caption"} <= rejected  # the planted bad inputs
    for path in ("finetune/model/model_index.json", "finetune/loss.png", "samples/before/grid.png",
                 "samples/after/grid.png", "eval/before.json", "eval/after.json"):
        assert (out / path).is_file(), path
        if path.endswith(".png"):
            assert path in page
    for step in demo.recipe(out, tiny_model_dir, 1, 1, 1, 1).steps:
        assert step.name in page and step.what and step.what in html.unescape(page)
    assert "shipped toy" in page and "fine-tuned" in page


def test_recipe_variables_with_spaces_stay_one_argument():
    from qimage.train.recipe import _argv

    assert _argv("data run {out}/raw -o {out}/clean", {"out": "/tmp/my demo"}) == \
        ["data", "run", "/tmp/my demo/raw", "-o", "/tmp/my demo/clean"]


def test_an_interrupted_step_stops_the_recipe_as_interrupted(tmp_path, monkeypatch):
    """Ctrl-C inside a step (the step's main returns 130) ends the recipe with exit 130, not as a failed step; a
    step that calls sys.exit with a message fails with it."""
    import qimage.cli
    from qimage.train.recipe import Recipe, Step, run_steps

    rec = Recipe(out=str(tmp_path / "run"), steps=[Step("a", "synth words -n 1")])
    monkeypatch.setattr(qimage.cli, "main", lambda argv: 130)
    with pytest.raises(SystemExit) as e:
        run_steps(rec)
    assert e.value.code == 130

    def exits(argv):
        raise SystemExit("no GPU here")

    monkeypatch.setattr(qimage.cli, "main", exits)
    from qimage.errors import UserError

    with pytest.raises(UserError, match=r"step 'a' failed \(exit 1\)"):
        run_steps(rec)
