"""Frontal face boxes for the portrait label and face_mosaic, with scikit-image's bundled LBP cascade.

OpenCV 5 dropped the Haar CascadeClassifier and YuNet needs a downloaded model, so the LBP cascade that ships inside
scikit-image is the one detector available offline. It runs twice at 256 px: on the image, and on a blurred copy
where a pixelated face has lost the block edges that hid it from the first pass (a Gaussian-blurred face is found
by the first pass already). ~0.3 s per image, so only stage 6 asks for faces.

The cascade also fires on letters: on default `qimage synth pure` renders it found "faces" in 3 of 150 at 512 px
and 11 of 150 at 256 px, and face_mosaic rejected 3 and 6 of them (a glyph's flat strokes score as a mosaic). A detection is
therefore kept only when its box is continuous-tone (`FLAT_TWO_COLOURS`), and face_mosaic does not look for faces
on renders whose sidecar says they were drawn from fonts and shapes alone (filters/face_mosaic.py).
"""
from __future__ import annotations

import cv2
import numpy as np

_CASCADE = None
DETECT_SIDE = 256
# A box whose two most frequent colours (RGB quantised to 64 levels per channel) cover at least this share of its
# pixels is flat graphics (text, logos, shapes), not a face. A photographed face has continuous tone however it was
# degraded: on scikit-image's astronaut and its variants (face blurred, pixelated with 6 or 12 px blocks, JPEG
# quality 10, grey, 256 px) every detection scores 0.02-0.15, on the photos of `qimage data demo` at most 0.19 (an
# overexposed one); the cascade's false detections on synth renders score 0.72-0.93 (two-tone glyphs on a flat
# background). A skin-colour test would drop grey photos; this one costs only faces drawn in two or three flat
# colours (a posterised cartoon, 0.74 at 2 levels per channel), which face_mosaic would misread as mosaics anyway.
FLAT_TWO_COLOURS = 0.5

# `qimage synth` kinds drawn from fonts and shapes alone (compose only over a procedural background)
_FACELESS_KINDS = frozenset({"pure", "complex", "words", "scenes"})


def faceless_render(meta: dict) -> bool:
    """True when a sample's sidecar says `qimage synth` drew it from fonts and shapes alone, so it holds no face by
    construction: pure, complex, words and scenes, and compose over a procedural background. A compose over a
    `--backgrounds` photo (its `background` names the photo's `path`) may show people and is searched like any
    photo. The same trust as the sidecar's `lines`, which stand in for OCR: a render is known, not guessed at."""
    kind = meta.get("kind")
    if kind in _FACELESS_KINDS:
        return True
    bg = meta.get("background")
    return kind == "compose" and isinstance(bg, dict) and bg.get("type") != "photo" and "path" not in bg


def _cascade():
    global _CASCADE
    if _CASCADE is None:
        from skimage.data import lbp_frontal_face_cascade_filename
        from skimage.feature import Cascade

        _CASCADE = Cascade(lbp_frontal_face_cascade_filename())
    return _CASCADE


def detect_faces(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) in original pixels, overlapping detections merged, largest first."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    H, W = grey.shape
    s = min(1.0, DETECT_SIDE / max(H, W))
    boxes = []
    for sigma in (0, 3):
        g = cv2.GaussianBlur(grey, (0, 0), sigma) if sigma else grey
        if s < 1:
            g = cv2.resize(g, (max(1, round(W * s)), max(1, round(H * s))), interpolation=cv2.INTER_AREA)
        if min(g.shape) < 24:
            continue
        found = _cascade().detect_multi_scale(img=g, scale_factor=1.2, step_ratio=1, min_size=(20, 20),
                                              max_size=g.shape, min_neighbor_number=4)
        boxes += [(round(f["c"] / s), round(f["r"] / s), round(f["width"] / s), round(f["height"] / s)) for f in found]
    merged: list[tuple[int, int, int, int]] = []
    for b in sorted(boxes, key=lambda b: (-b[2] * b[3], b)):
        if all(_iou(b, m) < 0.3 for m in merged) and two_colour_share(rgb, b) < FLAT_TWO_COLOURS:
            merged.append(b)
    return merged


def two_colour_share(rgb: np.ndarray, box) -> float:
    """Share of the box's pixels in its two most frequent colours, RGB quantised to 64 levels per channel."""
    x, y, w, h = box
    q = rgb[max(0, y):y + h, max(0, x):x + w].reshape(-1, 3) >> 2
    if not len(q):
        return 0.0
    keys = (q[:, 0].astype(np.int32) << 12) | (q[:, 1].astype(np.int32) << 6) | q[:, 2]
    counts = np.bincount(keys, minlength=1 << 18)
    top = np.partition(counts, counts.size - 2)[-2:]
    return float(top.sum()) / len(keys)


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / float(aw * ah + bw * bh - inter)
