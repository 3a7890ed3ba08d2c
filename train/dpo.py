"""flow-DPO (Qwen-Image's form of Diffusion-DPO for flow matching).

For a prompt c and a pair of clean latents (x_w preferred, x_l rejected), one noise eps and one level s shared by
both (s ~ sigmoid(N(mean + mu, std)), as pretraining draws it):

    x_s^k = (1 - s) x_k + s eps,          e_k = mean || v_theta(x_s^k, s, c) - (eps - x_k) ||^2,   k in {w, l}
    e_ref_k likewise with the frozen reference policy (the starting model)
    L = -log sigmoid( -beta [ (e_w - e_l) - (e_ref_w - e_ref_l) ] )

beta is constant over s (a level-dependent one over-optimises the noisy levels) and multiplies a difference of
per-element means, so it is large: Diffusion-DPO writes 0.5 x 5000 in the same units. The implicit accuracy is the
fraction of pairs with e_w - e_l < e_ref_w - e_ref_l (the model prefers x_w more than the reference does); it can
rise while the loss sits near log 2.

Pairs: offline from ``pairs`` (a JSONL file of {"prompt", "chosen", "rejected"} image paths, relative to the file,
or a folder of Pick-a-Pic-like Parquet shards with caption / jpg_0 / jpg_1 / label_0, ties dropped), encoded with
the VAE's posterior mean; or online: ``group_size`` ODE samples per prompt from the current policy at the rollout
steps and CFG, the best and worst by the reward paired (groups whose rewards tie are skipped).
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from qimage.errors import UserError

from . import flow, posttrain
from .config import DpoConfig
from .posttrain import PostTrainer

LOG_FIELDS = ["step", "reward", "pairs", "loss", "implicit_acc", "margin", "ref_margin", "reward_gap", "lr",
              "sample_s", "train_s", "elapsed_s"]


def dpo_loss(e_w, e_l, e_ref_w, e_ref_l, beta: float):
    """Per-pair loss -log sigmoid(-beta ((e_w - e_l) - (e_ref_w - e_ref_l))) and whether the model's margin wins."""
    inside = (e_w - e_l) - (e_ref_w - e_ref_l)
    return -F.logsigmoid(-beta * inside), inside < 0


