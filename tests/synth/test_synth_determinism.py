"""Same seed, same bytes, whatever the worker count; different seeds, different samples."""
import hashlib
from pathlib import Path

import pytest

from qimage.synth.runner import FULL_KINDS, KINDS, RunConfig, run


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_bytes_for_one_and_two_workers(tmp_path, kind):
    full = kind in FULL_KINDS
    common = dict(kind=kind, n=4, lang="mix" if full else "en", width=160, height=160, seed=7, edit_pairs=full)
    a = run(RunConfig(out=str(tmp_path / "a"), workers=1, **common), progress=False)
    b = run(RunConfig(out=str(tmp_path / "b"), workers=2, **common), progress=False)
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a == b
    assert len(da) == 4 * (6 if full else 3) + 1  # 3 files per sample and per edit target, plus the manifest
    assert da == db


def test_different_seeds_differ(tmp_path):
    common = dict(kind="pure", n=3, width=128, height=128)
    run(RunConfig(out=str(tmp_path / "a"), seed=1, **common), progress=False)
    run(RunConfig(out=str(tmp_path / "b"), seed=2, **common), progress=False)
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert all(da[k] != db[k] for k in da if k.endswith(".png"))
