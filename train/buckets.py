"""Aspect-ratio buckets: every batch holds images of one size, near a target pixel count, without distortion.

For a resolution r, the buckets are the sizes (W, H), both multiples of m (whole 2x2 latent patches), with W*H close
to r^2 and aspect ratio at most `max_ratio`. An image goes to the bucket whose log aspect ratio is nearest its own,
then is resized to cover the bucket and centre-cropped: the crop loses at most the aspect mismatch between
neighbouring buckets, never the text in the middle.
"""
from __future__ import annotations

import math


def make_buckets(resolution: int, multiple: int, max_ratio: float = 2.0) -> list[tuple[int, int]]:
    """(W, H) sizes of about resolution^2 pixels, multiples of `multiple`, sorted by aspect ratio (W/H)."""
    area = resolution * resolution
    out = set()
    w = multiple
    while w <= resolution * max_ratio:
        h = max(multiple, round(area / w / multiple) * multiple)
        if max(w / h, h / w) <= max_ratio + 1e-9:
            out.add((w, h))
        w += multiple
    if not out:  # resolution below one patch: the smallest square
        out.add((multiple, multiple))
    return sorted(out, key=lambda s: s[0] / s[1])


def assign(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is nearest (in log space, so 2:1 and 1:2 are equally far from 1:1)."""
    ratio = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))


def fit(image, size: tuple[int, int]):
    """Resize (Lanczos) so the image covers `size`, then centre-crop to it. PIL image in, RGB PIL image out."""
    from PIL import Image

    image = image.convert("RGB")
    w, h = size
    if image.size == (w, h):
        return image
    scale = max(w / image.width, h / image.height)
    rw, rh = max(w, round(image.width * scale)), max(h, round(image.height * scale))
    image = image.resize((rw, rh), Image.LANCZOS)
    left, top = (rw - w) // 2, (rh - h) // 2
    return image.crop((left, top, left + w, top + h))
