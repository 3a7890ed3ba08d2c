"""Flow-matching training: timestep sampling and the loss, as Qwen-Image's reference defines the flow.

With clean latents x0, Gaussian noise eps and a noise level s in (0, 1):

    x_s    = (1 - s) x0 + s eps                     the straight path from data (s = 0) to noise (s = 1)
    target = eps - x0                               its velocity dx_s/ds, what the transformer predicts
    loss   = mean over batch, tokens, channels of (v_theta(x_s, s, c) - target)^2

or, with per-element weights w (a latent cell's share of text or object pixels, ``qimage.train.regions``), each
sample's weighted mean, averaged over the batch:

    loss   = mean over batch b of  sum_i w_bi (v_bi - target_bi)^2 / sum_i w_bi

Normalising per sample keeps every sample's total weight at 1 (a scene weighs as much as a text render, only its
objects count more within it) and keeps DDP exact: equal slices of per-sample terms average to the global mean.

Timesteps are logit-normal (SD3), shifted by resolution as the scheduler shifts its sampling schedule:

    u  ~ N(m, std^2),    s0 = sigmoid(u)
    mu = base_shift + (max_shift - base_shift) (n - base_len) / (max_len - base_len)      n = image tokens
    s  = e^mu / (e^mu + (1/s0 - 1)) = sigmoid(u + mu)                                     exponential time shift

so larger images (more tokens, whose noise hides less of the signal per token) train at higher noise, the same shift
the sampler applies at inference (``qimage.sampling.schedule``). mu comes from diffusers' ``calculate_shift`` with
the scheduler config's base/max shift and sequence lengths.
"""
from __future__ import annotations

import torch


def shift_mu(scheduler_config, image_seq_len: int) -> float:
    """mu of the exponential time shift for n image tokens, from the scheduler config (as the pipeline computes it)."""
    from diffusers.pipelines.qwenimage.pipeline_qwenimage import calculate_shift

    cfg = scheduler_config
    return float(calculate_shift(
        image_seq_len,
        cfg.get("base_image_seq_len", 256),
        cfg.get("max_image_seq_len", 4096),
        cfg.get("base_shift", 0.5),
        cfg.get("max_shift", 1.15),
    ))


def sample_sigmas(n: int, generator: torch.Generator, mean: float = 0.0, std: float = 1.0, mu: float = 0.0) -> torch.Tensor:
    """n noise levels s = sigmoid(N(mean + mu, std^2)) in float32 on the CPU (deterministic for a generator)."""
    u = torch.randn(n, generator=generator) * std + mean
    return torch.sigmoid(u + mu)


def interpolate(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_s, target) for per-sample sigma (B,), broadcast over the remaining dimensions."""
    s = sigma.view(-1, *([1] * (x0.dim() - 1))).to(x0.dtype)
    return (1 - s) * x0 + s * noise, noise - x0


def sample_errors(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error in float32, shape (B,): DPO's and AWM's per-rollout flow-matching errors."""
    return ((prediction.float() - target.float()) ** 2).flatten(1).mean(1)


def loss(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error in float32 (bf16 predictions under autocast are upcast before the reduction); with
    `weight` (broadcastable to the prediction) the mean of per-sample weighted means."""
    err = (prediction.float() - target.float()) ** 2
    if weight is None:
        return torch.mean(err)
    w = weight.float().expand_as(err).flatten(1)
    return torch.mean((w * err.flatten(1)).sum(1) / w.sum(1))
