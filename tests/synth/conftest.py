"""Shared helpers for the synth tests: a small per-kind context and sample factory."""
from __future__ import annotations

import numpy as np
import pytest

from qimage.synth.runner import RunConfig, context


@pytest.fixture(scope="session")
def make_ctx():
    def _make(width: int = 256, height: int = 256):
        return context(RunConfig(kind="pure", n=1, out=".", width=width, height=height))
    return _make


def _quad_mask(quads, shape, grow: int = 0) -> np.ndarray:
    """Boolean mask of the union of quads, dilated by `grow` pixels."""
    import cv2

    mask = np.zeros(shape[:2], np.uint8)
    for q in quads:
        cv2.fillPoly(mask, [np.round(np.asarray(q, np.float32)).astype(np.int32)], 1)
    if grow:
        mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return mask.astype(bool)


@pytest.fixture(scope="session")
def quad_mask():
    return _quad_mask
