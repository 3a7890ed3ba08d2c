"""Flow-GRPO: group-relative policy optimisation of the MMDiT on SDE-sampled trajectories.

Per iteration t, P prompts from the pool (a pure function of seed and t), G rollouts each:

    rollout     x_{i+1} ~ N(mu_theta(x_i), std_i^2) inside the window [w0, w1) (``sde_step_stats``: Flow-GRPO's
                marginal-preserving SDE, noise level a), Euler (the ODE) outside it; true CFG with norm rescale
                through ``Pipeline.prepare``'s velocity, the same one sampling uses; the last step is never trained
    reward      r_pg in [0, 1] per image (``train.rewards``)
    advantage   A_pg = clip((r_pg - mean_g r_pg) / (std + 1e-4), -c, c); std over the group or the whole batch
    objective   per trained step i, with rho = exp(log p_theta(x_{i+1} | x_i) - log p_old(x_{i+1} | x_i)):
                    L = mean_{p,g,i} max(-A rho, -A clip(rho, 1 - eps, 1 + eps))  +  beta KL_i
                    KL_i = || mu_theta(x_i) - mu_ref(x_i) ||^2 / (2 std_i^2)
                log-probabilities and KL are means over the latent's dimensions (as Flow-GRPO), std_i is the true
                per-step std a sqrt(s / (1 - s)) sqrt(-dt), dt included (Flow-GRPO's code divides by the variance
                without -dt, which scales its KL by 1 / -dt: beta there and here differ by that factor)

The rollout batch is split into ``minibatches`` optimiser steps; recomputation uses the rollout's own micro-batches,
model and precision, so the first minibatch's ratio is exactly 1. The reference policy is the starting model: a
frozen copy for a full fine-tune, the base with the adapter disabled for LoRA. Everything random comes from the seed
and the iteration: ``--resume`` continues bit for bit, and DDP processes (each rolling out its slice of the batch)
gather rewards so that advantages see the whole group.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from qimage.errors import UserError
from qimage.sampling import euler_step, sde_logprob, sde_step_stats, step_noise

from . import distributed, posttrain
from .config import GrpoConfig
from .posttrain import PostTrainer

LOG_FIELDS = ["step", "reward", "reward_letters", "reward_words", "reward_scenes", "reward_std", "reward_max", "kl", "loss", "ratio_dev", "clip_frac", "zero_adv",
              "dark_frac", "blank_frac", "lr", "images_per_s", "rollout_s", "reward_s", "train_s", "elapsed_s"]


# --- the objective ---------------------------------------------------------------------------------------------------
def advantages(rewards: torch.Tensor, std: str = "group", clip: float = 5.0) -> torch.Tensor:
    """(P, G) rewards -> (P, G) advantages: minus the group mean, over the group's (or the batch's) std + 1e-4."""
    rewards = rewards.double()
    centred = rewards - rewards.mean(1, keepdim=True)
    scale = rewards.std(1, keepdim=True) if std == "group" else rewards.std()
    return (centred / (scale + 1e-4)).clamp(-clip, clip).float()


def clipped_objective(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, clip_range: float):
    """Per-sample PPO loss max(-A rho, -A clip(rho, 1 - eps, 1 + eps)) and the ratio rho."""
    ratio = torch.exp(logp - logp_old)
    loss = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - clip_range, 1 + clip_range))
    return loss, ratio


def gaussian_kl(mean: torch.Tensor, mean_ref: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, std^2) || N(mean_ref, std^2)) per sample, averaged over dimensions: |mean - mean_ref|^2 / 2 std^2."""
    return ((mean - mean_ref) ** 2 / (2 * std**2)).flatten(1).mean(1)


# --- rollouts --------------------------------------------------------------------------------------------------------
@dataclass
class Chunk:
    """One micro-batch's rollout: the prepared sampler, the states around each trained step, their log-probs."""

    denoising: object
    items: list
    x: list = field(default_factory=list)  # x_i for i in the window
    x_next: list = field(default_factory=list)
    logp: list = field(default_factory=list)
    final: torch.Tensor | None = None


