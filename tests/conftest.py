"""Shared fixtures: tiny models created in the test session (no downloads, no weights in the repo)."""
import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A complete `qimage init --preset tiny` directory, written once per session."""
    from qimage.quiet import quiet_libraries
    from qimage.model_dir import init_model_dir

    quiet_libraries()
    return init_model_dir(tmp_path_factory.mktemp("models") / "tiny", "tiny", seed=0)
