"""Sample grids: many images in one picture, for people who would rather look than read."""
from __future__ import annotations

import math


def image_grid(images, cols: int | None = None, pad: int = 2, background=(255, 255, 255)):
    """Tiles PIL images row-major on a canvas; cells take the size of the largest image."""
    from PIL import Image

    if not images:
        raise ValueError("no images to tile")
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    w = max(im.width for im in images)
    h = max(im.height for im in images)
    canvas = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + pad) + pad), background)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        canvas.paste(im.convert("RGB"), (pad + c * (w + pad), pad + r * (h + pad)))
    return canvas
