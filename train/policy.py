"""The policy being post-trained: the pipeline's transformer, fully or through a peft LoRA, with its reference and EMA.

    full fine-tune   every transformer weight trains; the reference policy is a frozen copy of the start
    LoRA (rank r)    peft adapters on ``lora.targets`` (B initialised to zero: the policy starts as the base); the
                     reference policy is the same module with the adapters disabled

Whatever is active, the pipeline's ``transformer`` attribute is what its velocity calls, so rollouts, recomputation,
the reference and the saved weights are all swapped in here. A save writes a complete model directory (EMA weights
when an EMA is kept, LoRA merged) and, for LoRA, the adapter as ``OUT/lora/pytorch_lora_weights.safetensors``, which
``diffusers.QwenImagePipeline.load_lora_weights`` loads.
"""
from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import torch


class Policy:
    def __init__(self, pipe, lora, ema_decay: float, world, device):
        from .ema import make_ema

        self.pipe, self.world, self.lora = pipe, world, lora
        model = pipe.transformer
        model.requires_grad_(False)
        if lora.rank > 0:
            from peft import LoraConfig

            model.add_adapter(LoraConfig(r=lora.rank, lora_alpha=lora.alpha or lora.rank,
                                         target_modules=list(lora.targets), init_lora_weights=True))
            self.ref = None
        else:
            model.requires_grad_(True)
            self.ref = copy.deepcopy(model).requires_grad_(False).eval()
        self.model = model
        self.ema = make_ema(model, ema_decay) if ema_decay > 0 else None
        self.ddp = model
        if world.size > 1:
            from torch.nn.parallel import DistributedDataParallel

            # find_unused_parameters: the last block's text stream is never used; a static graph would do, but it
            # does not survive no_sync's several backwards per optimiser step
            self.ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                               find_unused_parameters=True)

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def eval_mode(self) -> None:
        """Rollouts: the raw module (what DDP wraps computes the same forward)."""
        self.pipe.transformer = self.model

    def train_mode(self) -> None:
        self.pipe.transformer = self.ddp

    def sync(self, now: bool):
        """DDP all-reduces gradients only on a minibatch's last backward."""
        return contextlib.nullcontext() if now or self.ddp is self.model else self.ddp.no_sync()

    @contextlib.contextmanager
    def reference(self):
        """The reference policy in the pipeline for the duration."""
        held = self.pipe.transformer
        if self.ref is None:
            self.model.disable_adapters()
            self.pipe.transformer = self.model
        else:
            self.pipe.transformer = self.ref
        try:
            yield
        finally:
            if self.ref is None:
                self.model.enable_adapters()
            self.pipe.transformer = held

    @contextlib.contextmanager
    def saved_weights(self):
        """The weights a save writes (EMA when kept) in the pipeline, for sample grids and evals."""
        held = self.pipe.transformer
        self.pipe.transformer = self.ema.module if self.ema is not None else self.model
        try:
            yield
        finally:
            self.pipe.transformer = held

    def after_step(self) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    # --- state -----------------------------------------------------------------------------------------------
    def _trained_state(self, module) -> dict:
        if self.lora.rank > 0:
            from peft.utils import get_peft_model_state_dict

            return get_peft_model_state_dict(module)
        return module.state_dict()

    def state(self) -> dict:
        out = {"policy": self._trained_state(self.model), "torch_rng": torch.get_rng_state()}
        if self.ema is not None:
            out["ema"] = self.ema.state_dict()
        return out

    def load_state(self, s: dict) -> None:
        if self.lora.rank > 0:
            from peft.utils import set_peft_model_state_dict

            set_peft_model_state_dict(self.model, s["policy"])
        else:
            self.model.load_state_dict(s["policy"])
        if self.ema is not None:
            self.ema.load_state_dict(s["ema"])
        torch.set_rng_state(s["torch_rng"])

    def save(self, root: Path, source_dir: Path) -> None:
        """A complete model directory at root (settings copied from the source model) and, for LoRA, root/lora."""
        from qimage.model_dir import write_model_dir
        from qimage.pipeline import SETTINGS_FILE

        from .checkpoint import write_json_atomic

        weights = self.ema.module if self.ema is not None else self.model
        p = self.pipe
        merged = weights
        if self.lora.rank > 0:
            merged = copy.deepcopy(weights)
            merged.fuse_lora()
            merged.unload_lora()
        write_model_dir(root, merged, p.vae, p.text_encoder, p.tokenizer, p.scheduler)  # replaces root whole
        if self.lora.rank > 0:
            self._save_lora(root / "lora", weights)
        settings = Path(source_dir) / SETTINGS_FILE
        if settings.is_file():
            import json

            write_json_atomic(root / SETTINGS_FILE, json.loads(settings.read_text()))

    def _save_lora(self, folder: Path, module) -> None:
        from diffusers import QwenImagePipeline
        from peft.utils import get_peft_model_state_dict

        folder.mkdir(parents=True, exist_ok=True)
        QwenImagePipeline.save_lora_weights(folder, transformer_lora_layers=get_peft_model_state_dict(module),
                                            safe_serialization=True)
