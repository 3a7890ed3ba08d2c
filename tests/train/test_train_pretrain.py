"""Pretraining options that must not change the mathematics: gradient checkpointing, and the data forms."""
import pytest

from qimage.train.config import PretrainConfig, from_dict
from qimage.train.pretrain import EMPTY_CAPTION, Trainer, step_generator
from qimage.train.distributed import World


def _trainer(cfg_dict, tmp_path):
    import torch

    cfg = from_dict(PretrainConfig, cfg_dict)
    return Trainer(cfg, tmp_path, World(), torch.device("cpu"), progress=False)


def test_gradient_checkpointing_gives_the_same_losses(tmp_path, synth_dirs, pretrain_config):
    from qimage.train.pretrain import run

    stages = [{"name": "a", "steps": 2, "buckets": ["64x64"]}]
    plain = run(from_dict(PretrainConfig, pretrain_config({"t": synth_dirs["pure"]}, tmp_path / "p", stages=stages)),
                progress=False)
    ckpt = run(from_dict(PretrainConfig, pretrain_config({"t": synth_dirs["pure"]}, tmp_path / "c", stages=stages,
                                                         gradient_checkpointing=True)), progress=False)
    assert ckpt["losses"] == pytest.approx(plain["losses"], rel=1e-5)


def test_caption_dropout_uses_the_pipelines_negative_prompt(tmp_path, synth_dirs, pretrain_config, monkeypatch):
    from qimage.pipeline import Settings
    from qimage.train.data import Schedule

    assert EMPTY_CAPTION == Settings().negative
    tr = _trainer(pretrain_config({"t": synth_dirs["pure"]}, tmp_path, caption_dropout=0.5), tmp_path)
    seen = []
    original = tr.encoders.prompts
    monkeypatch.setattr(tr.encoders, "prompts", lambda caps: (seen.extend(caps), original(caps))[1])
    schedule = Schedule(tr.records, {}, [(64, 64)], 4, 10, 0, 0)
    for t in range(6):
        tr.train_step(schedule, t)
    dropped = sum(c == EMPTY_CAPTION for c in seen)
    assert len(seen) == 24 and 4 <= dropped <= 20  # about half, and real captions otherwise
    assert all(c == EMPTY_CAPTION or '"' in c for c in seen)


def test_step_generator_depends_on_seed_and_step():
    import torch

    a = torch.rand(3, generator=step_generator(0, 5))
    assert torch.equal(a, torch.rand(3, generator=step_generator(0, 5)))
    assert not torch.equal(a, torch.rand(3, generator=step_generator(0, 6)))
    assert not torch.equal(a, torch.rand(3, generator=step_generator(1, 5)))


def test_max_minutes_checkpoints_and_stops(tmp_path, synth_dirs, pretrain_config):
    from qimage.train.pretrain import run

    cfg = from_dict(PretrainConfig, pretrain_config({"t": synth_dirs["pure"]}, tmp_path / "m"))
    result = run(cfg, max_minutes=1e-6, progress=False)  # the first step already exceeds it
    assert result["stopped"] and result["step"] == 1
    assert (tmp_path / "m" / "trainer_state.safetensors").is_file()
    assert run(cfg, resume=True, progress=False)["step"] == 5


def test_object_weights_reach_the_loss_per_latent_cell(tmp_path, synth_dirs, pretrain_config):
    import torch

    from qimage import vae as vae_ops
    from qimage.train import regions
    from qimage.train.config import Source
    from qimage.train.data import read_source

    scenes = read_source(Source(path=str(synth_dirs["scenes"])))[:4]
    plain = _trainer(pretrain_config({"s": synth_dirs["scenes"]}, tmp_path / "p"), tmp_path / "p")
    assert plain.region_weights(scenes, (64, 64), 8) is None  # the reference loss unless configured
    t = _trainer(pretrain_config({"s": synth_dirs["scenes"]}, tmp_path / "w", loss={"object_weight": 5.0}), tmp_path / "w")
    w = t.region_weights(scenes, (64, 64), 8)
    f = t.vae_scale
    assert w.shape == (4, (64 // f // 2) ** 2, 32)
    cells = vae_ops.unpack(w, 64 // f, 64 // f)[:, 0]  # every channel of a cell carries its weight
    for r, c in zip(scenes, cells):
        pix = regions.pixel_weights(r, (64, 64), 1.0, 5.0)
        assert torch.allclose(c, torch.from_numpy(pix).view(64 // f, f, 64 // f, f).mean((1, 3)))
        for x0, y0, x1, y1 in (o["bbox"] for o in r.meta["objects"]):
            cx, cy = int((x0 + x1) / 2) // f, int((y0 + y1) / 2) // f
            assert c[cy, cx] > 1  # the cell under an object's centre counts more than the background
        assert c.min() == 1.0
    # and the loss of a step uses them: same step, same weights and data, a different loss
    a, b = plain.fit(stop_at=1)["losses"][0], t.fit(stop_at=1)["losses"][0]
    assert a != pytest.approx(b, rel=1e-4)
