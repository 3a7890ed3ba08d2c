"""VAE training: latent statistics land in the config; --decoder-only leaves the encoder's weights untouched."""
import json

import torch

from qimage.model_dir import load_components
from qimage.train.config import VaeConfig, from_dict
from qimage.train.vae import ENCODER_PARTS, run


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
    # the saved model's own inference path (qimage.vae.encode: the config's normalisation) on the images the
    # statistics were taken from must give zero-mean, unit-std latents per channel
    import numpy as np

    from qimage import vae as vae_ops
    from qimage.train.config import Source
    from qimage.train.data import read_source
    from qimage.train.vae import batch_tensors

    records = read_source(Source(path=str(synth_dirs["pure"])))[2:]
    order = np.random.default_rng(0).permutation(len(records))[:6]
    images, _ = batch_tensors([records[i] for i in order], (32, 32), "cpu")
    with torch.no_grad():
        z = vae_ops.encode(vae, images).transpose(0, 1).flatten(1)
    # measured 8.9e-8 and 6.0e-8 (float32 round-off); 10x margin
    assert z.mean(1).abs().max() < 1e-6 and (z.std(1) - 1).abs().max() < 1e-6
    for key in ("before", "after"):
        # 3 steps from a random VAE: measured 11.7 dB before and 11.6 after; +-1.5 dB
        assert report[key]["images"] == 2 and 10.0 < report[key]["psnr"] < 13.0
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
    assert report["after"]["psnr"] > report["before"]["psnr"]  # measured 11.18 -> 11.31 dB in 3 decoder steps


def test_object_weights_cover_each_scene_object_and_nothing_else(synth_dirs):
    import numpy as np

    from qimage.train.config import Source
    from qimage.train.data import read_source
    from qimage.train.vae import pixel_weights

    cfg = from_dict(VaeConfig, {"loss": {"text_weight": 5.0, "object_weight": 3.0}})
    for r in read_source(Source(path=str(synth_dirs["scenes"])))[:6]:
        w = pixel_weights(r, (r.width, r.height), cfg)
        img = np.asarray(r.load().convert("RGB")).astype(int)
        drawn = np.abs(img - np.asarray(r.meta["background"]["rgb"])).sum(-1) > 60  # object pixels
        inside = np.zeros_like(drawn)  # pixels a whole pixel inside some object's box (its edges round either way)
        for x0, y0, x1, y1 in (o["bbox"] for o in r.meta["objects"]):
            inside[int(np.ceil(y0)) + 1:int(y1), int(np.ceil(x0)) + 1:int(x1)] = True
        assert set(np.unique(w)) == {1.0, 3.0}  # no text in a scene: only the object weight applies
        assert (drawn & inside).any() and (w[drawn & inside] == 3.0).all()  # every object pixel is weighted...
        assert (w[drawn] == 3.0).mean() > 0.85  # ...but for part of the boxes' edge rows (rounding)...
        assert (w == 3.0).mean() < 4 * drawn.mean()  # ...by its box (a star fills ~40% of it), not the whole image
    # a text render gets the text weight inside its quads and no object weight
    text = read_source(Source(path=str(synth_dirs["pure"])))[0]
    assert set(np.unique(pixel_weights(text, (text.width, text.height), cfg))) == {1.0, 5.0}


def test_report_holds_out_every_source_and_scores_scene_reconstructions(tmp_path, tiny_model_dir, synth_dirs):
    cfg = _cfg(tiny_model_dir, synth_dirs["pure"], tmp_path / "s", size="64x64",
               sources={"t": {"path": str(synth_dirs["pure"])}, "s": {"path": str(synth_dirs["scenes"])}},
               loss={"object_weight": 5.0})
    report = run(cfg, progress=False)
    for key in ("before", "after"):
        assert report[key]["images"] == 4  # 2 held out of each source
        # a near-random VAE's reconstructions keep no countable shape: measured 0.0 before and after; PSNR 10.5, 11.2
        assert report[key]["scenes_score"] == 0.0 and 9.5 < report[key]["psnr"] < 12.5
        by = report[key]["by_source"]
        assert by["t"]["images"] == by["s"]["images"] == 2
        assert "scenes_score" in by["s"] and "scenes_score" not in by["t"]  # text renders have no scene to score
        assert report[key]["scenes_score"] == by["s"]["scenes_score"]
    log = (tmp_path / "s" / "log.txt").read_text()
    assert "scenes score before" in log and "\n  s: PSNR before" in log


def test_an_edit_models_vae_run_writes_an_edit_model(tmp_path, synth_dirs):
    """The edit toy's decoder step starts from an edit model's VAE: the output keeps processor/ and the pipeline."""
    from qimage.edit import check_edit_model
    from qimage.model_dir import init_model_dir

    src = init_model_dir(tmp_path / "e", "tiny-edit", seed=0)
    run(_cfg(src, synth_dirs["pure"], tmp_path / "d", model={"dir": str(src)}, steps=1), decoder_only=True,
        progress=False)
    check_edit_model(tmp_path / "d" / "model")  # raises for a text-to-image directory
    index = json.loads((tmp_path / "d" / "model" / "model_index.json").read_text())
    assert index["_class_name"] == json.loads((src / "model_index.json").read_text())["_class_name"]
