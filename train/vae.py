"""VAE training: the toy ``AutoencoderKLQwenImage`` from scratch, or its decoder alone on text-rich data.

Loss per image x (in [-1, 1]) with posterior N(mu, sigma^2), sample z and reconstruction x^ = D(z):

    w      = 1 + (text_weight - 1) * [pixel inside a metadata text quad]      glyph pixels matter most
               + (object_weight - 1) * [pixel inside a scenes object's box]    so do a scene's few object pixels
    loss   = l1 * mean(w |x^ - x|) + l2 * mean(w (x^ - x)^2) + kl * mean(0.5 (mu^2 + sigma^2 - 1 - log sigma^2))

After training from scratch, the per-channel statistics of the posterior means over `stats_samples` training images
go into the VAE config as ``latents_mean`` / ``latents_std``, so the transformer sees unit-variance latents
(``qimage.vae.encode`` normalises with them). ``--decoder-only`` is Qwen-Image's VAE strategy: the encoder (and with it
the latent space and its statistics) stays frozen, only ``post_quant_conv`` and the decoder learn, so a trained
transformer keeps working with the new decoder.

PSNR, OCR read-back (held-out text renders) and the eval's scenes score (held-out `synth scenes` samples) of
held-out reconstructions, before and after, overall and per source, go to OUT/report.json and the log; OUT/model is a
complete model directory with the new VAE.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from qimage import vae as vae_ops
from qimage.errors import UserError

from . import regions
from .buckets import fit, fit_quads
from .checkpoint import write_json_atomic
from .config import VaeConfig, parse_size
from .data import read_source
from .log import CsvLog, plot_curve
from .vae2d import planar
from .pretrain import lr_schedule, model_path

ENCODER_PARTS = ("encoder", "quant_conv")


def pixel_weights(record, size: tuple[int, int], cfg: VaeConfig) -> np.ndarray:
    """(H, W) loss weights w of the docstring's equation (`qimage.train.regions`)."""
    return regions.pixel_weights(record, size, cfg.loss.text_weight, cfg.loss.object_weight)


def batch_tensors(records, size, device, cfg: VaeConfig | None = None):
    """Images in [-1, 1] and, with a cfg, their (B, 1, H, W) loss weights."""
    images = vae_ops.from_pil([fit(r.load(), size) for r in records]).to(device)
    if cfg is None:
        return images, None
    weights = torch.from_numpy(np.stack([pixel_weights(r, size, cfg) for r in records]))[:, None].to(device)
    return images, weights


def vae_loss(vae, images, w, cfg: VaeConfig, generator=None, decoder_only: bool = False):
    with torch.set_grad_enabled(not decoder_only and torch.is_grad_enabled()):
        dist = vae.encode(images[:, :, None]).latent_dist
    z = dist.sample(generator)
    recon = vae.decode(z).sample[:, :, 0]
    l1 = (w * (recon - images).abs()).mean()
    l2 = (w * (recon - images) ** 2).mean()
    kl = 0.5 * (dist.mean ** 2 + dist.var - 1 - dist.logvar).mean()
    total = cfg.loss.l1 * l1 + cfg.loss.l2 * l2 + cfg.loss.kl * kl
    return total, {"l1": l1.item(), "l2": l2.item(), "kl": kl.item()}


