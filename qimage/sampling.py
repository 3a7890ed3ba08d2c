"""Flow-matching sampling: the schedule, the step, true CFG, and the loop that joins them.

Flow matching (rectified flow) with data x0 and noise eps:

    x_s = (1 - s) x0 + s eps,        v = dx_s/ds = eps - x0        (what the transformer predicts)

Sampling integrates dx/ds = v from s = 1 (noise) to s = 0 (data). The schedule comes from diffusers'
FlowMatchEulerDiscreteScheduler: s_i = linspace(1, 1/N, N), shifted by mu, linear in the image token count n,

    mu = base_shift + (max_shift - base_shift) (n - base_len) / (max_len - base_len),
    s -> e^mu / (e^mu + (1/s - 1))       (exponential time shift), then stretched so the last s is shift_terminal,

with 0 appended. Steps are pure functions ``step(x, v, s, s_next, generators) -> x_next``: ``euler_step`` is the ODE; a
stochastic (SDE) step for GRPO has the same signature and plugs into ``sample`` unchanged.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Sequence[torch.Generator] | None], torch.Tensor]


def schedule(scheduler, steps: int, image_seq_len: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(timesteps, sigmas): N model timesteps (sigma * 1000) and N + 1 sigmas ending in 0, as the reference pipeline."""
    from diffusers.pipelines.qwenimage.pipeline_qwenimage import calculate_shift

    cfg = scheduler.config
    mu = calculate_shift(
        image_seq_len,
        cfg.get("base_image_seq_len", 256),
        cfg.get("max_image_seq_len", 4096),
        cfg.get("base_shift", 0.5),
        cfg.get("max_shift", 1.15),
    )
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu, device=device)
    return scheduler.timesteps, scheduler.sigmas


def euler_step(x, v, sigma, sigma_next, generators=None):
    """ODE step x_next = x + (s_next - s) v, in float32 (the update is a small difference of large numbers)."""
    return (x.float() + (sigma_next - sigma) * v.float()).to(v.dtype)


def true_cfg(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Qwen-Image's CFG: comb = uncond + w (cond - uncond), rescaled per token to the conditional norm:
    comb * ||cond|| / ||comb|| (norms over channels), which keeps large w from blowing up the velocity."""
    comb = uncond + scale * (cond - uncond)
    return comb * (cond.norm(dim=-1, keepdim=True) / comb.norm(dim=-1, keepdim=True))


def sample(
    velocity: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    timesteps: torch.Tensor,
    sigmas: torch.Tensor,
    step: Step = euler_step,
    generators: Sequence[torch.Generator] | None = None,
    callback: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Integrates from noise x at sigmas[0] to sigmas[-1].

    ``velocity(x, t, i)`` returns v at model timestep t (step i); ``callback(i, x, v, x_next)`` sees every transition
    (GRPO keeps the trajectory through it).
    """
    from tqdm.auto import tqdm

    for i in tqdm(range(len(timesteps)), desc="sampling", disable=not progress, leave=False):
        v = velocity(x, timesteps[i], i)
        x_next = step(x, v, sigmas[i], sigmas[i + 1], generators)
        if callback is not None:
            callback(i, x, v, x_next)
        x = x_next
    return x
