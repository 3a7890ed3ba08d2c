"""Qwen-Image-Edit: the input image enters twice, through Qwen2.5-VL for meaning and through the VAE for appearance.

    (W, H)  = calculate_dimensions(area, w / h)               ~area pixels, sides multiples of 32, input's aspect
    embeds  = Qwen2.5-VL(EDIT_TEMPLATE(instruction), image at (W, H)).hidden[-1][64:]
    cond    = pack((VAE.encode(image at (W, H)).mode - mean) / std)
    v       = MMDiT([x_t ; cond], embeds, frames: target 0, condition 1)[:, :n_target]
    output  = sample(v) at (W, H) floored to whole 2x2 latent patches, unless a size is given

as diffusers' ``QwenImageEditPipeline`` (area 1024**2). Several input images follow ``QwenImageEditPlusPipeline``:
each is read by the VL encoder at ~384**2 pixels (one "Picture k:" block each) and by the VAE at ~1024**2, gets frame
index k, and the output takes the last image's size. An edit model directory may set its own areas in qimage.json
(``condition_area``, ``vl_area``; diffusers ignores that file): the toy edits 128x64 images at their own size.
True CFG reads the negative prompt with the same images, as diffusers does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from qimage import vae as vae_ops
from qimage.errors import UserError
from qimage.pipeline import Pipeline, Settings
from qimage.sampling import euler_step, sample
from qimage.text_encoder import encode_edit_prompts

EDIT_AREA = 1024 * 1024  # diffusers' Edit and Edit-Plus: VAE (and Edit's VL) input area
PLUS_VL_AREA = 384 * 384  # Edit-Plus: VL input area (CONDITION_IMAGE_SIZE)
EDIT_CLASSES = ("QwenImageEditPipeline", "QwenImageEditPlusPipeline")


def calculate_dimensions(area: int, ratio: float) -> tuple[int, int]:
    """(width, height) of about ``area`` pixels at aspect ``ratio`` = w / h, each rounded to a multiple of 32:
    diffusers' own rule (its Edit-Plus module's function), so the sizes cannot drift from the reference."""
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus import calculate_dimensions as reference

    return tuple(reference(area, ratio))


def resize_to_area(image, area: int):
    """The image at ``calculate_dimensions(area, its aspect)``, Lanczos as diffusers' image processor resizes."""
    from PIL import Image

    return image.resize(calculate_dimensions(area, image.width / image.height), Image.LANCZOS)


@dataclass
class EditSettings(Settings):
    condition_area: int = EDIT_AREA
    vl_area: int | None = None  # None: the condition area for one image (Edit), PLUS_VL_AREA for several (Edit-Plus)


@dataclass
class EditInputs:
    """Per input image, the pixels each encoder reads, and the output size."""

    vl_images: list
    vae_images: list
    width: int
    height: int


class EditPipeline(Pipeline):
    """``Pipeline`` with a processor; ``__call__(images, instructions)`` edits instead of generating."""

    def __init__(self, transformer, vae, text_encoder, tokenizer, scheduler, processor, device=None,
                 settings: EditSettings | None = None, plus: bool = False):
        super().__init__(transformer, vae, text_encoder, tokenizer, scheduler, device, settings or EditSettings())
        self.processor, self.plus = processor, plus

    @classmethod
    def load(cls, model_dir, device=None, dtype=None) -> "EditPipeline":
        from qimage.device import default_dtype, pick_device
        from qimage.model_dir import load_components

        root = check_edit_model(model_dir)
        device = pick_device(device)
        comps = load_components(root, device=device, dtype=dtype or default_dtype(device))
        plus = json.loads((root / "model_index.json").read_text())["_class_name"] == EDIT_CLASSES[1]
        return cls(**comps, device=device, settings=EditSettings.read(root), plus=plus)

    def inputs(self, images: Sequence, width: int | None = None, height: int | None = None) -> EditInputs:
        """Resizes the inputs as diffusers' Edit (one image) or Edit-Plus (several, or a Plus model) does."""
        s = self.settings
        images = [im.convert("RGB") for im in images]
        plus = self.plus or len(images) > 1
        vl_area = s.vl_area or (PLUS_VL_AREA if plus else s.condition_area)
        vae = [resize_to_area(im, s.condition_area) for im in images]
        vl = [resize_to_area(im, vl_area) for im in images] if plus else vae
        m = 2 * self.vae_scale  # whole 2x2 patches of latents, as diffusers floors the output size
        width = (width or vae[-1].width) // m * m
        height = (height or vae[-1].height) // m * m
        return EditInputs(vl, vae, width, height)

    def conditioning(self, prompts, negative_prompt, do_cfg, width, height, condition: EditInputs):
        """The instructions read by the VL encoder with the input images (``condition.vl_images``), then the
        negative; the VAE tokens of ``condition.vae_images`` (the posterior's mode) at their own sizes."""
        images = condition
        plus = self.plus or len(images.vae_images) > 1
        embeds, mask = encode_edit_prompts(self.text_encoder, self.processor, prompts, images.vl_images,
                                           self.device, plus=plus)
        if do_cfg:
            neg, neg_mask = encode_edit_prompts(self.text_encoder, self.processor, [negative_prompt],
                                                images.vl_images, self.device, plus=plus)
            embeds, mask = self._with_negative(embeds, mask, neg, neg_mask)
        conds, shapes = [], []
        for im in images.vae_images:
            lat = vae_ops.encode(self.vae, vae_ops.from_pil([im]).to(self.device))  # the posterior's mode
            conds.append(vae_ops.pack(lat.to(self.transformer.dtype)))
            shapes.append((1, im.height // self.vae_scale // 2, im.width // self.vae_scale // 2))
        return embeds.to(self.transformer.dtype), mask, torch.cat(conds, dim=1), shapes

    def prepare_edit(self, images, prompts, negative_prompt=None, width=None, height=None, steps=None, cfg=None,
                     seeds=0):
        inputs = self.inputs(images, width, height)
        return self.prepare(prompts, negative_prompt, inputs.width, inputs.height, steps, cfg, seeds,
                            condition=inputs)

    @torch.no_grad()
    def __call__(self, images, prompts, negative_prompt=None, width=None, height=None, steps=None, cfg=None,
                 seeds: int | Sequence[int] = 0, step=euler_step, callback=None, progress=False, output="pil"):
        """Edited images: each prompt applied to the same input image(s) (a PIL image or a list of them)."""
        images = [images] if not isinstance(images, (list, tuple)) else list(images)
        if not images:
            raise UserError("an edit needs at least one input image")
        d = self.prepare_edit(images, prompts, negative_prompt, width, height, steps, cfg, seeds)
        x = sample(d.velocity, d.x, d.timesteps, d.sigmas, step=step, callback=callback, progress=progress,
                   generators=d.generators)
        return self.finish(x, d.lh, d.lw, output)


def check_edit_model(path) -> Path:
    """The directory, if it is an edit model (an Edit pipeline class and a processor/ folder); else a UserError."""
    from qimage.model_dir import check_model_dir

    root = check_model_dir(path)
    cls = json.loads((root / "model_index.json").read_text()).get("_class_name")
    if cls not in EDIT_CLASSES or not (root / "processor").is_dir():
        raise UserError(f"{root} is not an edit model (its pipeline is {cls}, with no processor/); "
                        f"create one with `qimage init DIR --preset tiny-edit`")
    return root

