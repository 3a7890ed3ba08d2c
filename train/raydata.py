"""The Ray Data path (`loader: ray`): decoding, aspect bucketing and resizing run in Ray workers, apart from training.

As in Qwen-Image, preprocessing is its own scalable stage: at the start of a curriculum stage every record the stage
draws from is sent through a Ray dataset (``map``: decode the bytes or file, `fit` to its bucket, return uint8
pixels) and the results stream back into the trainer, which keeps them as fitted pixels; the frozen VAE then encodes
them into the latent cache as on the local path. The fitted pixels are the same bytes either way (same PIL code in
the worker), so `loader: ray` trains exactly like `loader: local`. Ray joins RAY_ADDRESS when set, else starts a
private local instance on 127.0.0.1 (``qimage.datapipe.cluster``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .buckets import assign, fit


def _decode_fit(row: dict) -> dict:
    import io

    from PIL import Image

    src = io.BytesIO(row["data"]) if row["data"] else row["path"]
    with Image.open(src) as im:
        out = fit(im.convert("RGB"), (int(row["w"]), int(row["h"])))
    return {"source": row["source"], "i": row["i"], "pixels": np.asarray(out, dtype=np.uint8)}


def preprocess(records: dict, names: list[str], buckets, object_store_mb: int = 256) -> int:
    """Replaces every record of sources `names` by one carrying its fitted pixels, computed in Ray workers.
    Returns the number of records processed."""
    from qimage.datapipe.cluster import init_ray

    ray = init_ray(None, object_store_mb)
    items = []
    for n in names:
        for i, r in enumerate(records[n]):
            w, h = assign(r.width, r.height, buckets)
            if r.pixels is not None and r.pixels.shape[:2] == (h, w):
                continue  # fitted for an earlier stage with the same bucket
            items.append({"source": n, "i": i, "path": r.path, "data": r.data, "w": w, "h": h})
    if not items:
        return 0
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items) // 16, 64))).map(_decode_fit)
    for row in ds.iter_rows():
        n, i = row["source"], int(row["i"])
        records[n][i] = dataclasses.replace(records[n][i], pixels=np.asarray(row["pixels"], dtype=np.uint8))
    return len(items)
