"""Named colours in plain English (with Chinese names) and contrast rules.

Captions name colours, so every colour drawn for text or a background comes from this table. Text colours are
chosen against the background with the WCAG contrast ratio so the text stays legible (>= 4.5 by default).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Color:
    name: str
    zh: str
    rgb: tuple[int, int, int]

    def name_in(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.name


PALETTE = [
    Color("white", "白色", (255, 255, 255)),
    Color("off-white", "米白色", (246, 243, 235)),
    Color("light gray", "浅灰色", (215, 215, 215)),
    Color("gray", "灰色", (128, 128, 128)),
    Color("dark gray", "深灰色", (64, 64, 64)),
    Color("black", "黑色", (15, 15, 15)),
    Color("red", "红色", (210, 35, 35)),
    Color("dark red", "深红色", (130, 20, 25)),
    Color("pink", "粉色", (245, 170, 190)),
    Color("orange", "橙色", (240, 130, 30)),
    Color("yellow", "黄色", (250, 215, 40)),
    Color("cream", "奶油色", (250, 240, 200)),
    Color("beige", "米色", (225, 205, 170)),
    Color("brown", "棕色", (120, 75, 40)),
    Color("green", "绿色", (40, 150, 60)),
    Color("dark green", "深绿色", (20, 80, 40)),
    Color("light green", "浅绿色", (190, 230, 180)),
    Color("teal", "青色", (20, 130, 130)),
    Color("light blue", "浅蓝色", (175, 210, 240)),
    Color("blue", "蓝色", (35, 90, 200)),
    Color("navy blue", "藏青色", (20, 35, 90)),
    Color("purple", "紫色", (115, 50, 160)),
    Color("lavender", "淡紫色", (215, 200, 240)),
]
BY_NAME = {c.name: c for c in PALETTE}


def luminance(rgb) -> float:
    def lin(v):
        v = v / 255.0
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def pick(rng, exclude=()) -> Color:
    cands = [c for c in PALETTE if c.name not in exclude]
    return cands[int(rng.integers(len(cands)))]


def distance(a, b) -> float:
    return sum((int(x) - int(y)) ** 2 for x, y in zip(a, b)) ** 0.5


def pick_text(rng, background, min_contrast: float = 4.5, exclude=(), far_from=None) -> Color:
    """A palette colour legible on `background` (an RGB triple), never the background's own name.

    `far_from`: an RGB the colour must clearly differ from (RGB distance >= 120), for recolouring edits."""
    cands = [c for c in PALETTE if contrast(c.rgb, background) >= min_contrast and c.name not in exclude
             and (far_from is None or distance(c.rgb, far_from) >= 120)]
    if not cands:  # a mid-tone background: fall back to the better of black and white
        cands = [max((BY_NAME["black"], BY_NAME["white"]), key=lambda c: contrast(c.rgb, background))]
    return cands[int(rng.integers(len(cands)))]
