"""Shared fixtures: one Ray session for the whole suite (Ray start-up is the slow part), one demo folder and one
full pipeline run over it that several tests inspect."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# importlib mode: let tests import the helpers next to them (named datapipe_* so that no other test folder's
# helper module of the same name can shadow them in sys.modules)
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def ray_session():
    import ray

    # a command run in this process (a recipe step, `main(["data", "run", ...])`) may have started Ray already:
    # reuse it, as the pipeline does
    if not ray.is_initialized():
        # address="local": a new instance, never one another test process started (a plain init would join it)
        ray.init(address="local", num_cpus=2, object_store_memory=128 << 20, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    from qimage.datapipe.demo import build

    root = tmp_path_factory.mktemp("demo")
    return root, build(root)


@pytest.fixture(scope="session")
def demo_run(demo, ray_session, tmp_path_factory):
    from qimage.datapipe.pipeline import run

    root, expected = demo
    out = tmp_path_factory.mktemp("demo_out")
    recipe = out.parent / "small_shards.yaml"
    recipe.write_text("run: {shard_size: 8}\n")  # several shards, so the global dedup crosses shard borders
    report = run(root, out, recipe_path=recipe, progress=False, log=lambda m: None)
    return root, expected, out, report, recipe
