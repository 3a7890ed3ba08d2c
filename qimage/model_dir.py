"""Contract 1: a model is a directory in diffusers' QwenImagePipeline layout.

    MODEL/model_index.json, transformer/, vae/, text_encoder/, tokenizer/, scheduler/

``write_model_dir`` writes one (random-initialised from a preset, or from given components); ``check_model_dir``
turns every way a directory can be wrong into one clear ``UserError``; ``load_components`` loads it with qimage's MMDiT
and diffusers' / transformers' classes for the rest. The real Qwen-Image checkpoint is such a directory.
"""
from __future__ import annotations

import json
from pathlib import Path

from qimage.errors import UserError

# The toy trained by `qimage train recipe toy` (docs/toy.md), shipped inside the package: the default model of
# `qimage generate`, `qimage eval` and `qimage demo`.
SHIPPED_TOY = Path(__file__).resolve().parent / "toy"
# The edit toy trained from it by `qimage train recipe toy-edit` (docs/edit.md): the default of `qimage edit`.
SHIPPED_EDIT_TOY = Path(__file__).resolve().parent / "toy-edit"
COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
MODEL_INDEX = {
    "_class_name": "QwenImagePipeline",
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
    "text_encoder": ["transformers", "Qwen2_5_VLForConditionalGeneration"],
    "tokenizer": ["transformers", "Qwen2Tokenizer"],
    "transformer": ["diffusers", "QwenImageTransformer2DModel"],
    "vae": ["diffusers", "AutoencoderKLQwenImage"],
}
EDIT_MODEL_INDEX = {**MODEL_INDEX, "_class_name": "QwenImageEditPipeline",
                    "processor": ["transformers", "Qwen2VLProcessor"]}
_CONFIG_FILE = {"transformer": "config.json", "vae": "config.json", "text_encoder": "config.json",
                "tokenizer": "tokenizer_config.json", "scheduler": "scheduler_config.json"}


def resolve_model(path=None) -> Path:
    """`path` checked as a model directory; None means the shipped toy."""
    if path is None:
        if not (SHIPPED_TOY / "model_index.json").is_file():
            raise UserError("no shipped toy model in this install; pass --model DIR")
        path = SHIPPED_TOY
    return check_model_dir(path)


def check_model_dir(path) -> Path:
    """The directory, if it has the layout; else a UserError naming the first thing missing or malformed."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"model directory {root} does not exist (create one with `qimage init {root} --preset tiny`)")
    if not (root / "model_index.json").is_file():
        raise UserError(f"{root} is not a model directory: no model_index.json")
    _check_json(root / "model_index.json")
    for comp in COMPONENTS:
        cfg = root / comp / _CONFIG_FILE[comp]
        if not cfg.is_file():
            raise UserError(f"{root} is missing {comp}/{_CONFIG_FILE[comp]}")
        _check_json(cfg)
    for comp in ("transformer", "vae", "text_encoder"):
        if not any((root / comp).glob("*.safetensors")):
            raise UserError(f"{root}/{comp} has no .safetensors weights")
    return root


def _check_json(path: Path) -> None:
    try:
        json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is not valid JSON: {e}") from None


def load_components(path, device="cpu", dtype=None) -> dict:
    """transformer (qimage MMDiT), vae, text_encoder, tokenizer, scheduler; weights from safetensors only."""
    import torch
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    from qimage.models import MMDiT

    root = check_model_dir(path)
    dtype = dtype or torch.float32
    try:
        comps = {
            "transformer": MMDiT.from_pretrained(root / "transformer", torch_dtype=dtype, use_safetensors=True),
            "vae": AutoencoderKLQwenImage.from_pretrained(root / "vae", torch_dtype=dtype, use_safetensors=True),
            "text_encoder": Qwen2_5_VLForConditionalGeneration.from_pretrained(
                root / "text_encoder", dtype=dtype, use_safetensors=True
            ),
            "tokenizer": AutoTokenizer.from_pretrained(root / "tokenizer"),
            "scheduler": FlowMatchEulerDiscreteScheduler.from_pretrained(root / "scheduler"),
        }
        if (root / "processor").is_dir():
            from qimage.processor import load_processor

            comps["processor"] = load_processor(root / "processor")
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load the model in {root}: {first}") from None
    for name in ("transformer", "vae", "text_encoder"):
        comps[name].to(device).eval().requires_grad_(False)
    return comps


def write_model_dir(path, transformer, vae, text_encoder, tokenizer, scheduler, processor=None,
                    pipeline_class: str | None = None) -> Path:
    """Saves the five components (six with an edit model's processor) and model_index.json, atomically.

    Everything is written into a sibling temporary folder that replaces ``path`` by renames only, so a reader (or a
    crash) never sees half a model: ``path`` is either the old directory or the complete new one.
    """
    import os
    import shutil
    import tempfile

    import diffusers

    root = Path(path)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        transformer.save_pretrained(tmp / "transformer", safe_serialization=True)
        vae.save_pretrained(tmp / "vae", safe_serialization=True)
        text_encoder.save_pretrained(tmp / "text_encoder", safe_serialization=True)
        tokenizer.save_pretrained(tmp / "tokenizer")
        scheduler.save_pretrained(tmp / "scheduler")
        index = dict(MODEL_INDEX)
        if processor is not None:
            processor.save_pretrained(tmp / "processor")
            index = {**EDIT_MODEL_INDEX, "_class_name": pipeline_class or EDIT_MODEL_INDEX["_class_name"]}
        (tmp / "model_index.json").write_text(
            json.dumps({**index, "_diffusers_version": diffusers.__version__}, indent=2) + "\n"
        )
        os.chmod(tmp, 0o755)
        old = None
        if root.exists():
            old = root.with_name(f".{root.name}.old-{os.getpid()}")
            os.replace(root, old)
        os.replace(tmp, root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def init_model_dir(path, preset: str = "tiny", seed: int = 0, zero_cond_t: bool = False):
    """A complete random-initialised model of a preset (PyTorch's default init, as a fresh diffusers model)."""
    import torch
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler
    from transformers import Qwen2_5_VLForConditionalGeneration

    from qimage.models import MMDiT
    from qimage.presets import PRESETS, SCHEDULER_CONFIG
    from qimage.text_encoder import make_ngram_encoder, tiny_text_encoder_config
    from qimage.tokenizer import build_byte_tokenizer, build_edit_tokenizer

    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} exists and is a file, not a directory; choose a new directory")
    if root.exists() and any(root.iterdir()):
        raise UserError(f"{root} exists and is not empty; choose a new directory")
    if zero_cond_t and not p.edit:
        raise UserError("--zero-cond-t is an edit model option; choose an edit preset (tiny-edit, toy-edit)")
    tokenizer = build_edit_tokenizer() if p.edit else build_byte_tokenizer()
    torch.manual_seed(seed)
    transformer = MMDiT(**p.transformer, zero_cond_t=zero_cond_t)
    vae = AutoencoderKLQwenImage(**p.vae)
    text_encoder = Qwen2_5_VLForConditionalGeneration(
        tiny_text_encoder_config(**p.text_encoder, vocab_size=len(tokenizer)))
    if p.text_encoder_design == "ngram":
        # rows of the text-to-image tokens are the same for any vocabulary size: an edit toy's encoder is the toy's
        make_ngram_encoder(text_encoder, seed=seed)
    scheduler = FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG)
    processor = None
    if p.edit:
        from qimage.processor import make_processor

        processor = make_processor(tokenizer)
    return write_model_dir(root, transformer, vae, text_encoder, tokenizer, scheduler, processor)
