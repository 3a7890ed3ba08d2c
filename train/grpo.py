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
from pathlib import Path

import numpy as np
import torch

from qimage.errors import UserError
from qimage.sampling import euler_step, sde_logprob, sde_step_stats, step_noise

from . import distributed
from .checkpoint import STATE_FILE, load_state, save_state, write_json_atomic
from .config import GrpoConfig

LOG_FIELDS = ["step", "reward", "reward_std", "reward_max", "kl", "loss", "ratio_dev", "clip_frac", "zero_adv",
              "dark_frac", "blank_frac", "lr", "images_per_s", "rollout_s", "reward_s", "train_s", "elapsed_s"]
EVAL_FIELDS = ["step", "ocr_exact", "char_acc", "nonword_exact", "nonword_char_acc", "scenes", "scenes_without_shapes"]


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


def rollout(pipe, items, seeds, ro, size) -> Chunk:
    """G-expanded items and seeds of one micro-batch sampled with the SDE inside ``ro.window``, ODE elsewhere."""
    d = pipe.prepare([it["prompt"] for it in items], width=size[0], height=size[1], steps=ro.steps, cfg=ro.cfg,
                     seeds=seeds)
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


# --- the trainer -----------------------------------------------------------------------------------------------------
class Trainer:
    def __init__(self, cfg: GrpoConfig, out: Path, world, device, progress: bool = True):
        from qimage.commands import _quiet_libraries
        from qimage.model_dir import resolve_model
        from qimage.pipeline import Pipeline, Settings

        from .config import parse_size
        from .policy import Policy
        from .prompts import PromptPool
        from .rewards import resolve

        _quiet_libraries()
        self.cfg, self.out, self.world, self.device, self.progress = cfg, out, world, device, progress
        self.model_dir = resolve_model(cfg.model.dir or None)
        self.reward_fn = resolve(cfg.reward, cfg.reward_weights)
        self.pool = PromptPool(cfg.prompts, cfg.seed, needs_text=cfg.reward == "ocr")
        self.pipe = Pipeline.load(self.model_dir, device=device, dtype=torch.float32)
        self.settings = Settings.read(self.model_dir)
        self.size = (self.settings.width, self.settings.height)
        self.pipe.settings.negative = self.settings.negative
        self.policy = Policy(self.pipe, cfg.model.lora, cfg.ema_decay, world, device)
        o = cfg.optim
        self.opt = torch.optim.AdamW(self.policy.trainable(), lr=o.lr, betas=tuple(o.betas), eps=o.eps,
                                     weight_decay=o.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_factor(o, cfg.steps * cfg.minibatches))
        self.step = 0
        parse_size(cfg.prompts.size, "prompts.size")

    # --- checkpoints ---------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"step": self.step, **self.policy.state(), "optimizer": self.opt.state_dict(),
                "lr_schedule": self.sched.state_dict()}

    def save(self) -> None:
        if self.world.main:
            self.policy.save(self.out / "model", self.model_dir)
            save_state(self.out / STATE_FILE, self.state())

    def resume(self) -> None:
        path = self.out / STATE_FILE
        if not path.is_file():
            raise UserError(f"--resume: no {STATE_FILE} in {self.out}")
        s = load_state(path)
        self.policy.load_state(s)
        self.opt.load_state_dict(s["optimizer"])
        self.sched.load_state_dict(s["lr_schedule"])
        self.step = int(s["step"])

    # --- one iteration -------------------------------------------------------------------------------------------
    def global_batch(self, step: int) -> tuple[list[dict], list[int]]:
        """P prompts x G rollouts (prompt-major) and one seed per rollout, the same on every process."""
        cfg = self.cfg
        items = self.pool.draw(step, cfg.prompts_per_step)
        rng = np.random.default_rng([cfg.seed, step, 0xA11])
        seeds = rng.integers(0, 2**31 - 1, size=cfg.prompts_per_step * cfg.group_size).tolist()
        return [it for it in items for _ in range(cfg.group_size)], seeds

    def rollouts(self, items, seeds) -> list[Chunk]:
        from qimage.device import autocast

        mb = self.cfg.rollout.micro_batch
        chunks = []
        self.policy.eval_mode()
        with autocast(self.device):
            for k in range(0, len(items), mb):
                chunks.append(rollout(self.pipe, items[k:k + mb], seeds[k:k + mb], self.cfg.rollout, self.size))
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
        if len(chunks) % cfg.minibatches:
            raise UserError(f"{len(chunks)} micro-batches per process do not split into {cfg.minibatches} minibatches "
                            "(choose rollout.micro_batch to divide the batch)")
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
                    stats["loss"] += float(total.detach())
                    stats["kl"] += float(kl.detach().sum()) / (n * n_trained * cfg.minibatches)
                    stats["ratio_dev"] = max(stats["ratio_dev"], float((ratio.detach() - 1).abs().max()))
                    stats["clip_frac"] += w * float(((ratio.detach() - 1).abs() > cfg.clip_range).float().mean())
            torch.nn.utils.clip_grad_norm_(self.policy.trainable(), cfg.optim.grad_clip)
            self.opt.step()
            self.sched.step()
            self.policy.after_step()
        return {k: float(distributed.mean(torch.tensor(v), self.world)) for k, v in stats.items()}

    def iteration(self) -> dict:
        t0 = time.perf_counter()
        items, seeds = self.global_batch(self.step)
        part = self.world.slice(len(items))
        chunks = self.rollouts(items[part], seeds[part])
        t1 = time.perf_counter()
        rewards, guard = self.rewards(chunks)
        t2 = time.perf_counter()
        adv = advantages(rewards.view(self.cfg.prompts_per_step, self.cfg.group_size), self.cfg.std,
                         self.cfg.adv_clip).flatten()
        stats = self.update(chunks, adv[part])
        t3 = time.perf_counter()
        self.step += 1
        return {"step": self.step, "reward": float(rewards.mean()), "reward_std": float(rewards.std()),
                "reward_max": float(rewards.max()), "zero_adv": float((adv == 0).float().mean()), **stats, **guard,
                "lr": self.sched.get_last_lr()[0], "images_per_s": len(items) / max(t1 - t0, 1e-9),
                "rollout_s": t1 - t0, "reward_s": t2 - t1, "train_s": t3 - t2}

    # --- logs ----------------------------------------------------------------------------------------------------
    def samples(self) -> None:
        if not self.world.main or not self.cfg.log.prompts:
            return
        from qimage.grid import image_grid

        lg = self.cfg.log
        with self.policy.saved_weights():
            images = self.pipe(lg.prompts, steps=lg.sample_steps, cfg=lg.sample_cfg, seeds=0)
        (self.out / "samples").mkdir(exist_ok=True)
        image_grid(images).save(self.out / "samples" / f"step-{self.step:06d}.png")

    def evaluate(self, eval_log) -> None:
        if not self.world.main:
            return
        from .eval import evaluate

        lg = self.cfg.log
        with self.policy.saved_weights():
            summary = evaluate(self.pipe, self.size, lg.eval_words, lg.eval_scenes, lg.sample_steps, lg.sample_cfg,
                               nonwords=lg.eval_nonwords)[0]
        eval_log.write({"step": self.step, **{k: f"{summary[k]:.4f}" for k in EVAL_FIELDS[1:] if k in summary}})
        plot_log(eval_log.rows(), EVAL_FIELDS[1:], self.out / "eval.png", "held-out eval of the saved weights",
                 (0.0, 1.0))

    def fit(self, stop_at: int | None = None, max_minutes: float | None = None) -> dict:
        from tqdm.auto import tqdm

        from .log import CsvLog

        cfg, world, lg = self.cfg, self.world, self.cfg.log
        log = CsvLog(self.out / "log.csv", LOG_FIELDS, resume_step=self.step) if world.main else None
        eval_log = CsvLog(self.out / "eval.csv", EVAL_FIELDS, resume_step=self.step) if world.main and lg.eval_every \
            else None
        if world.main and self.step == 0:
            self.samples()
            if eval_log:
                self.evaluate(eval_log)
        bar = tqdm(total=cfg.steps, initial=self.step, desc="grpo", unit="it", disable=not (self.progress and world.main),
                   dynamic_ncols=True)
        t_start, rewards = time.perf_counter(), []
        while self.step < cfg.steps:
            out = self.iteration()
            rewards.append(out["reward"])
            done = self.step
            if log and (done % lg.every == 0 or done == cfg.steps):
                log.write({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in
                           {**out, "elapsed_s": time.perf_counter() - t_start}.items()})
                plot_log(log.rows(), ["reward", "kl", "dark_frac"], self.out / "curves.png",
                         "reward, KL to the reference and dark-pixel fraction per iteration")
            bar.set_postfix(reward=f"{out['reward']:.3f}", kl=f"{out['kl']:.2e}")
            bar.update(1)
            stopping = (stop_at is not None and done >= stop_at) or (max_minutes is not None and distributed.any_true(
                time.perf_counter() - t_start >= 60 * max_minutes, world))
            if done % lg.checkpoint_every == 0 or done == cfg.steps or stopping:
                self.save()
            if lg.sample_every and done % lg.sample_every == 0:
                self.samples()
            if eval_log and done % lg.eval_every == 0:
                self.evaluate(eval_log)
            if stopping:
                bar.close()
                return {"step": done, "rewards": rewards, "stopped": True}
        bar.close()
        return {"step": self.step, "rewards": rewards, "stopped": False}