def rollout(pipe, items, seeds, ro, size, starts=None) -> Chunk:
    """G-expanded items and seeds of one micro-batch sampled with the SDE inside ``ro.window``, ODE elsewhere;
    ``starts``: the initial noise's seeds when they are not ``seeds`` (``rollout.same_noise``)."""
    d = pipe.prepare([it["prompt"] for it in items], width=size[0], height=size[1], steps=ro.steps, cfg=ro.cfg,
                     seeds=seeds, noise_seeds=starts)
    c = Chunk(d, items)
    x = d.x
    lo, hi = ro.window
    for i in range(len(d.timesteps)):
        with torch.no_grad():
            v = d.velocity(x, d.timesteps[i], i)
        s, s_next = d.sigmas[i], d.sigmas[i + 1]
        if lo <= i < hi:
            mean, std = sde_step_stats(x, v, s, s_next, ro.noise_level)
            x_next = (mean + std * step_noise(mean.shape, d.generators, mean.device)).to(v.dtype)
            c.x.append(x)
            c.x_next.append(x_next)
            c.logp.append(sde_logprob(x_next, mean, std))
        else:
            x_next = euler_step(x, v, s, s_next)
        x = x_next
    c.final = x
    return c


def step_stats(c: Chunk, j: int, ro):
    """(mean, std) of trained step j of a chunk under the pipeline's current transformer."""
    d, i = c.denoising, ro.window[0] + j
    v = d.velocity(c.x[j], d.timesteps[i], i)
    return sde_step_stats(c.x[j], v, d.sigmas[i], d.sigmas[i + 1], ro.noise_level)


