"""The repository's own promises: CI runs the README's test command, and the namespace mapping holds."""
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert len(blocks) >= 2, "README must open with two set-up commands"
    test_cmd = blocks[1].split("&&")[-1].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmd in ci_lines


def test_namespaced_packages_resolve_to_top_level_folders():
    for name, folder in [("qimage.synth", "synth"), ("qimage.datapipe", "datapipe"), ("qimage.train", "train")]:
        mod = importlib.import_module(name)
        assert Path(mod.__file__).resolve().parent == ROOT / folder


def test_shipped_toys_are_package_data_and_no_glob_is_dangling():
    """Every file of the shipped toys matches a package-data glob of the qimage package (a wheel would otherwise ship
    a model directory without its weights), and each of those globs matches a file."""
    import tomllib

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["qimage"]
    pkg = ROOT / "qimage"
    matched = {g: {p for p in pkg.glob(g) if p.is_file()} for g in globs}
    assert all(matched.values()), [g for g, m in matched.items() if not m]
    shipped = {p for toy in ("toy", "toy-edit") for p in (pkg / toy).rglob("*") if p.is_file()}
    assert shipped and shipped <= set().union(*matched.values()), sorted(shipped - set().union(*matched.values()))


def test_every_package_wide_glob_matches_a_file_of_some_package():
    """The "*" globs apply in every package folder (one with __init__.py); a glob that matches in none is dangling."""
    import tomllib

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    folders = [p.parent for top in ("qimage", "synth", "datapipe", "train") for p in (ROOT / top).rglob("__init__.py")]
    dangling = [g for g in globs if not any(p.is_file() for f in folders for p in f.glob(g))]
    assert globs and not dangling, dangling
