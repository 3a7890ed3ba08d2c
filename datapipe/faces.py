"""Frontal face boxes for the portrait label and face_mosaic, with scikit-image's bundled LBP cascade.

OpenCV 5 dropped the Haar CascadeClassifier and YuNet needs a downloaded model, so the LBP cascade that ships inside
scikit-image is the one detector available offline. It runs twice at 256 px: on the image, and on a blurred copy
where a pixelated face has lost the block edges that hid it from the first pass (a Gaussian-blurred face is found
by the first pass already). ~0.3 s per image, so only stage 6 asks for faces.
"""
from __future__ import annotations

import cv2
import numpy as np

_CASCADE = None
DETECT_SIDE = 256


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
        if all(_iou(b, m) < 0.3 for m in merged):
            merged.append(b)
    return merged


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / float(aw * ah + bw * bh - inter)