def check_layout(cfg, world_size: int) -> None:
    """Each process's rollouts go through the model in micro-batches, and the minibatches are whole micro-batches."""
    local = cfg.prompts_per_step * cfg.group_size // world_size
    chunks = -(-local // cfg.rollout.micro_batch)
    if cfg.prompts_per_step * cfg.group_size % world_size:
        raise UserError(f"prompts_per_step x group_size = {cfg.prompts_per_step * cfg.group_size} does not split "
                        f"over {world_size} processes")
    if chunks % cfg.minibatches:
        raise UserError(f"rollout.micro_batch = {cfg.rollout.micro_batch} cuts the {local} rollouts per process into "
                        f"{chunks} micro-batches, which do not split into minibatches = {cfg.minibatches}; choose a "
                        f"micro_batch that divides {local // cfg.minibatches}")


# --- the trainer -----------------------------------------------------------------------------------------------------
class Trainer(PostTrainer):
    NAME = "grpo"
    LOG_FIELDS = LOG_FIELDS
    CURVES = ["reward", "kl", "dark_frac"]
    CURVES_TITLE = "reward, KL to the reference and dark-pixel fraction per iteration"

    def __init__(self, cfg, out, world, device, progress: bool = True):
        check_layout(cfg, world.size)  # before the model loads: a layout error is the config's, found at once
        super().__init__(cfg, out, world, device, progress)

    def optimiser_steps(self) -> int:
        return self.cfg.steps * self.cfg.minibatches

    # --- one iteration -------------------------------------------------------------------------------------------
    def global_batch(self, step: int) -> tuple[list[dict], list[int], list[int]]:
        """P prompts x G rollouts (prompt-major), one seed per rollout and the seed of each rollout's initial noise
        (its group's first seed under ``rollout.same_noise``), the same on every process."""
        cfg, g = self.cfg, self.cfg.group_size
        items = self.pool.draw(step, cfg.prompts_per_step)
        rng = np.random.default_rng([cfg.seed, step, 0xA11])
        seeds = rng.integers(0, 2**31 - 1, size=cfg.prompts_per_step * g).tolist()
        starts = [seeds[k - k % g] for k in range(len(seeds))] if cfg.rollout.same_noise else seeds
        return [it for it in items for _ in range(g)], seeds, starts

    def rollouts(self, items, seeds, starts) -> list[Chunk]:
        from qimage.device import autocast

        mb = self.cfg.rollout.micro_batch
        chunks = []
        self.policy.eval_mode()
        with autocast(self.device):
            for k in range(0, len(items), mb):
                chunks.append(rollout(self.pipe, items[k:k + mb], seeds[k:k + mb], self.cfg.rollout, self.size,
                                      starts[k:k + mb]))
        return chunks

    def rewards(self, chunks) -> tuple[torch.Tensor, dict]:
        from .rewards import guards

        images = [im for c in chunks for im in self.pipe.finish(c.final, c.denoising.lh, c.denoising.lw)]
        items = [it for c in chunks for it in c.items]
        local = torch.tensor(self.reward_fn(images, items), dtype=torch.float32)
        g = guards(images)
        return distributed.gather(local, self.world), {k: float(distributed.mean(torch.tensor(v), self.world))
                                                       for k, v in g.items()}

    def update(self, chunks, adv: torch.Tensor) -> dict:
        """`minibatches` optimiser steps over the local chunks; returns the loss, KL and ratio statistics."""
        from qimage.device import autocast

        cfg, ro = self.cfg, self.cfg.rollout
        n_trained = ro.window[1] - ro.window[0]
        per = len(chunks) // cfg.minibatches
        stats = {"loss": 0.0, "kl": 0.0, "ratio_dev": 0.0, "clip_frac": 0.0}
        offsets = np.cumsum([0] + [len(c.items) for c in chunks])
        self.policy.train_mode()
        for m in range(cfg.minibatches):
            group = list(range(m * per, (m + 1) * per))
            n = sum(len(chunks[k].items) for k in group)
            self.opt.zero_grad(set_to_none=True)
            last = (group[-1], n_trained - 1)
            for k in group:
                c, a = chunks[k], adv[offsets[k]:offsets[k + 1]].to(self.device)
                for j in range(n_trained):
                    with self.policy.sync((k, j) == last), autocast(self.device):
                        mean, std = step_stats(c, j, ro)
                        logp = sde_logprob(c.x_next[j], mean, std)
                        loss, ratio = clipped_objective(logp, c.logp[j], a, cfg.clip_range)
                        kl = torch.zeros_like(loss)
                        if cfg.beta > 0:
                            with torch.no_grad(), self.policy.reference():
                                mean_ref, _ = step_stats(c, j, ro)
                            kl = gaussian_kl(mean, mean_ref, std)
                        total = (loss + cfg.beta * kl).sum() / (n * n_trained)
                    total.backward()
                    w = len(c.items) / (n * n_trained * cfg.minibatches)
                    stats["loss"] += float(total.detach()) / cfg.minibatches  # the mean over minibatches
                    stats["kl"] += float(kl.detach().sum()) / (n * n_trained * cfg.minibatches)
                    stats["ratio_dev"] = max(stats["ratio_dev"], float((ratio.detach() - 1).abs().max()))
                    stats["clip_frac"] += w * float(((ratio.detach() - 1).abs() > cfg.clip_range).float().mean())
            self.optimiser_step()
        return {k: float(distributed.mean(torch.tensor(v), self.world)) for k, v in stats.items()}

    def iteration(self) -> dict:
        t0 = time.perf_counter()
        items, seeds, starts = self.global_batch(self.step)
        part = self.world.slice(len(items))
        chunks = self.rollouts(items[part], seeds[part], starts[part])
        t1 = time.perf_counter()
        rewards, guard = self.rewards(chunks)
        t2 = time.perf_counter()
        adv = advantages(rewards.view(self.cfg.prompts_per_step, self.cfg.group_size), self.cfg.std,
                         self.cfg.adv_clip).flatten()
        stats = self.update(chunks, adv[part])
        t3 = time.perf_counter()
        self.step += 1
        kinds = {}
        for kind in ("letters", "words", "scenes"):
            sel = [i for i, it in enumerate(items) if it.get("kind") == kind]
            if sel:
                kinds[f"reward_{kind}"] = float(rewards[sel].mean())
        return {"step": self.step, "reward": float(rewards.mean()), **kinds, "reward_std": float(rewards.std()),
                "reward_max": float(rewards.max()), "zero_adv": float((adv == 0).float().mean()), **stats, **guard,
                "lr": self.sched.get_last_lr()[0], "images_per_s": len(items) / max(t1 - t0, 1e-9),
                "rollout_s": t1 - t0, "reward_s": t2 - t1, "train_s": t3 - t2}



def run(cfg: GrpoConfig, **kw) -> dict:
    """``posttrain.run`` with the GRPO trainer of ``cfg.objective`` (Flow-GRPO's, or ``train.awm``'s on the same
    rollouts): OUT/model, OUT/trainer_state.safetensors, OUT/log.csv, ..."""
    from .awm import Trainer as AwmTrainer

    return posttrain.run(AwmTrainer if cfg.objective == "awm" else Trainer, cfg, **kw)
