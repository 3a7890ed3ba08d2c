"""Every shipped recipe is valid: stage configs (strict keys, checked values) and the step lists that chain them."""
import shlex
from pathlib import Path

import pytest

import qimage.train
from qimage.train import recipe as recipe_mod
from qimage.train.config import DpoConfig, GrpoConfig, PretrainConfig, VaeConfig, check_post, load, read_yaml

RECIPES = sorted((Path(qimage.train.__file__).parent / "recipes").glob("*.yaml"))
STEP_LISTS = [p for p in RECIPES if recipe_mod.is_recipe(p)]
CONFIGS = [p for p in RECIPES if p not in STEP_LISTS]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_stage_config_loads(path):
    post = {"grpo": GrpoConfig, "dpo": DpoConfig}
    kind = next((k for k in post if f"-{k}-" in path.name), None)
    if kind:
        cfg = read_yaml(post[kind], path)
        check_post(cfg)
        assert cfg.steps > 0
        return
    from qimage.train.edit import EditConfig

    cls = VaeConfig if "vae" in path.name else EditConfig if "-edit-" in path.name else PretrainConfig
    cfg = load(cls, path)
    assert cfg.sources


@pytest.mark.parametrize("path", STEP_LISTS, ids=[p.name for p in STEP_LISTS])
def test_step_list_names_existing_configs_and_commands(path):
    from qimage.cli import build_parser

    parser = build_parser()
    rec = recipe_mod.load(path)
    for step in rec.steps:
        argv = recipe_mod._argv(step.run, {})
        parser.parse_args(argv)  # every step is a valid qimage command line (SystemExit otherwise)
        if "--config" in argv:
            assert Path(argv[argv.index("--config") + 1]).is_file()


def test_recipes_exist():
    assert {p.name for p in CONFIGS} >= {"toy-vae.yaml", "toy-vae-decoder.yaml", "toy-pretrain.yaml"}
    assert [p.name for p in STEP_LISTS] == ["toy-dpo.yaml", "toy-edit.yaml", "toy-grpo.yaml", "toy.yaml"]
    assert recipe_mod.find("toy") == recipe_mod.RECIPES / "toy.yaml"
