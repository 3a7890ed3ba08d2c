"""Flow-matching pretraining of the MMDiT: the loop that joins data, frozen encoders, loss, optimiser and checkpoints.

One step (global step t, in curriculum stage k):

    source, bucket, records = Schedule(k).batch(t - start_k)        same on every process
    g = Generator(seed, t): caption dropout, sigma ~ logit-normal shifted by the bucket's token count, eps, noise
    x0 = VAE posterior sample (frozen, cached),  c = text encoder (frozen, cached), " " when dropped
    x_s, target = (1 - s) x0 + s noise, noise - x0;   loss = |v(x_s, s, c) - target|^2 on this process's slice
                                                      (per-sample weighted by text/object regions when configured)
    AdamW step (LR warmup, optional cosine), gradients clipped; EMA update

Everything random in a step comes from a generator seeded by (seed, t), and the batch from the schedule's pure
function of t, so a resumed run continues bit for bit and DDP processes agree on the global batch.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from qimage import vae as vae_ops
from qimage.errors import UserError

from . import distributed, flow, regions
from .buckets import make_buckets
from .checkpoint import STATE_FILE, load_state, save_state, write_json_atomic
from .config import PretrainConfig, parse_size
from .data import Schedule, caption_text, read_source
from .ema import make_ema
from .encode import FrozenEncoders
from .log import CsvLog, plot_curve, plot_curves

# The pipeline's default negative prompt: CFG's unconditional pass sees exactly what dropped captions trained on.
EMPTY_CAPTION = " "
EVAL_FIELDS = ["step", "ocr_exact", "char_acc", "scenes"]
LOG_FIELDS = ["step", "stage", "source", "bucket", "loss", "loss_avg", "lr", "grad_norm", "samples_per_s", "elapsed_s"]


def plot_eval(rows: list[dict], png_path: Path) -> None:
    """The eval's learning curve: each metric of eval.csv's rows against the step."""
    series = {k: [(float(r["step"]), float(r[k])) for r in rows if r.get(k)] for k in EVAL_FIELDS[1:]}
    plot_curves(series, png_path, title="eval of the EMA weights", y_range=(0.0, 1.0))


def model_path(path: str):
    """A config's model directory; ``shipped-toy`` names the toy inside the package."""
    from qimage.model_dir import SHIPPED_TOY

    return SHIPPED_TOY if path == "shipped-toy" else path


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))


