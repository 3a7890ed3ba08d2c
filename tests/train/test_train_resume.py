"""Checkpoints: an interrupted and resumed run continues exactly; what a save writes is a loadable model directory."""
import csv

import pytest
import torch

from qimage.train.checkpoint import STATE_FILE, load_state
from qimage.train.config import PretrainConfig, from_dict
from qimage.train.pretrain import run


def _losses(out):
    with open(out / "log.csv", newline="") as f:
        return [(int(r["step"]), r["loss"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("fused", [False, True], ids=["adamw", "fused-adamw"])  # the toy recipe trains fused
def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path, synth_dirs, pretrain_config, fused):
    sources = {"text": synth_dirs["pure"], "shapes": synth_dirs["scenes"]}
    optim = {"lr": 1e-3, "warmup_steps": 2, "fused": fused}
    straight = from_dict(PretrainConfig, pretrain_config(sources, tmp_path / "a", caption_dropout=0.3, optim=optim))
    run(straight, progress=False)

    cfg = from_dict(PretrainConfig, pretrain_config(sources, tmp_path / "b", caption_dropout=0.3, optim=optim))
    first = run(cfg, stop_at=3, progress=False)  # interrupted inside the second stage
    assert first["stopped"] and first["step"] == 3
    second = run(cfg, resume=True, progress=False)
    assert second["step"] == 5 and len(second["losses"]) == 2

    a, b = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert [s for s, _ in a] == [1, 2, 3, 4, 5]
    assert a == b  # the same loss curve, printed digits and all
    sa, sb = load_state(tmp_path / "a" / STATE_FILE), load_state(tmp_path / "b" / STATE_FILE)
    for key in ("model", "ema"):
        for name, t in sa[key].items():
            assert torch.equal(t, sb[key][name]), (key, name)
    assert sa["optimizer"]["state"][0]["step"] == sb["optimizer"]["state"][0]["step"] == 5
    assert [g["fused"] for g in sa["optimizer"]["param_groups"]] == [True if fused else None]


def test_checkpoint_is_a_model_directory_with_logs(tmp_path, synth_dirs, pretrain_config):
    from qimage.model_dir import load_components

    cfg = from_dict(PretrainConfig, pretrain_config({"text": synth_dirs["pure"]}, tmp_path / "r",
                                                    log={"every": 1, "checkpoint_every": 2, "sample_every": 5,
                                                         "sample_steps": 2, "prompts": ["a", "b"], "eval_every": 5,
                                                         "eval_words": 1, "eval_scenes": 2}))
    run(cfg, progress=False)
    out = tmp_path / "r"
    comps = load_components(out / "model")  # raises if the directory is incomplete
    state = load_state(out / STATE_FILE)
    assert state["step"] == 5
    ema = dict(state["ema"])
    for name, t in comps["transformer"].state_dict().items():
        assert torch.equal(t, ema[f"module.{name}"]), name  # the model directory holds the EMA weights
    assert (out / "loss.png").is_file() and (out / "samples" / "step-000005.png").is_file()
    assert not list(out.glob(".*")), "temporary files left behind"
    with open(out / "eval.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # the eval's learning curve: one row per eval_every, every eval field; a 5-step model reads nothing back and
    # draws no scene (measured 0.0000 for each)
    assert rows == [{"step": "5", "ocr_exact": "0.0000", "char_acc": "0.0000", "scenes": "0.0000"}]


def test_ray_data_loader_trains_exactly_like_the_local_loader(tmp_path, parquet_dir, synth_dirs, pretrain_config):
    sources = {"cleaned": parquet_dir, "shapes": synth_dirs["scenes"]}
    stages = [{"name": "a", "steps": 2, "resolution": 64}]
    local = from_dict(PretrainConfig, pretrain_config(sources, tmp_path / "l", stages=stages))
    ray = from_dict(PretrainConfig, pretrain_config(sources, tmp_path / "r", stages=stages, loader="ray"))
    assert run(local, progress=False)["losses"] == run(ray, progress=False)["losses"]
