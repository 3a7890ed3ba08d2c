"""VAE training: latent statistics land in the config; --decoder-only leaves the encoder's weights untouched."""
import json

import torch

from qimage.model_dir import load_components
from qimage.train.config import VaeConfig, from_dict
from qimage.train.vae import ENCODER_PARTS, latent_stats, run


def _cfg(model_dir, data, out, **over):
    cfg = {"out": str(out), "model": {"dir": str(model_dir), "init": "default"}, "sources": {"t": {"path": str(data)}},
           "size": "32x32", "steps": 3, "batch_size": 2, "holdout": 2, "stats_samples": 6, "log_every": 1,
           "optim": {"lr": 2e-3, "warmup_steps": 1}, "ocr": False}
    cfg.update(over)
    return from_dict(VaeConfig, cfg)


def test_from_scratch_writes_normalising_latent_statistics(tmp_path, tiny_model_dir, synth_dirs):
    report = run(_cfg(tiny_model_dir, synth_dirs["pure"], tmp_path / "v"), progress=False)
    vae = load_components(tmp_path / "v" / "model")["vae"]
    assert vae.config.latents_mean == report["latents_mean"] and vae.config.latents_std == report["latents_std"]
    # statistics of the saved encoder on the same images: the config's normalisation makes them zero-mean, unit-std
    from qimage.train.data import read_source
    from qimage.train.config import Source

    records = read_source(Source(path=str(synth_dirs["pure"])))[2:]
    import numpy as np

    order = np.random.default_rng(0).permutation(len(records))[:6]
    mean, std = latent_stats(vae, [records[i] for i in order], (32, 32), "cpu")
    assert mean == report["latents_mean"] and std == report["latents_std"]
    for key in ("before", "after"):
        assert report[key]["images"] == 2 and 0 < report[key]["psnr"] < 60
    log = (tmp_path / "v" / "log.txt").read_text()
    assert "PSNR before" in log and "after" in log
    assert (tmp_path / "v" / "reconstructions.png").is_file() and (tmp_path / "v" / "loss.png").is_file()


def test_decoder_only_freezes_the_encoder_and_its_statistics(tmp_path, tiny_model_dir, synth_dirs):
    before = load_components(tiny_model_dir)["vae"]
    report = run(_cfg(tiny_model_dir, synth_dirs["pure"], tmp_path / "d", model={"dir": str(tiny_model_dir)}),
                 decoder_only=True, progress=False)
    after = load_components(tmp_path / "d" / "model")["vae"]
    old, new = before.state_dict(), after.state_dict()
    frozen = [k for k in old if k.split(".")[0] in ENCODER_PARTS]
    trained = [k for k in old if k.split(".")[0] not in ENCODER_PARTS]
    assert frozen and trained
    assert all(torch.equal(old[k], new[k]) for k in frozen)
    assert any(not torch.equal(old[k], new[k]) for k in trained)  # the decoder did learn
    assert after.config.latents_mean == before.config.latents_mean
    assert json.loads((tmp_path / "d" / "report.json").read_text())["decoder_only"] is True
    assert report["after"]["psnr"] > 0
