"""Sample grids: many images in one picture, for people who would rather look than read."""
from __future__ import annotations

import math


def image_grid(images, cols: int | None = None, pad: int = 2, background=(255, 255, 255)):
    """Tiles PIL images row-major (diffusers' ``make_image_grid``) with ``pad`` pixels of ``background`` between and
    around them; cells take the size of the largest image, a smaller one sits in its cell's top-left corner."""
    from diffusers.utils import make_image_grid
    from PIL import Image, ImageOps

    if not images:
        raise ValueError("no images to tile")
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    w, h = max(im.width for im in images) + pad, max(im.height for im in images) + pad
    cells = []
    for im in images:
        cell = Image.new("RGB", (w, h), background)
        cell.paste(im.convert("RGB"), (pad, pad))
        cells.append(cell)
    cells += [Image.new("RGB", (w, h), background)] * (rows * cols - len(cells))  # an unfilled last row
    return ImageOps.expand(make_image_grid(cells, rows, cols), border=(0, 0, pad, pad), fill=background)
