"""Shared fixtures: tiny models created in the test session (no downloads, no weights in the repo); how the suite
shares the machine's cores under pytest-xdist."""
import os

import pytest

# Each xdist worker gets its share of the cores: torch (and OpenMP in the subprocesses tests start) would otherwise
# run one thread per core in every worker, and the workers would slow each other down. Set before torch is imported.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

# Tests that use these fixtures start Ray; so do tests marked `ray` (they start it in a subprocess).
RAY_FIXTURES = {"ray_session", "demo_run"}


def pytest_xdist_auto_num_workers(config):
    """`-n auto` means one worker per core, at most 4: each worker holds torch, diffusers and transformers."""
    return max(1, min(os.cpu_count() or 1, 4))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test that starts Ray runs on the same xdist worker, one after another: the cluster tests count the
    machine's Ray processes, and two Ray instances at once would also fight over the two cores' object stores."""
    for item in items:
        if item.get_closest_marker("ray") or RAY_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.xdist_group("ray"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A complete `qimage init --preset tiny` directory, written once per session."""
    from qimage.quiet import quiet_libraries
    from qimage.model_dir import init_model_dir

    quiet_libraries()
    return init_model_dir(tmp_path_factory.mktemp("models") / "tiny", "tiny", seed=0)
