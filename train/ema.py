"""Exponential moving average of the transformer's weights, through torch's ``AveragedModel``.

    ema <- decay * ema + (1 - decay) * theta        after every optimiser step (the first update copies theta)

The EMA copy is what checkpoints save as the model directory and what sample grids use: it averages out the last
steps' noise, which at toy scale is the difference between letters and blobs.
"""
from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def make_ema(model: torch.nn.Module, decay: float) -> AveragedModel:
    """An EMA copy of `model` (buffers averaged too); ``.module`` is the averaged model, ``update_parameters(model)``."""
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    ema.requires_grad_(False)
    return ema.eval()
