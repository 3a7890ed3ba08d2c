"""Shared fixtures: tiny models created in the test session (no downloads, no weights in the repo); how the suite
shares the machine's cores under pytest-xdist."""
import os

import pytest

# Each xdist worker gets its share of the cores: torch (and OpenMP in the subprocesses tests start) would otherwise
# run one thread per core in every worker, and the workers would slow each other down. Set before torch is imported.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))



def pytest_xdist_auto_num_workers(config):
    """`-n auto` means one worker per core, at most 4: each worker holds torch, diffusers and transformers."""
    return max(1, min(os.cpu_count() or 1, 4))


def pytest_collection_modifyitems(config, items):
    """Heavy files first (a `slow` test, or Ray in this process): `--dist loadfile` hands out whole files in this
    order, so the longest ones start at once on separate workers instead of ending the run on one."""
    heavy = {item.path for item in items if item.get_closest_marker("slow") or "ray_session" in item.fixturenames}
    items.sort(key=lambda item: item.path not in heavy)  # stable: a file's tests stay together, in their order


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A complete `qimage init --preset tiny` directory, written once per session."""
    from qimage.quiet import quiet_libraries
    from qimage.model_dir import init_model_dir

    quiet_libraries()
    return init_model_dir(tmp_path_factory.mktemp("models") / "tiny", "tiny", seed=0)
