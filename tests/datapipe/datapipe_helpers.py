"""Build a Sample from pixels the way the pipeline would see it (encoded, then decoded by broken_file)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from qimage.datapipe.sample import Sample


def encode(arr: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, fmt, **kw)
    return b.getvalue()


def sample(arr: np.ndarray | bytes, caption: str | None = None, meta: dict | None = None, fmt: str = "PNG", **kw) -> Sample:
    data = arr if isinstance(arr, bytes) else encode(arr, fmt, **kw)
    s = Sample(Path("."), "x.png", data, caption, json.dumps(meta) if meta is not None else None, 64_000_000)
    try:
        s.decode()
    except Exception:
        pass
    return s


def rgb(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(a[..., None], 3, 2)) if a.ndim == 2 else np.ascontiguousarray(a[..., :3])
