"""Edit training: Qwen-Image-Edit's objective, flow matching on the target with the source image as condition.

One step, for pairs (source, instruction, target):

    x0    = VAE(target)                  posterior sample, as pretraining
    cond  = pack(VAE(source).mode)       clean condition tokens, frame index 1 in MSRoPE (as ``qimage.edit``)
    c     = Qwen2.5-VL(EDIT_TEMPLATE(instruction), source)[64:]      " " with the same image when dropped (CFG)
    x_s   = (1 - s) x0 + s eps
    v     = MMDiT([x_s ; cond], c)[:, :n_target]         only the target tokens' velocity, as at inference
    loss  = |v - (eps - x0)|^2           weighted per latent cell by `loss` (``qimage.train.regions``: text
                                         quads, and with ``changed_weight`` the cells the edit changes)

The model starts from a text-to-image model (``model.transformer``: its transformer weights; ``model.dir`` an edit
model directory giving the VAE, the VL text encoder and the processor), as Qwen-Image-Edit starts from Qwen-Image.
Everything else is pretraining's trainer: the schedule, checkpoints and exact resume, EMA, DDP, the CSV log and
curves. Samples are grids of held-out pairs, one row per pair: source | target | generated.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from qimage import vae as vae_ops
from qimage.errors import UserError

from . import flow
from . import regions
from .config import FlowLoss, Log, PretrainConfig
from .data import IMAGE_SUFFIXES, Record, read_source
from .encode import FrozenEncoders, pad_rows
from .pretrain import EMPTY_CAPTION, Trainer


@dataclass
class EditLog(Log):
    prompts: list[str] = field(default_factory=list)  # unused: edit samples are held-out pairs
    sample_pairs: int = 6  # held-out pairs in each sample grid
    eval_pairs: int = 36  # held-out pairs of `qimage eval --edit` at each eval_every
    eval_kinds: list[str] = field(default_factory=lambda: ["words"])  # synthesisers of the held-out pairs


@dataclass
class EditLoss(FlowLoss):
    changed_weight: float = 1.0  # inside the latent cells where source and target differ (1: the reference loss)


@dataclass
class EditConfig(PretrainConfig):
    out: str = "runs/edit"
    loss: EditLoss = field(default_factory=EditLoss)
    log: EditLog = field(default_factory=EditLog)


def read_pairs(src, name: str = "") -> list[Record]:
    """Edit pairs of a source: a `qimage synth --edit-pairs` folder or `qimage data run` output with pairs.
    Each record is the source image with the instruction as its caption and the target in ``record.target``."""
    root = Path(src.path)
    if root.is_dir() and not any(root.glob("*.parquet")) and not (root / "kept").is_dir():
        records = _folder_pairs(root)
    else:
        records = [r for r in read_source(src, name) if r.target is not None]
        for r in records:
            r.caption = r.instruction
    if src.limit:
        records = records[: src.limit]
    if not records:
        raise UserError(f"source {name!r} ({root}) holds no edit pairs (make some with `qimage synth KIND --edit-pairs`)")
    return records


def _folder_pairs(root: Path) -> list[Record]:
    """The edit pairs of a folder of samples, by the data pipeline's own reading of the convention
    (qimage.datapipe.pairs: the declared target, resolved against the source's folder; the pair's instruction)."""
    from PIL import Image

    from qimage.datapipe.pairs import declared_target, edit_info, resolve_target

    records = []
    for meta_file in sorted(root.glob("*.json")):
        raw = meta_file.read_bytes()
        declared = declared_target(raw)
        if declared is None:
            continue
        source = next((meta_file.with_suffix(s) for s in IMAGE_SUFFIXES if meta_file.with_suffix(s).is_file()), None)
        rel, why = resolve_target(meta_file.name, declared)
        if why is not None:
            raise UserError(f"{meta_file}: {why}")
        target = root / rel
        if source is None or not target.is_file():
            raise UserError(f"{meta_file}: edit pair without its {'source' if source is None else 'target'} image")
        try:
            with Image.open(source) as a, Image.open(target) as b:
                (w, h), target_size = a.size, b.size
        except OSError as e:  # PIL's UnidentifiedImageError is one
            raise UserError(f"{meta_file}: cannot read the pair's images: {e}") from None
        if (w, h) != target_size:
            raise UserError(f"{meta_file}: source {(w, h)} and target {target_size} differ in size")
        meta = json.loads(raw.decode("utf-8", errors="replace"))
        tmeta_file = target.with_suffix(".json")
        try:
            tmeta = json.loads(tmeta_file.read_text(encoding="utf-8")) if tmeta_file.is_file() else {}
        except ValueError as e:
            raise UserError(f"{tmeta_file}: not valid JSON ({e})") from None
        _, instruction = edit_info(meta, tmeta)
        if not instruction:
            raise UserError(f"{meta_file}: edit pair without an instruction")
        records.append(Record(source.stem, instruction, w, h, path=str(source), meta=meta,
                              target=Record(source.stem + "/target", "", w, h, path=str(target), meta=tmeta),
                              instruction=instruction))
    return records


class EditEncoders(FrozenEncoders):
    """Pretraining's caches plus the edit conditioning: condition latents (the posterior mode) and VL embeddings of
    (instruction, source), each computed once per pair."""

    def __init__(self, vae, text_encoder, tokenizer, processor, device, cache: bool, condition_area: int):
        super().__init__(vae, text_encoder, tokenizer, device, cache)
        self.processor, self.condition_area = processor, condition_area
        self._edit_prompts: dict = {}

    def condition(self, keyed, bucket) -> torch.Tensor:
        return self.latents([(("source", k), r) for k, r in keyed], bucket, None)

    def edit_prompts(self, keyed, instructions: list[str], bucket):
        from qimage.edit import resize_to_area
        from qimage.text_encoder import encode_edit_prompts

        from .buckets import fit

        rows = []
        for (k, r), text in zip(keyed, instructions):
            e = self._edit_prompts.get((k, text))
            if e is None:
                vl = resize_to_area(fit(r.load(), bucket), self.condition_area)  # what EditPipeline.inputs gives
                e = encode_edit_prompts(self.text_encoder, self.processor, [text], [vl], self.device)[0][0].float()
                if self.cache:
                    self._edit_prompts[(k, text)] = e
            rows.append(e)
        return pad_rows(rows)


class EditTrainer(Trainer):
    NAME = "edit"
    EVAL_FIELDS = ["step", "word_exact", "color_right", "psnr_untouched"]

    def __init__(self, cfg: EditConfig, out: Path, world, device, progress: bool = True):
        from qimage.edit import EditSettings, check_edit_model

        check_edit_model(cfg.model.dir)
        super().__init__(cfg, out, world, device, progress)
        self.settings = EditSettings.read(cfg.model.dir)
        index = json.loads((Path(cfg.model.dir) / "model_index.json").read_text())
        self.comps["pipeline_class"] = index["_class_name"]
        c = self.comps
        self.encoders = EditEncoders(c["vae"], c["text_encoder"], c["tokenizer"], c["processor"], device, cfg.cache,
                                     self.settings.condition_area)
        self._eval_pairs = None
        self._changed: dict = {}

    def read_records(self, cfg) -> dict:
        return {name: read_pairs(src, name) for name, src in cfg.sources.items()}

    def warm_keys(self, names, buckets) -> list:
        from .buckets import assign

        out = []
        for n in names:
            for i, r in enumerate(self.records[n]):
                b = assign(r.width, r.height, buckets)
                out += [((n, i), r.target, b), (("source", (n, i)), r, b)]
        return out

    def batch_loss(self, keyed, bucket, drop, s, eps, noise) -> torch.Tensor:
        from qimage.device import autocast

        w, h = bucket[0] // self.vae_scale, bucket[1] // self.vae_scale
        x0 = self.encoders.latents([(k, r.target) for k, r in keyed], bucket, eps if self.cfg.latent_sample else None)
        cond = vae_ops.pack(self.encoders.condition(keyed, bucket))
        texts = [EMPTY_CAPTION if d else r.caption for d, (_, r) in zip(drop, keyed)]
        embeds, mask = self.encoders.edit_prompts(keyed, texts, bucket)
        xt, target = flow.interpolate(vae_ops.pack(x0), vae_ops.pack(noise), s)
        shapes = [[(1, h // 2, w // 2), (1, h // 2, w // 2)]] * xt.shape[0]
        with autocast(self.device):
            pred = self.ddp(torch.cat([xt, cond], dim=1), embeds, mask, s, shapes, return_dict=False)[0]
        return flow.loss(pred[:, : xt.shape[1]], target, self.edit_weights(keyed, bucket, x0.shape[1]))

    def edit_weights(self, keyed, bucket, channels: int) -> torch.Tensor | None:
        """Packed loss weights, `w_edit` of ``qimage.train.regions``; None when every weight is 1."""
        base = self.region_weights([r.target for _, r in keyed], bucket, channels)
        extra = self.cfg.loss.changed_weight - 1
        if extra == 0:
            return base
        masks = []
        for k, r in keyed:
            m = self._changed.get((k, bucket))
            if m is None:
                m = regions.changed_latent_mask(r.load(), r.target.load(), bucket, self.vae_scale)
                if self.encoders.cache:  # as the latents: a float per latent cell, decoded once per pair
                    self._changed[(k, bucket)] = m
            masks.append(m)
        w = extra * torch.stack(masks).expand(-1, channels, -1, -1)
        w = vae_ops.pack(w.contiguous()).to(self.device)
        return (1 + w) if base is None else base + w

    def model_settings(self, size) -> dict:
        return {**super().model_settings(size), "condition_area": self.settings.condition_area}

    def pipeline(self):
        from qimage.edit import EditPipeline

        c = self.comps
        pipe = EditPipeline(self.ema.module, c["vae"], c["text_encoder"], c["tokenizer"], c["scheduler"],
                            c["processor"], device=self.device, settings=self.settings)
        pipe.settings.negative = EMPTY_CAPTION
        return pipe

    def eval_pairs(self, size):
        if self._eval_pairs is None:
            from .edit_eval import heldout_pairs

            lg = self.cfg.log
            self._eval_pairs = heldout_pairs(lg.eval_kinds, max(lg.eval_pairs, lg.sample_pairs), lg.sample_seed, size)
        return self._eval_pairs

    def samples(self, size) -> None:
        if not self.world.main or not self.cfg.log.sample_pairs:
            return
        from .edit_eval import edit_grid, run_edits

        lg = self.cfg.log
        pairs = self.eval_pairs(size)[: lg.sample_pairs]
        edited = run_edits(self.pipeline(), pairs, lg.sample_steps, lg.sample_cfg, lg.sample_seed)
        (self.out / "samples").mkdir(exist_ok=True)
        edit_grid(pairs, edited).save(self.out / "samples" / f"step-{self.step:06d}.png")

    def evaluate(self, size) -> None:
        if not self.world.main:
            return
        from .edit_eval import evaluate_edits, plot_edit_eval

        lg = self.cfg.log
        summary = evaluate_edits(self.pipeline(), self.eval_pairs(size)[: lg.eval_pairs], lg.sample_steps,
                                 lg.sample_cfg, lg.sample_seed)[0]
        self.eval_log.write({"step": self.step, **{k: f"{summary[k]:.4f}" for k in self.EVAL_FIELDS[1:] if k in summary}})
        plot_edit_eval(self.eval_log.rows(), self.out / "eval.png")


def run(cfg: EditConfig, out=None, resume: bool = False, stop_at: int | None = None, progress: bool = True,
        max_minutes: float | None = None) -> dict:
    """Trains per the config; writes OUT/model (an edit model directory), checkpoints, log.csv, loss.png, samples/."""
    from . import rundir

    return rundir.run(EditTrainer, cfg, out, resume, stop_at=stop_at, progress=progress, max_minutes=max_minutes)
