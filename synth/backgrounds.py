"""Backgrounds for compositional rendering: a user's photo folder, or procedural scenes when none is given.

Method: a photo is centre-cropped at a random scale and position to the canvas aspect and resized (optionally
mirrored). The procedural fallback draws a few recognisable scenes from smooth fields plus noise (a painted wall,
a wall above a wooden table, sky over grass, out-of-focus street lights) so the caption can name the scene.
Everything is a function of a small parameter dict, so an edit pair re-renders exactly the same background.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from qimage.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
SCENES = {
    "wall": ("a room with a plain wall", "一个墙面素净的房间"),
    "table": ("a room, on a wooden table", "房间里的木桌上"),
    "outdoor": ("a park under a blue sky", "蓝天下的公园"),
    "bokeh": ("a blurry street at night", "夜晚模糊的街道"),
    "photo": ("a real-world scene", "真实场景"),
}


def list_photos(folder: str | None) -> list[str]:
    if not folder:
        return []
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"--backgrounds {folder}: not a directory")
    photos = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise UserError(f"--backgrounds {folder}: no .jpg/.png/.webp/.bmp image found")
    return photos


def choose(rng, photos: list[str]) -> dict:
    if photos and rng.random() < 0.85:
        return {"type": "photo", "path": photos[int(rng.integers(len(photos)))], "scale": float(rng.uniform(0.6, 1.0)),
                "cx": float(rng.random()), "cy": float(rng.random()), "flip": bool(rng.random() < 0.5)}
    kind = ("wall", "table", "outdoor", "bokeh")[int(rng.integers(4))]
    return {"type": kind, "seed": int(rng.integers(2**31)),
            "tint": [int(v) for v in rng.integers(90, 236, size=3)]}


def scene_name(params: dict, lang: str) -> str:
    en, zh = SCENES[params["type"]]
    return zh if lang == "zh" else en


def render(params: dict, width: int, height: int) -> np.ndarray:
    """Float32 HxWx3 in [0, 255]."""
    if params["type"] == "photo":
        return _photo(params, width, height)
    rng = np.random.default_rng(params["seed"])
    tint = np.array(params["tint"], np.float32)
    # 1-D coordinate vectors broadcast where possible: full-size grids were most of this function's time
    v = (np.arange(height, dtype=np.float32) / height)[:, None]
    u = (np.arange(width, dtype=np.float32) / width)[None, :]
    if params["type"] == "wall":
        img = tint * (0.85 + 0.25 * (1 - v))[..., None]
    elif params["type"] == "table":
        horizon = rng.uniform(0.45, 0.65)
        wood = np.array([150, 100, 60], np.float32) * (0.9 + 0.1 * np.sin(u * 40 + 3 * np.sin(v * 7)))[..., None]
        img = np.where((v < horizon)[..., None], tint * (0.8 + 0.2 * v)[..., None], wood)
    elif params["type"] == "outdoor":
        horizon = rng.uniform(0.5, 0.7)
        sky = np.stack([120 + 80 * v, 170 + 50 * v, 235 + 0 * v], -1)
        grass = np.stack([60 + 30 * v, 130 + 30 * v, 50 + 0 * v], -1)
        img = np.where((v < horizon)[..., None], sky, grass)
    else:  # bokeh
        img = np.zeros((height, width, 3), np.float32) + tint * 0.25
        for _ in range(25):
            cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.03, 0.1) * width
            col = rng.uniform(80, 255, size=3).astype(np.float32)
            # only the disc's bounding window: the full-canvas distance field cost 25x more
            x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 1)
            y0, y1 = max(0, int(cy - r)), min(height, int(cy + r) + 1)
            if x1 <= x0 or y1 <= y0:
                continue
            xs = np.arange(x0, x1, dtype=np.float32)[None, :]
            ys = np.arange(y0, y1, dtype=np.float32)[:, None]
            d = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
            img[y0:y1, x0:x1] += col * (0.5 * np.clip(1 - d / r, 0, 1) ** 0.5)[..., None]
    img = img + rng.standard_normal(size=(height, width, 1), dtype=np.float32) * 4
    return np.clip(np.broadcast_to(img, (height, width, 3)), 0, 255).astype(np.float32)


def _photo(params: dict, width: int, height: int) -> np.ndarray:
    with Image.open(params["path"]) as im:
        im = im.convert("RGB")
        W, H = im.size
        aspect = width / height
        cw = min(W, H * aspect) * params["scale"]
        ch = cw / aspect
        x0 = (W - cw) * params["cx"]
        y0 = (H - ch) * params["cy"]
        im = im.resize((width, height), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
        if params["flip"]:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        return np.asarray(im, np.float32)
