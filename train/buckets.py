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
            out.update({(w, h), (h, w)})  # portrait and landscape alike
        w += multiple
    if not out:  # resolution below one patch: the smallest square
        out.add((multiple, multiple))
    return sorted(out, key=lambda s: s[0] / s[1])


def assign(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is nearest (in log space, so 2:1 and 1:2 are equally far from 1:1)."""
    ratio = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))


def fit_geometry(src: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(resized W, resized H, crop left, crop top) of `fit`: a source point (x, y) lands at
    (x * rw / W0 - left, y * rh / H0 - top), which is how metadata quads follow the image."""
    w, h = size
    scale = max(w / src[0], h / src[1])
    rw, rh = max(w, round(src[0] * scale)), max(h, round(src[1] * scale))
    return rw, rh, (rw - w) // 2, (rh - h) // 2


def fit(image, size: tuple[int, int]):
    """Resize (Lanczos) so the image covers `size`, then centre-crop to it. PIL image in, RGB PIL image out."""
    from PIL import Image

    image = image.convert("RGB")
    w, h = size
    if image.size == (w, h):
        return image
    rw, rh, left, top = fit_geometry(image.size, size)
    image = image.resize((rw, rh), Image.LANCZOS)
    return image.crop((left, top, left + w, top + h))


def fit_quads(quads, src: tuple[int, int], size: tuple[int, int]) -> list[list[list[float]]]:
    """Metadata quads (pixel coordinates of the source image) moved into the fitted image."""
    rw, rh, left, top = fit_geometry(src, size)
    sx, sy = rw / src[0], rh / src[1]
    return [[[x * sx - left, y * sy - top] for x, y in q] for q in quads]