@torch.no_grad()
def evaluate(vae, records, size, device, ocr: bool = True, names=None) -> tuple[dict, list]:
    """PSNR (dB, mean over images, pixels in [0, 1]), for records with text lines the OCR read-back of the
    reconstructions, and for `synth scenes` records the eval's scenes score of them (a ceiling for the denoiser's);
    with `names` (each record's source) the same per source under "by_source". Returns (metrics, PIL recons)."""
    images, _ = batch_tensors(records, size, device)
    recons = []
    for i in range(0, len(records), 16):
        z = vae_ops.encode(vae, images[i:i + 16])
        recons.append(vae_ops.decode(vae, z))
    recon = torch.cat(recons)
    mse = (((recon.float() - images) / 2) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    psnr = (10 * torch.log10(1 / mse)).tolist()
    pil = vae_ops.to_pil(recon)
    read = [None] * len(records)  # (lines matched, lines) per text render
    if ocr:
        from qimage.synth import readback

        for i, (im, r) in enumerate(zip(pil, records)):
            if r.meta.get("lines"):
                quads = fit_quads([ln["quad"] for ln in r.meta["lines"]], (r.width, r.height), size)
                read[i] = readback.score({"lines": [{**ln, "quad": q} for ln, q in zip(r.meta["lines"], quads)]},
                                         readback.ocr(im))
    from .eval import score_scene

    scene = [None] * len(records)
    for i, (im, r) in enumerate(zip(pil, records)):
        if r.meta.get("kind") == "scenes" and r.meta.get("objects") and (r.width, r.height) == size:
            scene[i] = score_scene(im, r.meta)["score"]  # the answer key is in source pixels: unresized scenes only

    def metrics(idx: list[int]) -> dict:
        out = {"psnr": float(np.mean([psnr[i] for i in idx])), "images": len(idx)}
        reads = [read[i] for i in idx if read[i] is not None]
        if reads:
            out["ocr_readback"] = sum(a for a, _ in reads) / max(sum(b for _, b in reads), 1)
        scores = [scene[i] for i in idx if scene[i] is not None]
        if scores:
            out["scenes_score"] = float(np.mean(scores))
        return out

    out = metrics(list(range(len(records))))
    if names is not None:
        out["by_source"] = {n: metrics([i for i, m in enumerate(names) if m == n]) for n in dict.fromkeys(names)}
    return out, pil


@torch.no_grad()
def latent_stats(vae, records, size, device) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the raw posterior means (before the config's normalisation)."""
    zs = []
    for i in range(0, len(records), 16):
        images, _ = batch_tensors(records[i:i + 16], size, device)
        with planar(vae):
            zs.append(vae.encode(images[:, :, None]).latent_dist.mode()[:, :, 0].float())
    z = torch.cat(zs).transpose(0, 1).flatten(1)
    return z.mean(1).tolist(), z.std(1).clamp_min(1e-6).tolist()


def _train(vae, cfg, params, opt, sched, train, holdout, names, stats_set, size, device, decoder_only, root, progress):
    from tqdm.auto import tqdm

    before, _ = evaluate(vae.eval(), holdout, size, device, cfg.ocr, names) if holdout else ({}, [])
    vae.train()
    if decoder_only:
        for part in ENCODER_PARTS:
            getattr(vae, part).eval()
    log = CsvLog(root / "log.csv", ["step", "loss", "l1", "l2", "kl", "lr", "images_per_s"])
    bar = tqdm(total=cfg.steps, desc="vae decoder" if decoder_only else "vae", unit="step", disable=not progress)
    t0, win = time.perf_counter(), 0
    for step in range(cfg.steps):
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, step]))
        batch = [train[int(i)] for i in rng.choice(len(train), size=min(cfg.batch_size, len(train)), replace=False)]
        images, weights = batch_tensors(batch, size, device, cfg)
        g = torch.Generator(device=device).manual_seed(int(rng.integers(2**31)))
        loss, parts = vae_loss(vae, images, weights, cfg, g, decoder_only)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
        lr = sched.get_last_lr()[0]
        opt.step()
        sched.step()
        win += len(batch)
        bar.update(1)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            now = time.perf_counter()
            ips = win / max(now - t0, 1e-9)
            log.write({"step": step + 1, "loss": f"{loss.item():.6g}", "l1": f"{parts['l1']:.5g}",
                       "l2": f"{parts['l2']:.5g}", "kl": f"{parts['kl']:.5g}", "lr": f"{lr:.3g}",
                       "images_per_s": f"{ips:.1f}"})
            bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{ips:.1f}")
            t0, win = now, 0
    bar.close()

    vae.eval().requires_grad_(False)
    if not decoder_only:
        mean, std = latent_stats(vae, stats_set, size, device)
        vae.register_to_config(latents_mean=mean, latents_std=std)
    after, recon = evaluate(vae, holdout, size, device, cfg.ocr, names) if holdout else ({}, [])
    return before, after, recon, log


def run(cfg: VaeConfig, out=None, decoder_only: bool = False, progress: bool = True) -> dict:
    """Trains (or, decoder_only, fine-tunes the decoder of) the directory's VAE; writes OUT/model, log.csv, loss.png,
    reconstructions.png of the held-out samples, report.json (before/after) and a summary line in log.txt."""
    from qimage.device import pick_device
    from qimage.model_dir import load_components
    from qimage.quiet import quiet_libraries

    quiet_libraries()
    size = parse_size(cfg.size, "size")
    device = pick_device(cfg.device)
    root = Path(out or cfg.out)
    comps = load_components(model_path(cfg.model.dir), device=device, dtype=torch.float32)
    comps["pipeline_class"] = json.loads((Path(model_path(cfg.model.dir)) / "model_index.json").read_text())["_class_name"]
    vae = _starting_vae(cfg, comps["vae"], size, device, decoder_only)
    train, holdout, names = _split(cfg)
    stats_set = [train[i] for i in np.random.default_rng(cfg.seed).permutation(len(train))[: cfg.stats_samples]]
    params, opt, sched = _optimiser(vae, cfg, decoder_only)
    root.mkdir(parents=True, exist_ok=True)
    with planar(vae):  # single images: the causal 3-D convolutions as 2-D ones (same function, faster)
        before, after, recon, log = _train(vae, cfg, params, opt, sched, train, holdout, names, stats_set, size,
                                           device, decoder_only, root, progress)
    report = _write_outputs(root, comps, vae, log, holdout, recon, size)
    report = {"decoder_only": decoder_only, "steps": cfg.steps, "before": before, "after": after, **report}
    write_json_atomic(root / "report.json", report)
    with (root / "log.txt").open("a") as fh:
        fh.write(_summary_lines(before, after) + "\n")
    return report