def _lr_factor(o, total: int):
    import math

    def f(step: int) -> float:
        if step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "cosine":
            p = (step - o.warmup_steps) / max(1, total - o.warmup_steps)
            return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))
        return 1.0

    return f


def plot_log(rows: list[dict], keys: list[str], path: Path, title: str, y_range=None) -> None:
    """Each key of the CSV rows against the step, one line each (matplotlib, PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for k in keys:
        pts = [(float(r["step"]), float(r[k])) for r in rows if r.get(k) not in (None, "")]
        if pts:
            ax.plot(*zip(*pts), marker=".", label=k)
    ax.set_xlabel("iteration")
    ax.set_title(title, fontsize=9)
    if y_range:
        ax.set_ylim(*y_range)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(cfg: GrpoConfig, out=None, resume: bool = False, overwrite: bool = False, stop_at: int | None = None,
        progress: bool = True, max_minutes: float | None = None) -> dict:
    """Trains per the config; writes OUT/model (a complete model directory), OUT/trainer_state.safetensors,
    OUT/log.csv, OUT/curves.png, OUT/samples/, OUT/eval.csv. Returns {"step", "rewards", "stopped"}."""
    world, device = distributed.init(cfg.device)
    try:
        root = Path(out or cfg.out)
        if world.main:
            root.mkdir(parents=True, exist_ok=True)
            if not resume and not overwrite and (root / STATE_FILE).exists():
                raise UserError(f"{root} already holds a run; pass --resume to continue it or --overwrite to restart")
        distributed.barrier(world)
        trainer = Trainer(cfg, root, world, device, progress)
        if resume:
            trainer.resume()
        if world.main:
            import dataclasses

            import yaml

            (root / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
        result = trainer.fit(stop_at, max_minutes)
        if world.main and not result["stopped"]:
            write_json_atomic(root / "done.json", {"step": result["step"]})
        return result
    finally:
        distributed.shutdown(world)