def lr_schedule(opt: torch.optim.Optimizer, o, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from 0 over ``o.warmup_steps``, then constant, or cosine down to ``o.min_lr_ratio`` of the LR at
    step ``total`` (transformers' schedules; a LambdaLR, so its state goes into checkpoints)."""
    from transformers import get_constant_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup

    if o.schedule == "cosine":
        return get_cosine_with_min_lr_schedule_with_warmup(opt, o.warmup_steps, total,
                                                           min_lr_rate=o.min_lr_ratio)
    return get_constant_schedule_with_warmup(opt, o.warmup_steps)


def stage_buckets(stage, multiple: int) -> list[tuple[int, int]]:
    if stage.buckets:
        sizes = [parse_size(b, f"stage {stage.name} buckets") for b in stage.buckets]
        for w, h in sizes:
            if w % multiple or h % multiple:
                raise UserError(f"stage {stage.name}: bucket {w}x{h} is not a multiple of {multiple}")
        return sizes
    return make_buckets(stage.resolution, multiple)


class Trainer:
    def __init__(self, cfg: PretrainConfig, out: Path, world, device, progress: bool = True):
        from qimage.quiet import quiet_libraries
        from qimage.model_dir import load_components

        quiet_libraries()
        self.cfg, self.out, self.world, self.device, self.progress = cfg, out, world, device, progress
        self.records = self.read_records(cfg)
        comps = load_components(cfg.model.dir, device=device, dtype=torch.float32)
        if cfg.model.vae:
            comps["vae"] = load_components(model_path(cfg.model.vae), device=device, dtype=torch.float32)["vae"]
        if cfg.model.transformer:
            self._load_transformer(comps["transformer"], model_path(cfg.model.transformer))
        self.comps = comps
        torch.manual_seed(cfg.seed)
        model = comps["transformer"]
        if cfg.model.init != "pretrained":
            model.initialize_weights(cfg.model.init)
        model.requires_grad_(True).train()
        if cfg.gradient_checkpointing:
            model.enable_gradient_checkpointing()
        self.model = model
        self.ema = make_ema(model, cfg.ema_decay)
        self.ddp = model
        if world.size > 1:
            from torch.nn.parallel import DistributedDataParallel

            # static_graph: the last block's text stream is never used (MMDiT skips it), the same parameters every
            # step, which a static graph handles without find_unused_parameters' per-step search (and it suits
            # gradient checkpointing's re-entrant backward)
            self.ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                               static_graph=True)
        o = cfg.optim
        self.opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=tuple(o.betas), eps=o.eps,
                                     weight_decay=o.weight_decay, fused=True if o.fused else None)
        self.total = sum(s.steps for s in cfg.stages)
        self.sched = lr_schedule(self.opt, o, self.total)
        self.encoders = FrozenEncoders(comps["vae"], comps["text_encoder"], comps["tokenizer"], device, cfg.cache)
        self.vae_scale = vae_ops.scale_factor(comps["vae"])
        self.multiple = max(16, 2 * self.vae_scale)
        self.step = 0
        self.eval_log = None
        for name, recs in self.records.items():
            for r in recs:
                r.caption = caption_text(r.caption, cfg.sources[name].caption)

    NAME = "pretrain"  # the progress bar's label
    EVAL_FIELDS = EVAL_FIELDS

    def read_records(self, cfg) -> dict:
        return {name: read_source(src, name) for name, src in cfg.sources.items()}

    def warm_keys(self, names, buckets) -> list:
        """[(cache key, record, bucket)] of every image a stage encodes, in a fixed order (identical on resume)."""
        from .buckets import assign

        return [((n, i), r, assign(r.width, r.height, buckets)) for n in names for i, r in enumerate(self.records[n])]

    @staticmethod
    def _load_transformer(model, path) -> None:
        """Weights of another model directory's transformer/ (same config) into ``model``: an edit model starts
        from its text-to-image model, as Qwen-Image-Edit does from Qwen-Image."""
        from safetensors.torch import load_file

        from qimage.model_dir import check_model_dir

        files = sorted((check_model_dir(path) / "transformer").glob("*.safetensors"))
        state = {k: v for f in files for k, v in load_file(f).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise UserError(f"model.transformer {path}: its transformer does not fit this model's "
                            f"({len(missing)} missing, {len(unexpected)} unexpected weights)")

    # --- checkpoints -------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.opt.state_dict(),
            "lr_schedule": self.sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }

    def save(self, size: tuple[int, int]) -> None:
        if not self.world.main:
            return
        from qimage.model_dir import write_model_dir
        from qimage.pipeline import SETTINGS_FILE

        c = self.comps
        root = write_model_dir(self.out / "model", self.ema.module, c["vae"], c["text_encoder"], c["tokenizer"],
                               c["scheduler"], c.get("processor"), c.get("pipeline_class"))
        write_json_atomic(root / SETTINGS_FILE, self.model_settings(size))
        save_state(self.out / STATE_FILE, self.state())

    def model_settings(self, size: tuple[int, int]) -> dict:
        """The saved model's qimage.json: its own defaults for `qimage generate` / `qimage eval`."""
        lg = self.cfg.log
        return {"width": size[0], "height": size[1], "steps": lg.sample_steps, "cfg": lg.sample_cfg,
                "negative": EMPTY_CAPTION}

    def resume(self) -> None:
        path = self.out / STATE_FILE
        if not path.is_file():
            raise UserError(f"--resume: no {STATE_FILE} in {self.out}")
        s = load_state(path)
        self.model.load_state_dict(s["model"])
        self.ema.load_state_dict(s["ema"])
        self.opt.load_state_dict(s["optimizer"])
        self.sched.load_state_dict(s["lr_schedule"])
        torch.set_rng_state(s["torch_rng"])
        self.step = int(s["step"])

    # --- samples -----------------------------------------------------------------------------------------------
    def samples(self, size: tuple[int, int]) -> None:
        if not self.world.main or not self.cfg.log.prompts:
            return
        from qimage.grid import image_grid
        from qimage.pipeline import Pipeline

        c, lg = self.comps, self.cfg.log
        pipe = Pipeline(self.ema.module, c["vae"], c["text_encoder"], c["tokenizer"], c["scheduler"], device=self.device)
        images = pipe(lg.prompts, width=size[0], height=size[1], steps=lg.sample_steps, cfg=lg.sample_cfg,
                      seeds=lg.sample_seed, negative_prompt=EMPTY_CAPTION)
        (self.out / "samples").mkdir(exist_ok=True)
        image_grid(images).save(self.out / "samples" / f"step-{self.step:06d}.png")

    def evaluate(self, size: tuple[int, int]) -> None:
        """The eval metrics of the EMA weights (a learning curve of the eval, for the model card) into eval.csv."""
        if not self.world.main:
            return
        from qimage.pipeline import Pipeline

        from .eval import evaluate

        c, lg = self.comps, self.cfg.log
        pipe = Pipeline(self.ema.module, c["vae"], c["text_encoder"], c["tokenizer"], c["scheduler"], device=self.device)
        pipe.settings.negative = EMPTY_CAPTION
        summary = evaluate(pipe, size, lg.eval_words, lg.eval_scenes, lg.sample_steps, lg.sample_cfg, lg.sample_seed)[0]
        self.eval_log.write({"step": self.step, **{k: f"{summary[k]:.4f}" for k in self.EVAL_FIELDS[1:] if k in summary}})
        plot_eval(self.eval_log.rows(), self.out / "eval.png")

    # --- one step ----------------------------------------------------------------------------------------------
    def train_step(self, schedule: Schedule, local_step: int) -> dict:
        cfg, world = self.cfg, self.world
        name, bucket, idx = schedule.batch(local_step)
        n = len(idx)
        if n % world.size:
            raise UserError(f"batch size {n} is not divisible by the {world.size} processes")
        w, h = bucket[0] // self.vae_scale, bucket[1] // self.vae_scale
        zc = self.comps["vae"].config.z_dim
        g = step_generator(cfg.seed, self.step)
        # Drawn for the whole global batch in a fixed order, then sliced: identical for any number of processes.
        drop = torch.rand(n, generator=g) < cfg.caption_dropout
        mu = flow.shift_mu(self.comps["scheduler"].config, (h // 2) * (w // 2)) if cfg.timesteps.shift else 0.0
        sigma = flow.sample_sigmas(n, g, cfg.timesteps.mean, cfg.timesteps.std, mu)
        eps = torch.randn(n, zc, h, w, generator=g)
        noise = torch.randn(n, zc, h, w, generator=g)
        part = world.slice(n)
        recs = self.records[name]
        keyed = [((name, i), recs[i]) for i in idx[part]]
        loss = self.batch_loss(keyed, bucket, drop[part].tolist(), sigma[part].to(self.device), eps[part],
                               noise[part].to(self.device))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        lr = self.sched.get_last_lr()[0]
        self.opt.step()
        self.sched.step()
        self.ema.update_parameters(self.model)
        self.step += 1
        return {"loss": float(distributed.mean(loss.detach(), world)), "grad_norm": float(grad_norm), "lr": lr,
                "source": name, "bucket": f"{bucket[0]}x{bucket[1]}", "n": n}

    def batch_loss(self, keyed, bucket, drop, s, eps, noise) -> torch.Tensor:
        """This process's flow-matching loss: x_s = (1 - s) x0 + s noise, |v(x_s, s, caption) - (noise - x0)|^2."""
        from qimage.device import autocast

        w, h = bucket[0] // self.vae_scale, bucket[1] // self.vae_scale
        x0 = self.encoders.latents(keyed, bucket, eps if self.cfg.latent_sample else None)
        embeds, mask = self.encoders.prompts([EMPTY_CAPTION if d else r.caption for d, (_, r) in zip(drop, keyed)])
        xt, target = flow.interpolate(vae_ops.pack(x0), vae_ops.pack(noise), s)
        with autocast(self.device):
            pred = self.ddp(xt, embeds, mask, s, [[(1, h // 2, w // 2)]] * xt.shape[0], return_dict=False)[0]
        return flow.loss(pred, target, self.region_weights([r for _, r in keyed], bucket, x0.shape[1]))

    def region_weights(self, records, bucket, channels: int) -> torch.Tensor | None:
        """Packed (B, tokens, channels * 4) loss weights from the records' text/object regions; None when all 1."""
        lw = self.cfg.loss
        if lw.text_weight == 1 and lw.object_weight == 1:
            return None
        w = regions.latent_weights(records, bucket, self.vae_scale, lw.text_weight, lw.object_weight)
        return vae_ops.pack(w.expand(-1, channels, -1, -1).contiguous()).to(self.device)

    # --- the loop ----------------------------------------------------------------------------------------------
    def fit(self, stop_at: int | None = None, max_minutes: float | None = None) -> dict:
        """Runs the stages not yet done from ``self.step``; stops (checkpointed) at ``stop_at`` steps or after
        ``max_minutes``. Returns {"step", "losses" (this process's steps), "stopped"}."""
        log = self.open_logs()
        bar = self.progress_bar(self.total, self.step, self.NAME, unit="step")
        meter = Meter()
        self.last_saved, size = -1, None
        for k, stage, start, end in self.pending_stages():
            schedule = self.prepare_stage(k, stage)
            while self.step < end:
                out = self.train_step(schedule, self.step - start)
                size = tuple(int(v) for v in out["bucket"].split("x"))
                meter.add(out["loss"], out["n"])
                if self.step % self.cfg.log.every == 0 or self.step == self.total:
                    self.log_window(log, bar, meter, stage.name, out)
                bar.update(1)
                stopping = self.should_stop(stop_at, max_minutes, meter.t_start)
                self.periodic(size, log, force_save=stopping)
                if self.step % self.cfg.log.every == 0:
                    meter.restart()  # samples/s measures training, not checkpoints, samples or evals
                if stopping:
                    bar.close()
                    return {"step": self.step, "losses": meter.losses, "stopped": True}
        bar.close()
        if self.last_saved != self.step and size is not None:
            self.save(size)
        return {"step": self.step, "losses": meter.losses, "stopped": False}

    def open_logs(self) -> CsvLog | None:
        """log.csv (and eval.csv when evals are on) on the main process, continued from ``self.step`` on resume."""
        if not self.world.main:
            return None
        if self.cfg.log.eval_every:
            self.eval_log = CsvLog(self.out / "eval.csv", self.EVAL_FIELDS, resume_step=self.step)
        return CsvLog(self.out / "log.csv", LOG_FIELDS, resume_step=self.step)

    def progress_bar(self, total: int, initial: int, desc: str, **kw):
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc, disable=not (self.progress and self.world.main),
                    dynamic_ncols=True, **kw)

    def pending_stages(self):
        """(index, stage, first global step, end step) of every stage that still has steps to run."""
        start = 0
        for k, stage in enumerate(self.cfg.stages):
            end = start + stage.steps
            if self.step < end:
                yield k, stage, start, end
            start = end

    def prepare_stage(self, k: int, stage) -> Schedule:
        """The stage's batch schedule, with its data preprocessed (Ray loader) and encoded (cache) up front."""
        cfg = self.cfg
        buckets = stage_buckets(stage, self.multiple)
        schedule = Schedule(self.records, stage.mixture, buckets, stage.batch_size or cfg.batch_size, stage.steps,
                            cfg.seed, k)
        if cfg.loader == "ray":
            from .raydata import preprocess

            preprocess(self.records, schedule.names, buckets)
        if cfg.cache:
            # a fixed order (identical on resume), only the sources the stage draws from
            todo = self.encoders.uncached(self.warm_keys(schedule.names, buckets))
            with self.progress_bar(len(todo), 0, f"encoding {stage.name}", unit="img", leave=False) as enc_bar:
                self.encoders.warm(todo, enc_bar.update)
        return schedule

    def log_window(self, log: CsvLog | None, bar, meter: "Meter", stage: str, out: dict) -> None:
        """One log.csv row and the progress bar's figures: the loss averaged over the window, samples/s."""
        avg, sps = meter.window_mean(), meter.samples_per_s()
        if log:
            log.write({"step": self.step, "stage": stage, "source": out["source"], "bucket": out["bucket"],
                       "loss": f"{out['loss']:.6g}", "loss_avg": f"{avg:.6g}", "lr": f"{out['lr']:.3g}",
                       "grad_norm": f"{out['grad_norm']:.4g}", "samples_per_s": f"{sps:.1f}",
                       "elapsed_s": f"{meter.elapsed():.1f}"})
        bar.set_postfix(loss=f"{avg:.4f}", samples_s=f"{sps:.1f}", stage=stage)
        meter.new_window()

    def should_stop(self, stop_at: int | None, max_minutes: float | None, t_start: float) -> bool:
        if stop_at is not None and self.step >= stop_at:
            return True
        # clocks differ between processes: any one past the limit stops them all at the same step
        return max_minutes is not None and distributed.any_true(
            time.perf_counter() - t_start >= 60 * max_minutes, self.world)

    def periodic(self, size: tuple[int, int], log: CsvLog | None, force_save: bool) -> None:
        """What runs every so many steps: checkpoint (and the loss curve), sample grid, eval."""
        lg, done = self.cfg.log, self.step
        if done % lg.checkpoint_every == 0 or done == self.total or force_save:
            self.save(size)
            self.last_saved = done
            if log:
                plot_curve([(float(r["step"]), float(r["loss_avg"])) for r in log.rows()], self.out / "loss.png",
                           title="flow-matching loss (mean over each log window)")
        if lg.sample_every and done % lg.sample_every == 0:
            self.samples(size)
        if lg.eval_every and done % lg.eval_every == 0:
            self.evaluate(size)


class Meter:
    """Losses of this process's steps, and the loss and samples/s of the current log window."""

    def __init__(self):
        self.t_start = self.t = time.perf_counter()
        self.losses, self.window, self.samples = [], [], 0

    def add(self, loss: float, n: int) -> None:
        self.losses.append(loss)
        self.window.append(loss)
        self.samples += n

    def window_mean(self) -> float:
        return sum(self.window) / len(self.window)

    def samples_per_s(self) -> float:
        return self.samples / max(time.perf_counter() - self.t, 1e-9)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def new_window(self) -> None:
        self.window, self.samples = [], 0
        self.t = time.perf_counter()

    def restart(self) -> None:
        self.t = time.perf_counter()


def run(cfg: PretrainConfig, out=None, resume: bool = False, stop_at: int | None = None, progress: bool = True,
        max_minutes: float | None = None) -> dict:
    """Trains per the config; writes OUT/model, OUT/trainer_state.safetensors, OUT/log.csv, OUT/loss.png,
    OUT/samples/. Returns {"step", "losses" (this process's steps), "stopped"}."""
    from . import rundir

    return rundir.run(Trainer, cfg, out, resume, stop_at=stop_at, progress=progress, max_minutes=max_minutes)