def _starting_vae(cfg: VaeConfig, vae, size, device, decoder_only: bool):
    """The VAE the run starts from: the directory's (init pretrained) or fresh weights of its config with unit
    latent statistics; checks the size and the decoder-only precondition first."""
    from diffusers import AutoencoderKLQwenImage

    f = vae_ops.scale_factor(vae)
    if size[0] % (2 * f) or size[1] % (2 * f):
        raise UserError(f"size {cfg.size} is not a multiple of {2 * f} (whole 2x2 latent patches)")
    if decoder_only and cfg.model.init != "pretrained":
        raise UserError("--decoder-only fine-tunes a trained VAE: set model.init to pretrained")
    torch.manual_seed(cfg.seed)
    if cfg.model.init != "pretrained":
        vae = AutoencoderKLQwenImage.from_config(vae.config).to(device)
        z = vae.config.z_dim
        vae.register_to_config(latents_mean=[0.0] * z, latents_std=[1.0] * z)
    return vae


def _split(cfg: VaeConfig):
    """(train records, held-out records, each held-out record's source name): the first `holdout` of every source
    is held out, so the report measures words and scenes alike."""
    records = {name: read_source(src, name) for name, src in cfg.sources.items()}
    holdout = [r for name in records for r in records[name][: cfg.holdout]]
    names = [name for name in records for _ in records[name][: cfg.holdout]]
    train = [r for recs in records.values() for r in recs[cfg.holdout:]]
    if not train:
        raise UserError(f"no training samples left after holding out {cfg.holdout}")
    return train, holdout, names


def _optimiser(vae, cfg: VaeConfig, decoder_only: bool):
    """(trained parameters, AdamW, LR schedule); decoder_only freezes the encoder parts in eval mode."""
    vae.train().requires_grad_(True)
    if decoder_only:
        for part in ENCODER_PARTS:
            getattr(vae, part).requires_grad_(False).eval()
    params = [p for p in vae.parameters() if p.requires_grad]
    o = cfg.optim
    opt = torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay,
                            fused=True if o.fused else None)
    return params, opt, lr_schedule(opt, cfg.optim, cfg.steps)


def _write_outputs(root: Path, comps, vae, log, holdout, recon, size) -> dict:
    """OUT/model (the directory with the trained VAE), loss.png and reconstructions.png; the report's model keys."""
    from qimage.grid import image_grid
    from qimage.model_dir import write_model_dir

    c = comps
    model = write_model_dir(root / "model", c["transformer"], vae, c["text_encoder"], c["tokenizer"], c["scheduler"],
                            c.get("processor"), c.get("pipeline_class"))  # an edit model stays one
    plot_curve([(float(r["step"]), float(r["loss"])) for r in log.rows()], root / "loss.png", title="VAE loss")
    if holdout:
        pick = sorted(set(np.linspace(0, len(holdout) - 1, 16).round().astype(int).tolist()))  # every source shows
        originals = [fit(holdout[i].load(), size) for i in pick]
        pairs = [im for i, o in zip(pick, originals) for im in (o, recon[i])]
        image_grid(pairs, cols=8).save(root / "reconstructions.png")
    return {"latents_mean": vae.config.latents_mean, "latents_std": vae.config.latents_std, "model": str(model)}


def _summary_lines(before: dict, after: dict) -> str:
    """PSNR (and OCR read-back, scenes score where measured) before and after, overall and per source."""
    def summary(b: dict, a: dict) -> str:
        line = f"PSNR before {b.get('psnr', math.nan):.2f} dB, after {a.get('psnr', math.nan):.2f} dB"
        if "ocr_readback" in a:
            line += f"; OCR read-back before {b['ocr_readback']:.3f}, after {a['ocr_readback']:.3f}"
        if "scenes_score" in a:
            line += f"; scenes score before {b['scenes_score']:.3f}, after {a['scenes_score']:.3f}"
        return line

    line = summary(before, after)
    for name, a in after.get("by_source", {}).items():
        line += f"\n  {name}: " + summary(before["by_source"][name], a)
    return line
