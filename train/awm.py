"""Advantage-weighted matching (AWM, arXiv 2509.25050): GRPO's rollouts and group advantages, trained through the
pretraining loss on each rollout's clean result instead of through per-step Gaussian log-probabilities.

Flow-GRPO's gradient for one stochastic step is the flow-matching error against a target that the step's own noise
makes noisy; AWM puts the advantage on the ordinary flow-matching loss of the rollout's final latent x0:

    x0_pg    the rollout's final latent (``grpo.rollout``: SDE inside the window, ODE elsewhere)
    A_pg     the group advantage (``grpo.advantages``)
    s, eps   one level s = sigmoid(N(mean + mu, std^2)) (``timesteps``, as pretraining draws it) and one noise per
             rollout, from the rollout's own generator (so DDP slices and --resume draw the same)
    x_s      = (1 - s) x0 + s eps
    e_pg     = mean || v_theta(x_s, s, c_p) - (eps - x0) ||^2         the conditional velocity, no CFG
    L        = mean_pg A_pg e_pg  +  beta mean_pg || v_theta(x_s, s, c_p) - v_ref(x_s, s, c_p) ||^2

A rollout that scored above its group's mean has its error lowered (the policy moves toward it), one below has it
raised; a group whose rollouts tie has zero advantages and adds nothing. The beta term is the squared velocity
distance to the reference policy at the same input, which keeps the policy near its start. There is no ratio and no
clip: the minibatches after the first are slightly off-policy, as in Flow-GRPO.
"""
from __future__ import annotations

import numpy as np
import torch

from . import distributed, flow
from .grpo import Chunk
from .grpo import Trainer as GrpoTrainer


def weighted_matching(pred: torch.Tensor, target: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """Per-sample A * mean (pred - target)^2 in float32."""
    return adv * flow.sample_errors(pred, target)


def levels_and_noise(c: Chunk, timesteps, mu: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, eps) per rollout of a chunk, each from that rollout's step generator (after its rollout)."""
    x0 = c.final
    s, eps = [], []
    for g in c.denoising.generators:
        s.append(flow.sample_sigmas(1, g, timesteps.mean, timesteps.std, mu))
        eps.append(torch.randn((1, *x0.shape[1:]), generator=g))
    return torch.cat(s).to(x0.device), torch.cat(eps).to(x0.device, torch.float32)


class Trainer(GrpoTrainer):
    NAME = "awm"
    CURVES_TITLE = "reward, velocity distance to the reference and dark-pixel fraction per iteration"

    def velocity(self, xt, s, embeds, mask, c: Chunk) -> torch.Tensor:
        from qimage.device import autocast

        shapes = [[(1, c.denoising.lh // 2, c.denoising.lw // 2)]] * xt.shape[0]
        with autocast(self.device):
            return self.pipe.transformer(xt, embeds, mask, s, shapes, return_dict=False)[0]

    def encode(self, chunks) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each chunk's prompt embeddings, while the pipeline holds the bare module (its dtype names the embeddings')."""
        self.policy.eval_mode()
        with torch.no_grad():
            return [self.pipe.encode([it["prompt"] for it in c.items]) for c in chunks]

    def chunk_loss(self, c: Chunk, a: torch.Tensor, embeds, mask) -> tuple[torch.Tensor, torch.Tensor]:
        """(A * e, velocity distance to the reference) per rollout of one chunk."""
        cfg = self.cfg
        mu = flow.shift_mu(self.pipe.scheduler.config, c.final.shape[1]) if cfg.timesteps.shift else 0.0
        s, eps = levels_and_noise(c, cfg.timesteps, mu)
        x0 = c.final.float()
        xt, target = flow.interpolate(x0, eps, s)
        pred = self.velocity(xt, s, embeds, mask, c)
        kl = torch.zeros_like(a)
        if cfg.beta > 0:
            with torch.no_grad(), self.policy.reference():
                ref = self.velocity(xt, s, embeds, mask, c)
            kl = flow.sample_errors(pred, ref)
        return weighted_matching(pred, target, a), kl

    def update(self, chunks, adv: torch.Tensor) -> dict:
        """`minibatches` optimiser steps over the local chunks; returns the loss and the velocity distance."""
        cfg = self.cfg
        per = len(chunks) // cfg.minibatches
        offsets = np.cumsum([0] + [len(c.items) for c in chunks])
        stats = {"loss": 0.0, "kl": 0.0}
        conditions = self.encode(chunks)
        self.policy.train_mode()
        for m in range(cfg.minibatches):
            group = list(range(m * per, (m + 1) * per))
            n = sum(len(chunks[k].items) for k in group)
            self.opt.zero_grad(set_to_none=True)
            for k in group:
                a = adv[offsets[k]:offsets[k + 1]].to(self.device)
                with self.policy.sync(k == group[-1]):
                    loss, kl = self.chunk_loss(chunks[k], a, *conditions[k])
                    total = (loss + cfg.beta * kl).sum() / n
                    total.backward()
                stats["loss"] += float(total.detach()) / cfg.minibatches
                stats["kl"] += float(kl.detach().sum()) / (n * cfg.minibatches)
            self.optimiser_step()
        return {k: float(distributed.mean(torch.tensor(v), self.world)) for k, v in stats.items()}
