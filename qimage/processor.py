"""The Qwen2-VL processor an edit model directory carries in ``processor/``: image pixels and text tokens together.

    pixel_values, grid_thw = image_processor(images)          Qwen2-VL patches: 14 px, 2 frames, merged 2x2
    text = text.replace(<|image_pad|>, <|image_pad|> * (t * h * w / merge**2))    one token per merged patch, in order
    input_ids, attention_mask = tokenizer(text, padding)

diffusers' Edit pipelines call a ``transformers.Qwen2VLProcessor``. In transformers 5 that class cannot be built
without torchvision (its video processor needs it), which this project does not depend on; so ``load_processor``
returns the real class where it loads and otherwise ``VLProcessor``, which does the same with the two real parts
it is made of (transformers' PIL Qwen2-VL image processor and the directory's tokenizer). The folder written is the
standard one either way (``preprocessor_config.json``, ``processor_config.json`` and the tokenizer files), so
``Qwen2VLProcessor.from_pretrained`` and diffusers load it wherever torchvision is installed.
"""
from __future__ import annotations

import json
from pathlib import Path

from transformers import ProcessorMixin

IMAGE_PAD = "<|image_pad|>"
# Small VL inputs for the toy and tiny presets: a 128x64 condition is 10 vision tokens; at most 128 for any image.
TOY_PIXELS = dict(min_pixels=56 * 56, max_pixels=128 * 28 * 28)


class VLProcessor(ProcessorMixin):
    """``Qwen2VLProcessor``'s image+text call, from its image processor and tokenizer (no video processor, the part
    that needs torchvision)."""

    attributes = ["image_processor", "tokenizer"]
    image_processor_class = "AutoImageProcessor"
    tokenizer_class = "AutoTokenizer"

    def __call__(self, text, images=None, padding=True, return_tensors="pt"):
        from transformers import BatchFeature

        texts = [text] if isinstance(text, str) else list(text)
        data = {}
        if images is not None and not isinstance(images, (list, tuple)):
            images = [images]
        if images:
            vis = self.image_processor(images=list(images), return_tensors=return_tensors)
            data.update(vis)
            counts = iter((vis["image_grid_thw"].prod(-1) // self.image_processor.merge_size**2).tolist())
            texts = [_expand(t, counts) for t in texts]
            if next(counts, None) is not None:
                raise ValueError("more images than <|image_pad|> markers in the text")
        data.update(self.tokenizer(texts, padding=padding, return_tensors=return_tensors))
        return BatchFeature(data)

    def save_pretrained(self, path) -> None:
        path = Path(path)
        self.image_processor.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        (path / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen2VLProcessor"}, indent=2) + "\n")


def _expand(text: str, counts) -> str:
    parts = text.split(IMAGE_PAD)
    out = [parts[0]]
    for rest in parts[1:]:
        n = next(counts, None)
        if n is None:
            raise ValueError("more <|image_pad|> markers in the text than images")
        out += [IMAGE_PAD * int(n), rest]
    return "".join(out)


def make_processor(tokenizer, **pixels) -> VLProcessor:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return VLProcessor(Qwen2VLImageProcessorPil(**(pixels or TOY_PIXELS)), tokenizer)


def load_processor(path):
    """transformers' Qwen2VLProcessor where it can be built (torchvision installed), else ``VLProcessor``."""
    from transformers import AutoTokenizer

    try:
        from transformers import Qwen2VLProcessor

        return Qwen2VLProcessor.from_pretrained(path)
    except (ImportError, AttributeError, ValueError, OSError):
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        return VLProcessor(Qwen2VLImageProcessorPil.from_pretrained(path), AutoTokenizer.from_pretrained(path))