def read_pairs(path) -> list[dict]:
    """[{prompt, chosen: PIL, rejected: PIL}] from a JSONL file or a folder of Pick-a-Pic-like Parquet shards."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    out = []
    if p.is_file():
        for k, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                ims = [Image.open(p.parent / row[key]).convert("RGB") for key in ("chosen", "rejected")]
                out.append({"prompt": str(row["prompt"]), "chosen": ims[0], "rejected": ims[1]})
            except (ValueError, KeyError, TypeError) as e:
                raise UserError(f"pairs {p}:{k}: needs prompt, chosen and rejected ({e})") from None
            except (OSError, UnidentifiedImageError) as e:
                raise UserError(f"pairs {p}:{k}: cannot read an image ({e})") from None
    else:
        import pyarrow.parquet as pq

        for shard in sorted(p.glob("*.parquet")):
            t = pq.read_table(shard, columns=["caption", "jpg_0", "jpg_1", "label_0"]).to_pylist()
            for row in t:
                if row["label_0"] == 0.5:
                    continue  # a tie says nothing about which is better
                a, b = (Image.open(io.BytesIO(row[k])).convert("RGB") for k in ("jpg_0", "jpg_1"))
                chosen, rejected = (a, b) if row["label_0"] > 0.5 else (b, a)
                out.append({"prompt": row["caption"], "chosen": chosen, "rejected": rejected})
    if not out:
        raise UserError(f"pairs {p}: no pairs (a JSONL file, or a folder of Parquet shards with untied labels)")
    return out


class Trainer(PostTrainer):
    NAME = "dpo"
    LOG_FIELDS = LOG_FIELDS
    CURVES = ["loss", "implicit_acc", "reward"]
    CURVES_TITLE = "DPO loss, implicit accuracy and the sampled groups' mean reward"

    def __init__(self, cfg: DpoConfig, out, world, device, progress=True):
        super().__init__(cfg, out, world, device, progress)
        self.offline = read_pairs(cfg.pairs) if cfg.pairs else None

    # --- pairs ---------------------------------------------------------------------------------------------------
    def online_pairs(self, step: int) -> tuple[list[str], torch.Tensor, torch.Tensor, dict]:
        from qimage import vae as vae_ops

        cfg, G = self.cfg, self.cfg.group_size
        items = self.pool.draw(step, cfg.prompts_per_step)
        rng = np.random.default_rng([cfg.seed, step, 0xD90])
        seeds = rng.integers(0, 2**31 - 1, size=len(items) * G).tolist()
        expanded = [it for it in items for _ in range(G)]
        self.policy.eval_mode()  # on-policy: the current weights sample, not the EMA
        latents = self.pipe([it["prompt"] for it in expanded], width=self.size[0], height=self.size[1],
                            steps=cfg.rollout.steps, cfg=cfg.rollout.cfg, seeds=seeds, output="latent")
        with torch.no_grad():
            images = vae_ops.to_pil(vae_ops.decode(self.pipe.vae, latents.to(self.pipe.vae.dtype)))
        r = torch.tensor(self.reward_fn(images, expanded)).view(len(items), G)
        keep = [p for p in range(len(items)) if r[p].max() > r[p].min()]
        best, worst = r.argmax(1), r.argmin(1)
        lat = latents.view(len(items), G, *latents.shape[1:])
        prompts = [items[p]["prompt"] for p in keep]
        x_w = torch.stack([lat[p, best[p]] for p in keep]) if keep else latents[:0]
        x_l = torch.stack([lat[p, worst[p]] for p in keep]) if keep else latents[:0]
        gap = float((r.max(1).values - r.min(1).values)[keep].mean()) if keep else 0.0
        return prompts, x_w, x_l, {"reward": float(r.mean()), "reward_gap": gap}

    def offline_batch(self, step: int) -> tuple[list[str], torch.Tensor, torch.Tensor, dict]:
        from qimage import vae as vae_ops

        rng = np.random.default_rng([self.cfg.seed, step, 0xD91])
        rows = [self.offline[int(i)] for i in rng.integers(len(self.offline), size=self.cfg.prompts_per_step)]
        with torch.no_grad():
            enc = [vae_ops.encode(self.pipe.vae, vae_ops.from_pil([r[k] for r in rows], self.size).to(self.device))
                   for k in ("chosen", "rejected")]
        return [r["prompt"] for r in rows], enc[0], enc[1], {"reward": float("nan"), "reward_gap": float("nan")}

    # --- the step ------------------------------------------------------------------------------------------------
    def errors(self, x0, eps, s, embeds, mask) -> torch.Tensor:
        """Per-sample flow-matching error mean || v(x_s) - (eps - x0) ||^2 under the pipeline's transformer."""
        from qimage import vae as vae_ops
        from qimage.device import autocast

        h, w = x0.shape[2], x0.shape[3]
        xt, target = flow.interpolate(vae_ops.pack(x0), vae_ops.pack(eps), s)
        with autocast(self.device):
            pred = self.pipe.transformer(xt, embeds, mask, s, [[(1, h // 2, w // 2)]] * xt.shape[0],
                                         return_dict=False)[0]
        return flow.sample_errors(pred, target)

    def iteration(self) -> dict:
        t0 = time.perf_counter()
        prompts, x_w, x_l, info = self.offline_batch(self.step) if self.offline else self.online_pairs(self.step)
        t1 = time.perf_counter()
        stats = {"pairs": len(prompts), "loss": float("nan"), "implicit_acc": float("nan"),
                 "margin": float("nan"), "ref_margin": float("nan")}
        if prompts:
            stats.update(self.update(prompts, x_w.float(), x_l.float()))
        self.step += 1
        return {"step": self.step, **info, **stats, "lr": self.sched.get_last_lr()[0], "sample_s": t1 - t0,
                "train_s": time.perf_counter() - t1}

    def update(self, prompts, x_w, x_l) -> dict:
        cfg = self.cfg
        n, (c, h, w) = len(prompts), x_w.shape[1:]
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, self.step, 0xD92]).generate_state(1)[0]))
        mu = flow.shift_mu(self.pipe.scheduler.config, (h // 2) * (w // 2)) if cfg.timesteps.shift else 0.0
        s = flow.sample_sigmas(n, g, cfg.timesteps.mean, cfg.timesteps.std, mu).to(self.device)
        eps = torch.randn(n, c, h, w, generator=g).to(self.device)
        with torch.no_grad():
            embeds, mask = self.pipe.encode(prompts)
        x0 = torch.cat([x_w, x_l])  # one forward for both: the same noise and level for each pair
        args = (torch.cat([eps, eps]), torch.cat([s, s]), torch.cat([embeds, embeds]), torch.cat([mask, mask]))
        with torch.no_grad(), self.policy.reference():
            e_ref_w, e_ref_l = self.errors(x0, *args).chunk(2)
        self.policy.train_mode()
        e_w, e_l = self.errors(x0, *args).chunk(2)
        loss, won = dpo_loss(e_w, e_l, e_ref_w, e_ref_l, cfg.beta)
        self.opt.zero_grad(set_to_none=True)
        loss.mean().backward()
        self.optimiser_step()
        e_w, e_l = e_w.detach(), e_l.detach()
        return {"loss": float(loss.detach().mean()), "implicit_acc": float(won.float().mean()),
                "margin": float((e_w - e_l).mean()), "ref_margin": float((e_ref_w - e_ref_l).mean())}


def run(cfg: DpoConfig, **kw) -> dict:
    """``posttrain.run`` with the DPO trainer."""
    return posttrain.run(Trainer, cfg, **kw)
