"""What post-training shares (``train.grpo``, ``train.dpo``): the model and its policy, the optimiser, checkpoints,
exact resume, the CSV log and its curves, sample grids and held-out evals over training, and the loop.

A trainer subclass defines ``iteration() -> dict`` (one step's statistics, logged under ``LOG_FIELDS``) and
``CURVES`` (the columns drawn in OUT/curves.png). Everything random in an iteration must come from the seed and the
iteration number, so that ``--resume`` continues bit for bit.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from qimage.errors import UserError

from . import distributed
from .checkpoint import STATE_FILE, load_state, save_state

EVAL_FIELDS = ["step", "ocr_exact", "char_acc", "nonword_exact", "nonword_char_acc", "scenes", "scenes_without_shapes"]


class PostTrainer:
    NAME = "post"
    LOG_FIELDS: list[str] = ["step"]
    CURVES: list[str] = []
    CURVES_TITLE = ""

    def __init__(self, cfg, out: Path, world, device, progress: bool = True):
        from qimage.quiet import quiet_libraries
        from qimage.model_dir import resolve_model
        from qimage.pipeline import Pipeline, Settings

        from .policy import Policy
        from .pretrain import lr_schedule
        from .prompts import PromptPool
        from .rewards import resolve

        quiet_libraries()
        self.cfg, self.out, self.world, self.device, self.progress = cfg, out, world, device, progress
        self.model_dir = resolve_model(cfg.model.dir or None)
        self.reward_fn = resolve(cfg.reward, cfg.reward_weights)
        self.pool = PromptPool(cfg.prompts, cfg.seed, needs_text=cfg.reward == "ocr")
        self.pipe = Pipeline.load(self.model_dir, device=device, dtype=torch.float32)
        self.settings = Settings.read(self.model_dir)
        self.size = (self.settings.width, self.settings.height)
        self.policy = Policy(self.pipe, cfg.model.lora, cfg.ema_decay, world, device)
        o = cfg.optim
        self.opt = torch.optim.AdamW(self.policy.trainable(), lr=o.lr, betas=tuple(o.betas), eps=o.eps,
                                     weight_decay=o.weight_decay)
        self.sched = lr_schedule(self.opt, cfg.optim, self.optimiser_steps())
        self.step = 0

    def optimiser_steps(self) -> int:
        return self.cfg.steps

    def iteration(self) -> dict:
        raise NotImplementedError

    def optimiser_step(self) -> None:
        """Clip the gradient, step the optimiser and its schedule, update the EMA."""
        torch.nn.utils.clip_grad_norm_(self.policy.trainable(), self.cfg.optim.grad_clip)
        self.opt.step()
        self.sched.step()
        self.policy.after_step()

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

    # --- what a person looks at ------------------------------------------------------------------------------
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

    # --- the loop ----------------------------------------------------------------------------------------------
    def fit(self, stop_at: int | None = None, max_minutes: float | None = None) -> dict:
        from tqdm.auto import tqdm

        from .log import CsvLog

        cfg, world, lg = self.cfg, self.world, self.cfg.log
        log = CsvLog(self.out / "log.csv", self.LOG_FIELDS, resume_step=self.step) if world.main else None
        eval_log = CsvLog(self.out / "eval.csv", EVAL_FIELDS, resume_step=self.step) \
            if world.main and lg.eval_every else None
        if world.main and self.step == 0:
            self.samples()
            if eval_log:
                self.evaluate(eval_log)
        bar = tqdm(total=cfg.steps, initial=self.step, desc=self.NAME, unit="it",
                   disable=not (self.progress and world.main), dynamic_ncols=True)
        t_start, rewards = time.perf_counter(), []
        while self.step < cfg.steps:
            out = self.iteration()
            rewards.append(out["reward"])
            done = self.step
            if log and (done % lg.every == 0 or done == cfg.steps):
                log.write({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in
                           {**out, "elapsed_s": time.perf_counter() - t_start}.items()})
                plot_log(log.rows(), self.CURVES, self.out / "curves.png", self.CURVES_TITLE, smooth=10)
            bar.set_postfix({k: f"{out[k]:.3g}" for k in self.CURVES})
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


def plot_log(rows: list[dict], keys: list[str], path: Path, title: str, y_range=None, smooth: int = 0) -> None:
    """Each key of the CSV rows against the step, one line each (matplotlib, PNG); with ``smooth`` > 1 each line is
    drawn faint and its running mean over the last ``smooth`` points bold over it (an iteration's reward depends on
    which prompts it drew, so the trend is what a reader looks for)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for k in keys:
        pts = [(float(r["step"]), float(r[k])) for r in rows if r.get(k) not in (None, "")]
        if not pts:
            continue
        x, y = np.array(pts).T
        if smooth > 1 and len(y) >= smooth:
            line, = ax.plot(x, y, alpha=0.3, linewidth=0.8)
            mean = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
            ax.plot(x[smooth - 1:], mean, color=line.get_color(), linewidth=2, label=f"{k} (mean of {smooth})")
        else:
            ax.plot(x, y, marker=".", label=k)
    ax.set_xlabel("iteration")
    ax.set_title(title, fontsize=9)
    if y_range:
        ax.set_ylim(*y_range)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(trainer_cls, cfg, overwrite: bool = False, **kw) -> dict:
    """Trains per the config (``rundir.run``); writes OUT/model (a complete model directory),
    OUT/trainer_state.safetensors, OUT/log.csv, OUT/curves.png, OUT/samples/, OUT/eval.csv.
    Returns {"step", "rewards", "stopped"}."""
    from . import rundir

    return rundir.run(trainer_cls, cfg, overwrite=overwrite, **kw)
