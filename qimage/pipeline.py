"""Text-to-image (and latent-conditioned editing) with a model directory.

    embeds = encode(prompt)        x_1 = noise(seed)         x_0 = sample(v, x_1)        image = VAE.decode(x_0)

Each sample draws its noise from its own generator (seed + k), on the CPU, so an image depends only on its prompt and
seed: the same alone, in any batch, on any device. With CFG the conditional and negative passes run as one batch;
MMDiT masks the padding so neither pass sees the other's prompt length.

Condition images (editing) are VAE-encoded, packed and appended after the target tokens at every step with frame
index 1, 2, ... in MSRoPE; only the target tokens' velocity is used, and mu uses the target token count.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from qimage import vae as vae_ops
from qimage.errors import UserError
from qimage.sampling import euler_step, sample, schedule, true_cfg
from qimage.text_encoder import encode_prompts

SETTINGS_FILE = "qimage.json"  # optional extras (default size, steps, CFG); diffusers ignores unknown files


@dataclass
class Settings:
    width: int = 1024
    height: int = 1024
    steps: int = 50
    cfg: float = 4.0
    negative: str = " "

    @classmethod
    def read(cls, model_dir) -> "Settings":
        path = Path(model_dir) / SETTINGS_FILE
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())
        except ValueError as e:
            raise UserError(f"{path} is not valid JSON: {e}") from None
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def step_seed(seed: int) -> int:
    """Seed of a sample's per-step noise (SDE steps), decorrelated from every sample's initial-noise seed: seed + 1
    would replay the next prompt's initial noise, since prompt k + 1 starts from seed + k + 1."""
    return (int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (2**63 - 1)


def pad_cat(embeds: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenates prompt embeddings of different lengths along the batch, right-padding with masked zeros."""
    from torch.nn.utils.rnn import pad_sequence

    return (pad_sequence([row for e in embeds for row in e], batch_first=True),
            pad_sequence([row for m in masks for row in m], batch_first=True))


@dataclass
class Denoising:
    """A prepared sampling run (``Pipeline.prepare``): packed noise x (B, tokens, C*4), N timesteps, N + 1 sigmas."""

    x: torch.Tensor
    timesteps: torch.Tensor
    sigmas: torch.Tensor
    velocity: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
    generators: list
    lh: int
    lw: int


class Pipeline:
    def __init__(self, transformer, vae, text_encoder, tokenizer, scheduler, device=None, settings: Settings | None = None):
        self.transformer, self.vae = transformer, vae
        self.text_encoder, self.tokenizer, self.scheduler = text_encoder, tokenizer, scheduler
        self.device = torch.device(device or next(transformer.parameters()).device)
        self.settings = settings or Settings()
        self.vae_scale = vae_ops.scale_factor(vae)
        self.multiple = max(16, 2 * self.vae_scale)  # whole 2x2 patches of latents; 16 px as Qwen-Image asks

    @classmethod
    def load(cls, model_dir, device=None, dtype=None) -> "Pipeline":
        from qimage.device import default_dtype, pick_device
        from qimage.model_dir import load_components

        device = pick_device(device)
        comps = load_components(model_dir, device=device, dtype=dtype or default_dtype(device))
        comps.pop("processor", None)  # an edit model generates from text alone too
        return cls(**comps, device=device, settings=Settings.read(model_dir))

    def encode(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        embeds, mask = encode_prompts(self.text_encoder, self.tokenizer, list(prompts), self.device)
        return embeds.to(self.transformer.dtype), mask

    def check_steps(self, steps: int) -> None:
        if steps < 1:
            raise UserError(f"steps must be at least 1, got {steps}")
        if steps == 1 and self.scheduler.config.get("shift_terminal"):
            # the terminal stretch divides by (1 - last sigma): NaN sigmas for one step (diffusers' pipeline too)
            raise UserError("steps must be at least 2 with this scheduler (its shift_terminal needs two sigmas)")

    def check_size(self, width: int, height: int):
        if width <= 0 or height <= 0 or width % self.multiple or height % self.multiple:
            raise UserError(f"size {width}x{height} is not a positive multiple of {self.multiple} in both dimensions")

    def noise(self, seeds: Sequence[int], width: int, height: int) -> torch.Tensor:
        """Per-sample Gaussian latents (B, C, h, w), each from torch.Generator().manual_seed(seed) on the CPU."""
        c = self.transformer.config.in_channels // 4
        h, w = height // self.vae_scale, width // self.vae_scale
        draws = [torch.randn((1, 1, c, h, w), generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        return torch.cat(draws)[:, 0].to(self.device, self.transformer.dtype)

    def prepare(
        self,
        prompts: str | Sequence[str],
        negative_prompt: str | None = None,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        cfg: float | None = None,
        seeds: int | Sequence[int] = 0,
        condition=None,
        noise_seeds: Sequence[int] | None = None,
    ) -> "Denoising":
        """Everything a sampler needs, before any step: the initial noise, the schedule, the per-sample step
        generators and ``velocity(x, t, i)`` (true CFG included). ``__call__`` runs it; GRPO calls ``velocity`` again
        with gradients on the stored trajectory, so rollouts and their recomputation share one definition.
        ``condition``: what ``conditioning`` reads besides the prompts (here a list of PIL condition images; an
        ``EditPipeline`` passes its ``EditInputs``). ``noise_seeds``: the initial noise's seeds where they are not
        ``seeds`` (GRPO groups that share one start while each rollout keeps its own step noise)."""
        s = self.settings
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        width, height = width or s.width, height or s.height
        steps = s.steps if steps is None else steps
        cfg = s.cfg if cfg is None else cfg
        negative_prompt = s.negative if negative_prompt is None else negative_prompt
        self.check_steps(steps)
        self.check_size(width, height)
        seeds = [seeds + k for k in range(len(prompts))] if isinstance(seeds, int) else list(seeds)
        noise_seeds = seeds if noise_seeds is None else list(noise_seeds)
        if len(seeds) != len(prompts) or len(noise_seeds) != len(prompts):
            raise UserError(f"{len(seeds)} seeds ({len(noise_seeds)} noise seeds) for {len(prompts)} prompts")

        b, lh, lw = len(prompts), height // self.vae_scale, width // self.vae_scale
        do_cfg = cfg > 1
        with torch.no_grad():
            embeds, mask, cond_tokens, cond_shapes = self.conditioning(
                prompts, negative_prompt, do_cfg, width, height, condition)
        shapes = [(1, lh // 2, lw // 2), *cond_shapes]
        if cond_tokens is not None:
            cond_tokens = cond_tokens.expand(b, -1, -1)
        n_target = (lh // 2) * (lw // 2)

        def velocity(x, t, i):
            hidden = x if cond_tokens is None else torch.cat([x, cond_tokens], dim=1)
            if do_cfg:
                hidden = torch.cat([hidden, hidden])
            sigma = (t.expand(hidden.shape[0]) / 1000).to(hidden.dtype)
            out = self.transformer(hidden, embeds, mask, sigma, [shapes] * hidden.shape[0], return_dict=False)[0]
            out = out[:, :n_target]
            if do_cfg:
                out_cond, out_neg = out.chunk(2)
                return true_cfg(out_cond, out_neg, cfg)
            return out

        timesteps, sigmas = schedule(self.scheduler, steps, n_target, self.device)
        x = vae_ops.pack(self.noise(noise_seeds, width, height))
        generators = [torch.Generator().manual_seed(step_seed(sd)) for sd in seeds]
        return Denoising(x, timesteps, sigmas, velocity, generators, lh, lw)

    def conditioning(self, prompts, negative_prompt, do_cfg, width, height, condition):
        """(embeds, mask, condition tokens or None, condition grids): the prompts (then the negative, with CFG)
        and the VAE tokens of the ``condition`` images, each at about the target's area with its own aspect."""
        embeds, mask = self.encode(prompts)
        if do_cfg:
            neg, neg_mask = self.encode([negative_prompt])  # once, not once per prompt: the same for all
            embeds, mask = self._with_negative(embeds, mask, neg, neg_mask)
        if not condition:
            return embeds, mask, None, []
        conds, shapes = [], []
        for im in condition:
            cw, ch = self._condition_size(im.size, width * height)
            lat = vae_ops.encode(self.vae, vae_ops.from_pil([im], (cw, ch)).to(self.device))
            conds.append(vae_ops.pack(lat.to(self.transformer.dtype)))
            shapes.append((1, ch // self.vae_scale // 2, cw // self.vae_scale // 2))
        return embeds, mask, torch.cat(conds, dim=1), shapes

    @staticmethod
    def _with_negative(embeds, mask, neg, neg_mask):
        """The CFG batch: every prompt's row, then the negative's row once per prompt."""
        b = embeds.shape[0]
        return pad_cat([embeds, neg.expand(b, -1, -1)], [mask, neg_mask.expand(b, -1)])

    @torch.no_grad()
    def __call__(
        self,
        prompts: str | Sequence[str],
        negative_prompt: str | None = None,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        cfg: float | None = None,
        seeds: int | Sequence[int] = 0,
        condition_images: Sequence | None = None,
        step=euler_step,
        callback=None,
        progress: bool = False,
        output: str = "pil",
    ):
        """Images for prompts. ``seeds``: one int (prompt k gets seed + k) or one seed per prompt.
        ``cfg`` <= 1 disables CFG. ``condition_images``: PIL images appended as edit conditions (same for all)."""
        d = self.prepare(prompts, negative_prompt, width, height, steps, cfg, seeds, condition=condition_images)
        x = sample(d.velocity, d.x, d.timesteps, d.sigmas, step=step, callback=callback, progress=progress,
                   generators=d.generators)
        return self.finish(x, d.lh, d.lw, output)

    @torch.no_grad()
    def finish(self, x: torch.Tensor, lh: int, lw: int, output: str = "pil"):
        """Packed final latents to "latent" (B, C, h, w), "pt" images in [0, 1] or "pil"."""
        latents = vae_ops.unpack(x, lh, lw)
        if output == "latent":
            return latents
        images = vae_ops.decode(self.vae, latents.to(self.vae.dtype))
        return vae_ops.to_pil(images) if output == "pil" else images

    def _condition_size(self, size: tuple[int, int], area: int) -> tuple[int, int]:
        w, h = size
        scale = (area / (w * h)) ** 0.5
        m = self.multiple
        return max(m, round(w * scale / m) * m), max(m, round(h * scale / m) * m)
