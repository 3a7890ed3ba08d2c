"""Training configs: dataclasses filled from YAML, strictly (``qimage.config``, the loader every qimage file uses).

A config file is a YAML mapping whose keys are the fields of the dataclasses below (nested mappings for nested
dataclasses, lists for lists of them). Every key that is not a field is an error naming the key and the field it
could have been, and every value is checked against the field's type, so a typo never silently trains with a default.
After loading, ``check`` / ``check_post`` test what types cannot say (positive steps, known sources, ranges).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from qimage.config import parse as from_dict  # noqa: F401 (the name configs are built with in code)
from qimage.config import read_yaml
from qimage.errors import UserError


@dataclass
class Source:
    """One dataset: a folder written by `qimage synth` (ID.png + ID.txt + ID.json) or `qimage data run` output
    (OUT/kept/*.parquet, or a folder of .parquet shards). `limit` keeps the first N samples (sorted order)."""

    path: str = ""
    limit: int = 0
    # how the caption reaches the text encoder: "full" as written; "quoted" only the text inside the first pair of
    # double quotes (a short-caption curriculum stage), falling back to the full caption when there is none
    caption: str = "full"


@dataclass
class Stage:
    """One curriculum stage: `steps` optimiser steps on batches from `mixture` (source name -> weight) at
    `resolution` (images are bucketed by aspect ratio at about resolution^2 pixels) or at the explicit `buckets`."""

    name: str = "stage"
    steps: int = 100
    resolution: int = 64
    buckets: list[str] = field(default_factory=list)  # ["128x64", ...]: overrides resolution
    mixture: dict[str, float] = field(default_factory=dict)  # empty: every source, equal weight
    batch_size: int = 0  # 0: the run's batch_size


@dataclass
class Model:
    dir: str = ""  # a model directory (`qimage init DIR --preset toy` writes one): VAE, text encoder, tokenizer, ...
    # (`shipped-toy`: the text-to-image toy inside the package)
    init: str = "pretrained"  # pretrained (the directory's transformer weights) | adaln-zero | default
    vae: str = ""  # optional model directory whose vae/ replaces the one in `dir` (e.g. a `qimage train vae` output)
    transformer: str = ""  # optional model directory whose transformer/ weights start the run (an edit model from
    # its text-to-image model); `init` pretrained only. `shipped-toy` names the toy inside the package for both.


@dataclass
class Optim:
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.01
    eps: float = 1e-8
    warmup_steps: int = 100
    schedule: str = "constant"  # constant | cosine (after warmup, over all stages)
    min_lr_ratio: float = 0.1  # cosine floor, as a fraction of lr
    grad_clip: float = 1.0
    # one kernel over all parameters: on a CPU ~4x less optimiser time than the per-tensor loop (docs/benchmarks.md);
    # it rounds differently, so switching it changes a run's bytes
    fused: bool = False


@dataclass
class Timesteps:
    """sigma = sigmoid(u), u ~ N(mean + mu, std); mu from the scheduler config (resolution shift) when `shift`."""

    mean: float = 0.0
    std: float = 1.0
    shift: bool = True


@dataclass
class Log:
    every: int = 10  # CSV row and progress-bar update every N steps
    checkpoint_every: int = 500
    sample_every: int = 500  # 0: never
    prompts: list[str] = field(default_factory=lambda: ['On a white background, displaying black text "QWEN".'])
    sample_steps: int = 20
    sample_cfg: float = 4.0
    sample_seed: int = 0
    eval_every: int = 0  # `qimage eval` metrics of the EMA weights every N steps into eval.csv (0: never)
    eval_words: int = 24
    eval_scenes: int = 16


@dataclass
class FlowLoss:
    """Per-pixel weights of the flow-matching loss (`qimage.train.regions`): 1 everywhere is the reference loss."""

    text_weight: float = 1.0  # inside the metadata's text quads
    object_weight: float = 1.0  # inside a scenes object's box


@dataclass
class PretrainConfig:
    out: str = "runs/pretrain"
    seed: int = 0
    device: str = "auto"
    model: Model = field(default_factory=Model)
    sources: dict[str, Source] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    batch_size: int = 32  # global, over all DDP processes
    optim: Optim = field(default_factory=Optim)
    timesteps: Timesteps = field(default_factory=Timesteps)
    caption_dropout: float = 0.1  # empty caption this often, so true CFG has an unconditional model
    loss: FlowLoss = field(default_factory=FlowLoss)
    ema_decay: float = 0.995
    latent_sample: bool = True  # draw z from the VAE posterior each step (else its mean)
    cache: bool = True  # encode every latent and caption once per stage with the frozen VAE / text encoder
    gradient_checkpointing: bool = False
    loader: str = "local"  # local (in-process) | ray (decode/resize in Ray Data workers)
    log: Log = field(default_factory=Log)


@dataclass
class VaeLoss:
    l1: float = 1.0
    l2: float = 1.0
    kl: float = 1e-4
    text_weight: float = 5.0  # pixel weight inside the metadata's text quads (reconstructing glyphs is the point)
    object_weight: float = 1.0  # pixel weight inside a scenes object's box (small objects' colours)


@dataclass
class VaeConfig:
    out: str = "runs/vae"
    seed: int = 0
    device: str = "auto"
    model: Model = field(default_factory=Model)  # `dir` gives the VAE config (and, with init pretrained, weights)
    sources: dict[str, Source] = field(default_factory=dict)
    size: str = "128x64"
    steps: int = 1000
    batch_size: int = 16
    optim: Optim = field(default_factory=lambda: Optim(lr=1e-3, warmup_steps=50, betas=[0.9, 0.99], weight_decay=0.0))
    loss: VaeLoss = field(default_factory=VaeLoss)
    holdout: int = 32  # samples of every source kept out of training for PSNR / OCR / scenes score before and after
    ocr: bool = True  # OCR read-back of held-out reconstructions (rapidocr) in the report
    stats_samples: int = 256  # images encoded to compute latents_mean / latents_std
    log_every: int = 20


def load(cls, path):
    """Reads a YAML config file into `cls`, checking it (see `check`)."""
    cfg = read_yaml(cls, path)
    check(cfg)
    return cfg


def parse_size(text: str, where: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise UserError(f"{where}: size must look like 128x64, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise UserError(f"{where}: size must be positive, got {text!r}")
    return w, h


def _positive(value, where: str):
    if value <= 0:
        raise UserError(f"{where} must be positive, got {value}")


def check_optim(o: Optim) -> None:
    """The optimiser keys every trainer shares: a positive LR, two betas in [0, 1), a known schedule."""
    _positive(o.lr, "optim.lr")
    if len(o.betas) != 2 or not all(0 <= b < 1 for b in o.betas):
        raise UserError(f"optim.betas must be two numbers in [0, 1), got {o.betas}")
    if o.schedule not in ("constant", "cosine"):
        raise UserError(f"optim.schedule must be constant or cosine, got {o.schedule!r}")


def check(cfg) -> None:
    """Value checks that types cannot express; each failure is one line naming the key."""
    if not cfg.sources:
        raise UserError("config: `sources` is empty; name at least one data folder")
    for name, src in cfg.sources.items():
        if not src.path:
            raise UserError(f"config: sources.{name}.path is missing")
        if src.caption not in ("full", "quoted"):
            raise UserError(f"config: sources.{name}.caption must be full or quoted, got {src.caption!r}")
    if not cfg.model.dir:
        raise UserError("config: model.dir is missing (create one with `qimage init DIR --preset toy`)")
    if cfg.model.init not in ("pretrained", "adaln-zero", "default"):
        raise UserError(f"config: model.init must be pretrained, adaln-zero or default, got {cfg.model.init!r}")
    check_optim(cfg.optim)
    _positive(cfg.batch_size, "batch_size")
    for f in dataclasses.fields(cfg.loss):  # every trainer's region weights (an edit config has one more)
        if f.name.endswith("_weight"):  # a zero or negative weight would reward errors there
            _positive(getattr(cfg.loss, f.name), f"loss.{f.name}")
    if isinstance(cfg, PretrainConfig):
        if not cfg.stages:
            raise UserError("config: `stages` is empty; give at least one stage with steps")
        for i, st in enumerate(cfg.stages):
            _positive(st.steps, f"stages[{i}].steps")
            _positive(st.resolution, f"stages[{i}].resolution")
            for b in st.buckets:
                parse_size(b, f"stages[{i}].buckets")
            for name, w in st.mixture.items():
                if name not in cfg.sources:
                    raise UserError(f"stages[{i}].mixture: unknown source {name!r} (sources: {', '.join(cfg.sources)})")
                if w < 0:
                    raise UserError(f"stages[{i}].mixture.{name} must be >= 0, got {w}")
            if st.mixture and sum(st.mixture.values()) <= 0:
                raise UserError(f"stages[{i}].mixture has no positive weight")
        if not 0 <= cfg.caption_dropout < 1:
            raise UserError(f"caption_dropout must be in [0, 1), got {cfg.caption_dropout}")
        if not 0 <= cfg.ema_decay < 1:
            raise UserError(f"ema_decay must be in [0, 1), got {cfg.ema_decay}")
        if cfg.loader not in ("local", "ray"):
            raise UserError(f"loader must be local or ray, got {cfg.loader!r}")
        _positive(cfg.timesteps.std, "timesteps.std")
    else:
        parse_size(cfg.size, "size")
        _positive(cfg.steps, "steps")


# --- post-training (train/grpo.py, train/dpo.py) ---------------------------------------------------------------------
@dataclass
class Lora:
    """LoRA through peft (rank 0: full fine-tune). The reference policy is the base with the adapter disabled."""

    rank: int = 0
    alpha: float = 0.0  # 0: alpha = rank
    targets: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj",
                                                         "add_k_proj", "add_v_proj", "to_add_out"])


@dataclass
class PostModel:
    dir: str = ""  # the model to post-train: a model directory; empty: the shipped toy
    lora: Lora = field(default_factory=Lora)


@dataclass
class Prompts:
    """Where rollout prompts come from: `file` (one prompt per line), or shares of the built-in generators:
    `letters` random 4-letter strings and `words` 4-letter English words, both in the eval's caption format and
    never an eval string; `scenes` synth scenes captions with their answer keys (never a held-out combination)."""

    file: str = ""
    letters: float = 0.0
    words: float = 0.0
    scenes: float = 0.0
    size: str = "128x64"  # scenes answer keys are drawn at this size


@dataclass
class Rollout:
    steps: int = 10
    noise_level: float = 0.7  # a in std_s = a sqrt(s / (1 - s))
    cfg: float = 4.0
    window: list[int] = field(default_factory=lambda: [0, 9])  # stochastic and trained steps [start, end)
    micro_batch: int = 32  # images per forward; recomputation uses the same batches (ratio exactly 1)
    # a group's rollouts start from one initial noise (DanceGRPO), each with its own step noise: the reward's spread
    # in a group then comes from the trained transitions alone, not from starts the policy gradient cannot credit
    same_noise: bool = False


@dataclass
class PostLog:
    every: int = 1
    checkpoint_every: int = 10
    sample_every: int = 10
    prompts: list[str] = field(default_factory=lambda: ['On a white background, displaying black text "MILK".'])
    sample_steps: int = 20
    sample_cfg: float = 4.0
    eval_every: int = 0  # held-out eval (words, non-words, scenes) of the saved weights every N steps
    eval_words: int = 24
    eval_nonwords: int = 24
    eval_scenes: int = 24


@dataclass
class PostConfig:
    """What GRPO and DPO configs share."""

    out: str = "runs/post"
    seed: int = 0
    device: str = "auto"
    model: PostModel = field(default_factory=PostModel)
    prompts: Prompts = field(default_factory=lambda: Prompts(letters=1.0))
    reward: str = "ocr"  # ocr | scenes | weighted | module:function
    reward_weights: dict[str, float] = field(default_factory=dict)  # for weighted
    steps: int = 50  # iterations: samples, rewards, one or more optimiser steps
    prompts_per_step: int = 8
    group_size: int = 8  # G samples per prompt
    rollout: Rollout = field(default_factory=Rollout)
    beta: float = 0.0
    optim: Optim = field(default_factory=lambda: Optim(lr=3e-5, warmup_steps=0, weight_decay=0.0))
    ema_decay: float = 0.0  # 0: the saved model is the raw policy
    log: PostLog = field(default_factory=PostLog)


@dataclass
class GrpoConfig(PostConfig):
    out: str = "runs/grpo"
    std: str = "group"  # advantage normaliser: group | global
    adv_clip: float = 5.0
    clip_range: float = 1e-4  # PPO ratio clip
    minibatches: int = 1  # optimiser steps per rollout batch (the first is on-policy: ratio exactly 1)
    objective: str = "flow-grpo"  # flow-grpo (per-step log-probabilities) | awm (advantage-weighted matching)
    timesteps: Timesteps = field(default_factory=Timesteps)  # awm: the levels its matching loss draws


OBJECTIVES = ("flow-grpo", "awm")


@dataclass
class DpoConfig(PostConfig):
    """flow-DPO: `pairs` (offline: a JSONL file or a Pick-a-Pic-like folder of Parquet) or online pairs (the best
    and worst of `group_size` ODE samples per prompt by the reward). `beta` scales the margin (docs/posttrain.md)."""

    out: str = "runs/dpo"
    pairs: str = ""
    beta: float = 500.0
    timesteps: Timesteps = field(default_factory=Timesteps)


def check_post(cfg) -> None:
    """Value checks of a GRPO or DPO config; each failure is one line naming the key."""
    p = cfg.prompts
    offline = isinstance(cfg, DpoConfig) and cfg.pairs
    if not offline and not p.file and p.letters + p.words + p.scenes <= 0:
        raise UserError("config: prompts needs a file or a positive share of letters, words or scenes")
    for key in ("letters", "words", "scenes"):
        if getattr(p, key) < 0:
            raise UserError(f"prompts.{key} must be >= 0, got {getattr(p, key)}")
    parse_size(p.size, "prompts.size")
    check_optim(cfg.optim)
    _positive(cfg.steps, "steps")
    _positive(cfg.prompts_per_step, "prompts_per_step")
    if cfg.group_size < 2:
        raise UserError(f"group_size must be at least 2 (advantages compare samples of one prompt), got {cfg.group_size}")
    r = cfg.rollout
    if r.steps < 2:
        raise UserError(f"rollout.steps must be at least 2, got {r.steps}")
    if len(r.window) != 2 or not 0 <= r.window[0] < r.window[1] <= r.steps - 1:
        raise UserError(f"rollout.window must be [start, end) with 0 <= start < end <= steps - 1 = {r.steps - 1} "
                        f"(the last step is never trained), got {r.window}")
    if r.noise_level <= 0:
        raise UserError(f"rollout.noise_level must be positive (0 is the ODE: no log-probabilities), got {r.noise_level}")
    _positive(r.micro_batch, "rollout.micro_batch")
    if cfg.beta < 0:
        raise UserError(f"beta must be >= 0, got {cfg.beta}")
    if isinstance(cfg, GrpoConfig):
        if cfg.std not in ("group", "global"):
            raise UserError(f"std must be group or global, got {cfg.std!r}")
        _positive(cfg.adv_clip, "adv_clip")
        _positive(cfg.clip_range, "clip_range")
        _positive(cfg.minibatches, "minibatches")
        if cfg.objective not in OBJECTIVES:
            raise UserError(f"objective must be one of {', '.join(OBJECTIVES)}, got {cfg.objective!r}")
        _positive(cfg.timesteps.std, "timesteps.std")
        if (cfg.prompts_per_step * cfg.group_size) % cfg.minibatches:
            raise UserError(f"prompts_per_step x group_size = {cfg.prompts_per_step * cfg.group_size} is not "
                            f"divisible by minibatches = {cfg.minibatches}")
    if isinstance(cfg, DpoConfig):
        _positive(cfg.beta, "beta")
        _positive(cfg.timesteps.std, "timesteps.std")
        if cfg.pairs and not Path(cfg.pairs).exists():
            raise UserError(f"pairs {cfg.pairs} does not exist (a JSONL file or a folder of Parquet pairs)")
    if not 0 <= cfg.ema_decay < 1:
        raise UserError(f"ema_decay must be in [0, 1), got {cfg.ema_decay}")
    if cfg.model.lora.rank < 0:
        raise UserError(f"model.lora.rank must be >= 0, got {cfg.model.lora.rank}")
