"""Physical media that text is written or printed on, as procedural textures.

Method: each medium is a base colour range, a texture (paper fibres and grain, wood grain from warped sinusoids,
chalk dust, brushed metal with a border), the way text is put on it (printed, handwritten, painted, chalk) and
the ink colours that make sense on it. Textures are drawn from a seed so the same plan gives the same pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import colors


@dataclass(frozen=True)
class Medium:
    name: str
    zh: str
    base: tuple[tuple[int, int, int], tuple[int, int, int]]  # low and high RGB of the base colour
    texture: str
    how: tuple[str, ...]
    inks: tuple[str, ...]
    styles: tuple[str, ...]

    def name_in(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.name


MEDIA = [
    Medium("sheet of paper", "纸", ((235, 232, 220), (252, 250, 244)), "paper", ("printed", "handwritten"),
           ("black", "blue", "dark red", "navy blue"), ("sans", "serif", "hand")),
    Medium("white card", "白色卡片", ((240, 240, 240), (255, 255, 255)), "paper", ("printed",),
           ("black", "dark gray", "red", "navy blue", "dark green"), ("sans", "serif", "display")),
    Medium("sticky note", "便利贴", ((245, 225, 90), (255, 240, 130)), "paper", ("handwritten",),
           ("black", "blue", "dark red"), ("hand", "sans")),
    Medium("wooden board", "木板", ((150, 100, 55), (200, 150, 95)), "wood", ("painted",),
           ("white", "black", "cream", "yellow"), ("sans", "display", "serif")),
    Medium("chalkboard", "黑板", ((30, 50, 40), (50, 70, 60)), "chalk", ("chalk",),
           ("white", "yellow", "pink", "light blue"), ("hand", "sans")),
    Medium("cardboard sign", "纸板", ((170, 130, 85), (200, 160, 110)), "paper", ("handwritten", "painted"),
           ("black", "dark red", "navy blue"), ("hand", "display", "sans")),
    Medium("metal sign", "金属标牌", ((20, 60, 140), (40, 110, 70)), "metal", ("printed",),
           ("white", "yellow"), ("sans", "display")),
]
HOW_ZH = {"printed": "印刷的", "handwritten": "手写的", "painted": "漆写的", "chalk": "粉笔"}


def texture(medium: Medium, base_rgb, w: int, h: int, seed: int) -> np.ndarray:
    """Float32 hxwx3 texture of the medium in [0, 255]."""
    rng = np.random.default_rng(seed)
    base = np.array(base_rgb, np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if medium.texture == "wood":
        # Growth rings of irregular width (0.5-1.8x a mean period of 16-31 px), each with its own contrast, whose
        # lines meander (a slow sine plus smooth noise of ~10 px over 32 px cells: the figure of flat-sawn
        # boards), and fine fibre streaks along the grain. The first version was one sinusoid of constant period,
        # a perfect grating: OpenCV's barcode detector (the data pipeline's barcode filter) found a 1-D barcode on
        # 18 of 53 boards at 512 px; on this grain, 0 of 100 at 512-1024 px (docs/synth.md).
        phase = rng.uniform(0, 6.3)
        period = rng.uniform(2.5, 5.0) * 2 * np.pi
        warp = (6 * np.sin(xx / w * rng.uniform(2, 5) + phase) + 3 * np.sin(xx / 37.0)
                + 10 * _smooth_noise(rng, h, w, 32))
        n = int((h + 80) / (0.5 * period)) + 2
        edges = -40.0 + np.concatenate([[0.0], np.cumsum(period * rng.uniform(0.5, 1.8, size=n))])
        ring = np.interp(yy + warp, edges, np.arange(len(edges), dtype=np.float32))
        k = np.floor(ring).astype(np.int64)
        contrast = rng.uniform(0.35, 1.0, size=len(edges) + 1)[np.clip(k, 0, len(edges))]
        grain = (np.sin(2 * np.pi * (ring - k)) * 0.5 + 0.5) * contrast
        fibre = cv2.resize(rng.normal(0, 1, size=(max(2, h // 2), max(2, w // 24))).astype(np.float32), (w, h),
                           interpolation=cv2.INTER_CUBIC)
        shade = 0.82 + 0.18 * grain + rng.normal(0, 0.03, size=(h, 1)) + 0.03 * fibre
        img = base * shade[..., None]
    elif medium.texture == "chalk":
        smudge = _smooth_noise(rng, h, w, 24) * 18
        img = base + smudge[..., None]
    elif medium.texture == "metal":
        brushed = rng.normal(0, 6, size=(h, 1)) + rng.normal(0, 2, size=(h, w))
        img = base + brushed[..., None]
        b = max(2, int(0.03 * min(w, h)))
        rim = np.zeros((h, w), bool)
        rim[:b], rim[-b:], rim[:, :b], rim[:, -b:] = True, True, True, True
        img[rim] = 235
    else:  # paper: low-frequency blotches plus fine grain
        img = base + (_smooth_noise(rng, h, w, 32) * 6 + rng.normal(0, 2.5, size=(h, w)))[..., None]
    return np.clip(img, 0, 255)


def _smooth_noise(rng, h: int, w: int, cell: int) -> np.ndarray:
    small = rng.normal(0, 1, size=(max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def ink_for(rng, medium: Medium, base_rgb) -> colors.Color:
    cands = [colors.BY_NAME[n] for n in medium.inks if colors.contrast(colors.BY_NAME[n].rgb, base_rgb) >= 3.0]
    if not cands:
        return colors.pick_text(rng, base_rgb)
    return cands[int(rng.integers(len(cands)))]
