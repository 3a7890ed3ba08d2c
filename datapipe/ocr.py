"""One OCR pass per image (rapidocr, PP-OCRv4 det + rec, Chinese and English), shared by stage 4.

OCR costs 0.3-0.5 s per image on this CPU, ~100x the rest of a row. Two things avoid it: synthetic samples
bring their ground-truth lines in the sidecar JSON, and a cheap text-presence check (below) skips images with no
text-like strokes at all.
"""
from __future__ import annotations

import cv2
import numpy as np

_ENGINE = None


def engine():
    global _ENGINE
    if _ENGINE is None:
        import logging

        from rapidocr_onnxruntime import RapidOCR

        _ENGINE = RapidOCR()
        # rapidocr logs every call at INFO; one line per image would drown the progress bar.
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    return _ENGINE


def box_hw(quad) -> tuple[float, float]:
    """(height, width) of a 4-point text box: the box's side lengths, so slanted lines are measured along the line."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    w = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    h = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    return float(h), float(w)


def text_present(grey: np.ndarray) -> bool:
    """Cheap test for text-like strokes (a few ms at 512 px); False means OCR would find nothing worth its cost.

    Text is rows of small, high-contrast strokes: a morphological gradient, thresholded and closed horizontally,
    merges a word into one wide, short blob. Any blob 4 px to 60% of the image high, at least twice as wide as
    high, and well filled, counts. Large glyphs (a 90 px Chinese sign) are hollow outlines at 512 px, so the test
    repeats at a quarter of the size where they become ordinary strokes. Textured photos also produce such blobs
    (then OCR just runs); what the check must not do is miss real text, so it errs towards yes.
    """
    if _strokes(grey):
        return True
    h, w = grey.shape
    return _strokes(cv2.resize(grey, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA))


def _strokes(grey: np.ndarray) -> bool:
    grad = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    level, bw = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    if level < 20:  # no contrast anywhere
        return False
    bw = cv2.morphologyEx(bw, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 1)))
    _, _, stats, _ = cv2.connectedComponentsWithStats(bw, connectivity=8)
    H = grey.shape[0]
    for x, y, w, h, area in stats[1:]:
        if 4 <= h <= 0.6 * H and w >= 2 * h and area >= 0.35 * w * h:
            return True
    return False


def lines_from_meta(meta: dict) -> list | None:
    lines = meta.get("lines")
    if not isinstance(lines, list):
        return None
    out = []
    for ln in lines:
        try:
            quad = np.asarray(ln["quad"], dtype=np.float64).reshape(4, 2)
            out.append((quad, str(ln.get("text", "")), 1.0))
        except (KeyError, TypeError, ValueError):
            return None
    return out


def run_ocr(sample, cfg: dict) -> tuple[list, str]:
    """Fill sample.ocr with [(quad in original pixels, text, confidence)] and return (boxes, how)."""
    if sample.synthetic and cfg.get("trust_meta_lines", True):
        lines = lines_from_meta(sample.meta)
        if lines is not None:
            return lines, "meta"
    if cfg.get("presence_check", True) and not text_present(sample.grey):
        return [], "skipped"
    from qimage.datapipe.sample import fit_side

    img = fit_side(sample.rgb, int(cfg.get("max_side", 1024)))
    s = img.shape[1] / sample.rgb.shape[1]
    result, _ = engine()(img)
    boxes = []
    for quad, text, conf in result or []:
        if float(conf) >= float(cfg.get("min_confidence", 0.5)):
            boxes.append((np.asarray(quad, dtype=np.float64) / s, str(text), float(conf)))
    return boxes, "ocr"


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x3400 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FFFF


def language(boxes: list, min_chars: int = 2) -> str:
    """en / zh / other / none from the recognised characters: the script holding most letters wins.

    CJK ideographs count for zh, ASCII letters for en, any other letter (Cyrillic, kana, Hangul, ...) for other.
    Fewer than `min_chars` letters in all means none (digits and punctuation alone are not language).
    """
    zh = en = other = 0
    for _, text, _ in boxes:
        for ch in text:
            if is_cjk(ch):
                zh += 1
            elif ch.isascii() and ch.isalpha():
                en += 1
            elif ch.isalpha():
                other += 1
    if zh + en + other < min_chars:
        return "none"
    # A Chinese character carries about as much as an English word; weigh so mixed zh/en signs split sensibly.
    scores = {"zh": zh * 3, "en": en, "other": other}
    return max(scores, key=lambda k: (scores[k], k == "zh"))
