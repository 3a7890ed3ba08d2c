"""Resume after a kill, refusal to mix runs, and the CLI's one-line errors (through `python -m qimage`)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from qimage.datapipe.demo import build

def env() -> dict:
    # read at call time: ray.init puts the session's auth token into this process's environment
    return {**os.environ, "PYTHONWARNINGS": "ignore"}


def qimage(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "qimage", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env())


def _paths(out, sub):
    return [r["path"] for p in sorted((out / sub).glob("*.parquet")) for r in pq.read_table(p, columns=["path"]).to_pylist()]


def test_a_killed_run_resumes_without_recomputing_duplicating_or_losing(tmp_path, ray_session):
    root = tmp_path / "in"
    expected = build(root)
    out = tmp_path / "out"
    recipe = tmp_path / "r.yaml"
    recipe.write_text("run: {shard_size: 3, task_cpus: 1.0}\n")
    # stages 1-3 keep OCR and face detection out of it: resume is about work units, and this keeps the test short
    args = [sys.executable, "-m", "qimage", "data", "run", root, "-o", out, "--recipe", recipe, "--stages", "1-3", "-q"]
    proc = subprocess.Popen(list(map(str, args)), env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shards = out / "_work" / "shards"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(shards.glob("*.parquet"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started, mid-run
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in shards.glob("*.parquet")}
    n_shards = -(-len(expected) // 3)
    assert 2 <= len(done) < n_shards, "the kill must land mid-run for this test to mean anything"
    assert not (out / "report.json").exists()

    from qimage.cli import main

    assert main([str(a) for a in args[3:]]) == 0  # the same command again, in this process (its Ray is up already)
    after = {p.name: p.stat().st_mtime_ns for p in shards.glob("*.parquet")}
    assert all(after[name] == mtime for name, mtime in done.items())  # finished shards were not recomputed
    assert len(after) == n_shards
    paths = _paths(out, "kept") + _paths(out, "rejected")
    assert sorted(paths) == sorted(expected)  # no duplicates, no losses
    assert not list(shards.glob(".*.tmp"))


def test_restart_with_another_recipe_is_refused_then_overwritten(demo, ray_session, tmp_path):
    from qimage.datapipe.pipeline import run
    from qimage.errors import UserError

    root, expected = demo
    out = tmp_path / "out"
    quiet = dict(progress=False, log=lambda m: None)
    first = run(root, out, stages="1", **quiet)
    assert first["counts"]["kept"] + first["counts"]["rejected"] == len(expected)
    with pytest.raises(UserError, match="different stages"):
        run(root, out, stages="1-2", **quiet)
    second = run(root, out, stages="1-2", overwrite=True, **quiet)
    assert second["counts"]["rejected"] > first["counts"]["rejected"]
    assert sorted(_paths(out, "kept") + _paths(out, "rejected")) == sorted(expected)


@pytest.mark.parametrize("make_args,needle", [
    (lambda t: ["data", "run", t / "missing", "-o", t / "o"], "input folder not found"),
    (lambda t: ["data", "run", t, "-o", t / "o", "--stages", "3-1"], "--stages"),
    (lambda t: ["data", "run", t, "-o", t / "o", "--stages", "x"], "--stages"),
    (lambda t: ["data", "run", t, "-o", t / "o", "--recipe", t / "nope.yaml"], "recipe file not found"),
    (lambda t: ["data", "run", t, "-o", t / "o", "--recipe", _recipe(t, "filters: {clarty: {min: 3}}")], "'filters.clarty' (did you mean 'clarity'?)"),
    (lambda t: ["data", "run", t, "-o", t / "o", "--recipe", _recipe(t, "filters: {clarity: {minimum: 3}}")], "filters.clarity.minimum"),
    (lambda t: ["data", "run", t, "-o", t / "o", "--recipe", _recipe(t, "filters: {clarity: {min: fast}}")], "filters.clarity.min"),
    (lambda t: ["data", "run", t, "-o", t / "o", "--recipe", _recipe(t, "filters: {luma: {min: 0.9, max: 0.1}}")], "min 0.9 > max 0.1"),
    (lambda t: ["data", "run", t, "-o", t / "o", "--recipe", _recipe(t, "run: [1, 2")], "not valid YAML"),
    (lambda t: ["data", "run", t / "empty", "-o", t / "o"], "no files"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, make_args, needle):
    (tmp_path / "empty").mkdir()
    r = qimage(*make_args(tmp_path), timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("qimage: error:"), r.stderr


def _recipe(t: Path, text: str) -> Path:
    p = t / "recipe.yaml"
    p.write_text(text)
    return p


def test_recipe_command_prints_the_default_and_checks_a_file(tmp_path):
    import yaml

    from qimage.datapipe.recipe import DEFAULT_PATH

    r = qimage("data", "recipe")
    assert r.returncode == 0 and yaml.safe_load(r.stdout) == yaml.safe_load(DEFAULT_PATH.read_text())
    r = qimage("data", "recipe", "--check", _recipe(tmp_path, "filters: {clarity: {min: 50}}"))
    assert r.returncode == 0 and yaml.safe_load(r.stdout)["filters"]["clarity"]["min"] == 50


def test_the_same_command_joins_a_running_ray_cluster(ray_session, tmp_path):
    """--address: the CLI, in its own process, joins the suite's Ray (standing in for a cluster) instead of starting
    one, and its tasks run there."""
    root = tmp_path / "in"
    build(root)
    address = ray_session.get_runtime_context().gcs_address
    r = qimage("data", "run", root, "-o", tmp_path / "out", "--address", address, "--stages", "1", "-q")
    assert r.returncode == 0, r.stderr
    assert "Started a local Ray instance" not in r.stderr
    assert (tmp_path / "out" / "report.json").exists()
    assert "kept" in r.stdout
