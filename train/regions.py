"""Loss weights from a sample's metadata regions: text quads and scenes objects' boxes, after `fit` to a bucket.

A scene's objects cover 1-5% of its pixels and a text render's glyphs a fraction of it; unweighted, a small model
learns the flat background first and the content the caption talks about last. Per pixel:

    w = 1 + (text_weight - 1) * [inside a metadata text quad] + (object_weight - 1) * [inside a scenes object's box]

The VAE weights its reconstruction loss with w (`qimage.train.vae`); pretraining weights the flow-matching loss with
w averaged over each latent cell (`latent_weights`, `qimage.train.flow.loss`). Box corners are rounded to whole
pixels as for text quads, so a row or column a box only partly covers at its top/left edge may be left at weight 1
(the shipped toy's VAE was trained so).

Edit training adds the cells the edit changes (an edit pair's source and target differ on a few percent of the
pixels, so the unweighted loss is mostly learning to copy the condition). Per latent cell:

    w_edit = mean over the cell of w (the target's regions)
             + (changed_weight - 1) * max over the cell of [|target - source| > CHANGED_TOL in any channel]

The max, not the mean, because a latent cell decodes its whole 8x8 block: a thin stroke that changes a tenth of the
block still needs the cell's tokens to change.
"""
from __future__ import annotations

import numpy as np
import torch

from .buckets import fit_quads


def _fill(quads, record, size) -> np.ndarray:
    import cv2

    w, h = size
    mask = np.zeros((h, w), np.uint8)
    for q in fit_quads(quads, (record.width, record.height), size):
        cv2.fillPoly(mask, [np.round(np.asarray(q, np.float32)).astype(np.int32)], 1)
    return mask.astype(np.float32)


def text_mask(record, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float mask of the record's text quads after `fit` to size."""
    return _fill([ln["quad"] for ln in record.meta.get("lines", []) if ln.get("quad")], record, size)


def object_mask(record, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float mask of a `synth scenes` record's object boxes after `fit` to size."""
    boxes = [o["bbox"] for o in record.meta.get("objects", []) if isinstance(o, dict) and len(o.get("bbox", [])) == 4]
    return _fill([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]] for x0, y0, x1, y1 in boxes], record, size)


def pixel_weights(record, size: tuple[int, int], text_weight: float, object_weight: float) -> np.ndarray:
    """(H, W) weights w of the docstring's equation."""
    return 1 + (text_weight - 1) * text_mask(record, size) + (object_weight - 1) * object_mask(record, size)


def latent_weights(records, size: tuple[int, int], factor: int, text_weight: float,
                   object_weight: float) -> torch.Tensor:
    """(B, 1, H/factor, W/factor): each latent cell's weight is the mean of w over the pixels it encodes."""
    w = torch.from_numpy(np.stack([pixel_weights(r, size, text_weight, object_weight) for r in records]))
    return torch.nn.functional.avg_pool2d(w[:, None], factor)


CHANGED_TOL = 8  # levels of 255: above the synthesisers' resampling noise, below an anti-aliased edge's change


def changed_mask(source, target, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float mask of the pixels where `fit(target)` differs from `fit(source)` by more than CHANGED_TOL."""
    from .buckets import fit

    a = np.asarray(fit(source, size), np.int16)
    b = np.asarray(fit(target, size), np.int16)
    return (np.abs(a - b).max(axis=2) > CHANGED_TOL).astype(np.float32)


def changed_latent_mask(source, target, size: tuple[int, int], factor: int) -> torch.Tensor:
    """(1, H/factor, W/factor): 1 where any pixel of the latent cell changes (the docstring's max)."""
    m = torch.from_numpy(changed_mask(source, target, size))
    return torch.nn.functional.max_pool2d(m[None, None], factor)[0]
