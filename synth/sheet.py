"""Sample sheets for the docs: a grid of samples per synthesiser, and one of edit pairs.

    python -m qimage.synth.sheet docs/samples

Each sheet shows English samples on the top row and Chinese ones below (scenes: English and Chinese captions), drawn
at 512 px and shown at 256 px, with the line quads outlined in red on the right half of each row so the labels
can be checked by eye. The edit sheet shows source | target pairs. Sheets are PNGs with an adaptive palette
to stay small.
"""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

from qimage.grid import image_grid

from .runner import KINDS, RunConfig, make_sample

THUMB = 256


def _thumb(s, outline: bool) -> Image.Image:
    im = s.image.copy()
    if outline:
        d = ImageDraw.Draw(im)
        for ln in s.meta["lines"]:
            d.polygon([tuple(p) for p in ln["quad"]], outline=(255, 0, 0), width=2)
        for o in s.meta.get("objects", []):
            d.rectangle(o["bbox"], outline=(255, 0, 0), width=2)
    return im.resize((THUMB, THUMB * im.height // im.width), Image.LANCZOS)


def kind_sheet(kind: str, cols: int = 4, seed: int = 2026) -> Image.Image:
    rows = []
    for r, lang in enumerate(("en", "zh")):
        cfg = RunConfig(kind=kind, n=cols, out=".", lang=lang, width=512, height=512, seed=seed + r)
        rows.append([_thumb(make_sample(cfg, i), outline=i >= cols // 2) for i in range(cols)])
    return image_grid([im for row in rows for im in row], cols=cols, pad=0)


def edit_sheet(seed: int = 7) -> Image.Image:
    pairs = []
    for kind, lang in zip(KINDS, ("en", "zh", "en", "zh")):
        cfg = RunConfig(kind=kind, n=1, out=".", lang=lang, width=512, height=512, seed=seed, edit_pairs=True)
        s = make_sample(cfg, 0)
        pairs.append((_thumb(s, False), _thumb(s.edit, False)))
    return image_grid([im for pair in pairs for im in pair], cols=4, pad=0)  # two pairs a row


def _save(img: Image.Image, path: Path) -> None:
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    out = Path((argv or sys.argv[1:] or ["docs/samples"])[0])
    out.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        _save(kind_sheet(kind), out / f"synth_{kind}.png")
    _save(edit_sheet(), out / "synth_edits.png")
    for p in sorted(out.glob("synth_*.png")):
        print(p, f"{p.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
