"""OCR read-back: does a real OCR (rapidocr, PP-OCRv4, offline) read what the metadata says, where it says?

Method: text is normalised (NFKC, lower case, whitespace and punctuation removed: OCR engines disagree on
full-width punctuation and spaces, not on what a renderer can get wrong). For every metadata line, the OCR boxes
whose centre falls inside the line's quad (grown by a quarter of its height) are read left to right and compared
with the line by edit distance. The read-back rate of a set of samples is sum(len - distance) / sum(len) over
all lines: wrong glyphs, tofu, missing text or quads in the wrong place all lower it.
"""
from __future__ import annotations

import functools
import unicodedata

import numpy as np


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if not unicodedata.category(ch)[0] in "PZC")


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), by rapidfuzz."""
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(a, b)


@functools.lru_cache(maxsize=1)
def engine():
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def ocr(image) -> list[tuple[np.ndarray, str]]:
    """[(box 4x2, text)] for a PIL image."""
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    result, _ = engine()(bgr)
    return [(np.asarray(box, np.float32), text) for box, text, _score in (result or [])]


def _inside(point, quad) -> bool:
    import cv2

    return cv2.pointPolygonTest(np.asarray(quad, np.float32), (float(point[0]), float(point[1])), False) >= 0


def _grown(quad, k: float = 0.25):
    q = np.asarray(quad, np.float32)
    c = q.mean(0)
    h = float(np.linalg.norm(q[3] - q[0]))
    w = float(np.linalg.norm(q[1] - q[0]))
    # grow by k*h on every side, in the quad's own frame (a ratio would barely grow long thin lines vertically)
    sx, sy = (w + 2 * k * h) / max(w, 1e-3), (h + 2 * k * h) / max(h, 1e-3)
    u, v = (q[1] - q[0]) / max(w, 1e-3), (q[3] - q[0]) / max(h, 1e-3)
    rel = q - c
    return c + np.outer(rel @ u * sx, u) + np.outer(rel @ v * sy, v)


def score(meta: dict, found: list[tuple[np.ndarray, str]]) -> tuple[int, int]:
    """(matched characters, total characters) of a sample's metadata lines against OCR results."""
    total = matched = 0
    used = set()
    for line in meta["lines"]:
        gt = normalize(line["text"])
        if not gt:
            continue
        quad = _grown(line["quad"])
        hits = [(box[:, 0].min(), k, text) for k, (box, text) in enumerate(found)
                if k not in used and _inside(box.mean(0), quad)]
        hits.sort()
        used.update(k for _, k, _ in hits)
        read = normalize("".join(t for _, _, t in hits))
        total += len(gt)
        matched += max(0, len(gt) - levenshtein(gt, read))
    return matched, total


def rate(samples) -> float:
    """Read-back rate over (image, meta) pairs."""
    m = t = 0
    for image, meta in samples:
        a, b = score(meta, ocr(image))
        m, t = m + a, t + b
    return m / max(t, 1)
