"""Every shipped recipe is a valid config (strict keys, checked values) and ships as package data."""
from pathlib import Path

import pytest

import qimage.train
from qimage.train.config import PretrainConfig, VaeConfig, load

RECIPES = sorted((Path(qimage.train.__file__).parent / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_loads(path):
    cfg = load(VaeConfig if "vae" in path.name else PretrainConfig, path)
    assert cfg.sources


def test_recipes_exist():
    assert {p.name for p in RECIPES} >= {"toy-vae.yaml", "toy-pretrain.yaml"}
