"""The docs cannot rot: docs/api.md's examples run as written, and no doc cites a file, link or preset that is not there."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXAMPLES = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)


def test_the_api_doc_has_examples():
    assert len(EXAMPLES) == 5


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example-{k}" for k in range(len(EXAMPLES))])
def test_api_examples_run_as_written(code, tmp_path):
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def _links(text: str) -> list[str]:
    """Relative targets of markdown links and images (no URLs, no in-page anchors)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_relative_link_exists(doc):
    missing = [t for t in _links(doc.read_text()) if not (doc.parent / t).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} links to files that are not there: {missing}"


def _tracked_folders() -> list[str]:
    """The repository's own top-level folders: what git tracks, not what a run left in the checkout (e.g. `out/`)."""
    r = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:  # not a git checkout (an unpacked sdist): every visible folder
        return [p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted({f.split("/")[0] for f in r.stdout.splitlines() if "/" in f and not f.startswith(".")})


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_cited_repository_path_exists(doc):
    """Paths written in backticks that start with one of the repository's folders, e.g. `train/recipes/toy.yaml`."""
    tops = "|".join(_tracked_folders())
    cited = re.findall(rf"`((?:{tops})/[\w./-]+)`", doc.read_text())
    missing = [c for c in cited if "*" not in c and "<" not in c and not (ROOT / c).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} cites paths that are not in the repository: {missing}"


def test_every_preset_the_docs_name_exists():
    from qimage.presets import PRESETS

    named = {m for d in DOCS for m in re.findall(r"--preset ([a-z][\w-]*)", d.read_text())}
    assert named and named <= set(PRESETS), named - set(PRESETS)
