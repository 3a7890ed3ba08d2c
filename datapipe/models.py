"""Local transformers models for the model-based filters (nsfw, watermark, aesthetic, clip_similarity).

Each worker process loads a model once (module-level cache keyed by path) and runs it per image on CPU.
Nothing is downloaded: a filter whose `model` is null is skipped with a warning.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

_CACHE: dict[tuple[str, str], object] = {}


def _torch():
    import torch

    # Ray gives each task a core; torch's default of one thread per core would oversubscribe.
    torch.set_num_threads(1)
    return torch


def check_model_dir(path) -> str | None:
    """None when path looks like a saved transformers model, else the problem in words."""
    if path is None:
        return "no model configured"
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        return f"model dir {p} has no config.json"
    return None


class Classifier:
    """AutoModelForImageClassification: label -> probability (softmax), or the raw value for 1-output regressors."""

    def __init__(self, path: str):
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        torch = _torch()
        self.torch = torch
        self.proc = AutoImageProcessor.from_pretrained(path)
        self.model = AutoModelForImageClassification.from_pretrained(path).eval()
        self.labels = [str(self.model.config.id2label[i]).lower() for i in range(self.model.config.num_labels)]

    def __call__(self, rgb: np.ndarray) -> dict[str, float]:
        with self.torch.inference_mode():
            logits = self.model(**self.proc(images=rgb, return_tensors="pt")).logits[0].float()
        if logits.numel() == 1:
            return {"value": float(logits[0])}
        probs = logits.softmax(-1).tolist()
        return dict(zip(self.labels, probs))


class Similarity:
    """CLIP or SigLIP dual encoder: cosine similarity of the image and caption embeddings."""

    def __init__(self, path: str):
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        torch = _torch()
        self.torch = torch
        self.model = AutoModel.from_pretrained(path).eval()
        self.tok = AutoTokenizer.from_pretrained(path)
        self.proc = AutoImageProcessor.from_pretrained(path)
        self.max_len = int(getattr(getattr(self.model.config, "text_config", None), "max_position_embeddings", 64) or 64)

    def _embed(self, out):
        # transformers 5 returns a model output (projected embedding in pooler_output) where 4.x gave a tensor
        return out if isinstance(out, self.torch.Tensor) else out.pooler_output

    def __call__(self, rgb: np.ndarray, text: str) -> float:
        t = self.torch
        with t.inference_mode():
            img = self._embed(self.model.get_image_features(**self.proc(images=rgb, return_tensors="pt")))
            toks = self.tok([text], return_tensors="pt", padding="max_length", truncation=True, max_length=self.max_len)
            txt = self._embed(self.model.get_text_features(**{k: v for k, v in toks.items() if k != "token_type_ids"}))
            return float(t.nn.functional.cosine_similarity(img.float(), txt.float())[0])


def load(kind: str, path: str):
    key = (kind, str(path))
    if key not in _CACHE:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one bar per worker per model would interleave with the run's own bar
        _CACHE[key] = {"classifier": Classifier, "similarity": Similarity}[kind](str(Path(path).expanduser()))
    return _CACHE[key]
