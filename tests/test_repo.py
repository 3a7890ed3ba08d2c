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
