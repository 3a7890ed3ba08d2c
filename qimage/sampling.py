"""Flow-matching sampling: the schedule, the step, true CFG, and the loop that joins them.

Flow matching (rectified flow) with data x0 and noise eps:

    x_s = (1 - s) x0 + s eps,        v = dx_s/ds = eps - x0        (what the transformer predicts)

Sampling integrates dx/ds = v from s = 1 (noise) to s = 0 (data). The schedule comes from diffusers'
FlowMatchEulerDiscreteScheduler: s_i = linspace(1, 1/N, N), shifted by mu, linear in the image token count n,

    mu = base_shift + (max_shift - base_shift) (n - base_len) / (max_len - base_len),
    s -> e^mu / (e^mu + (1/s - 1))       (exponential time shift), then stretched so the last s is shift_terminal,

with 0 appended. Steps are pure functions ``step(x, v, s, s_next, generators) -> x_next``: ``euler_step`` is the ODE;
``sde_step`` (Flow-GRPO's SDE, for GRPO rollouts) has the same signature and plugs into ``sample`` unchanged, and
``sde_step_stats`` / ``sde_logprob`` give the log-probabilities GRPO needs from a stored transition.
"""
from __future__ import annotations

import math
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


def sde_step_stats(x, v, sigma, sigma_next, noise_level: float = 0.7):
    """Mean and standard deviation of Flow-GRPO's SDE step (the marginal-preserving reverse SDE of the flow).

        dt    = s_next - s  (< 0)
        std_s = a * sqrt(s / (1 - s))                    (at s = 1 the denominator uses s_next)
        mean  = x + v dt + std_s^2 / (2 s) * (x + (1 - s) v) dt
        x_next ~ N(mean, std_s^2 * (-dt))

    The second term of the mean is the score correction that keeps the ODE's marginals; with a = 0 this is Euler.
    Computed in float32. Returns (mean, std of x_next).
    """
    x, v = x.float(), v.float()
    sigma, sigma_next = torch.as_tensor(sigma, dtype=torch.float32), torch.as_tensor(sigma_next, dtype=torch.float32)
    dt = sigma_next - sigma
    denom = 1 - torch.where(sigma >= 1, sigma_next, sigma)
    std_s = noise_level * torch.sqrt(sigma / denom)
    mean = x + v * dt + (std_s**2 / (2 * sigma)) * (x + (1 - sigma) * v) * dt
    return mean, std_s * torch.sqrt(-dt)


def sde_logprob(x_next, mean, std) -> torch.Tensor:
    """log N(x_next; mean, std^2), averaged over all but the batch dimension (as Flow-GRPO, so ratios stay near 1)."""
    logp = -((x_next.float() - mean) ** 2) / (2 * std**2) - torch.log(std) - 0.5 * math.log(2 * math.pi)
    return logp.flatten(1).mean(1)


def step_noise(shape, generators=None, device=None) -> torch.Tensor:
    """Standard normal noise of ``shape``, one row per sample from its own CPU generator (reproducible per seed on
    any device)."""
    if generators is None:
        return torch.randn(shape).to(device)
    return torch.cat([torch.randn((1, *shape[1:]), generator=g) for g in generators]).to(device)


def sde_step(x, v, sigma, sigma_next, generators=None, noise_level: float = 0.7):
    """One stochastic step x_next = mean + std * xi (``sde_step_stats``), xi from ``step_noise``. Same signature as
    ``euler_step``: pass ``functools.partial(sde_step, noise_level=a)`` as ``step`` to ``sample`` or the pipeline."""
    mean, std = sde_step_stats(x, v, sigma, sigma_next, noise_level)
    return (mean + std * step_noise(mean.shape, generators, mean.device)).to(v.dtype)


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
