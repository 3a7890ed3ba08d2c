"""Dynamic text layout: the largest font size at which a text, wrapped, fits a box.

Method (after Glyph-ByT5's simple layout): the text is split into break units, Latin words (broken only at spaces)
and Chinese characters (a break may fall between any two, except before closing punctuation). For a candidate size
the units are packed greedily into lines no wider than the box; a size fits when the block of lines (first ascent,
line pitch = size x spacing, last descent) fits the box height and the line limit. Binary search over sizes finds the
largest fitting size. Unit widths are measured once at a reference size and scaled (they are cached per face and
unit, so words repeated across samples cost nothing); the chosen size is then verified with exact measurements
of each line's ink box, stepping down if any line would leave the box. A text that does not fit at the minimum size
returns None: callers shorten or drop it, never draw past the box.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .fonts import Face, FontLibrary

REF_SIZE = 100
_UNIT = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef][，。！？、；：”’）》」』%]*|[^\s\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+|\s+")
_WIDTHS: dict = {}


@dataclass
class Line:
    text: str
    x: float  # pen origin (left of the advance box)
    baseline: float
    ink: tuple[float, float, float, float]  # (x0, y0, x1, y1) of the glyphs, image pixels

    def quad(self, pad: float = 1.0) -> list[list[float]]:
        x0, y0, x1, y1 = self.ink
        x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


@dataclass
class Block:
    face: Face
    size: int
    lines: list[Line]
    box: tuple[float, float, float, float]
    align: str
    spacing: float


def ink_area(block: Block, pad: float = 1.0) -> float:
    """Pixels covered by the block's line quads (`Line.quad`, padded as written to ID.json), summed over lines: the
    text area the data pipeline's intensive_text filter adds up."""
    return sum((ln.ink[2] - ln.ink[0] + 2 * pad) * (ln.ink[3] - ln.ink[1] + 2 * pad) for ln in block.lines)


def units(text: str) -> list[str]:
    return _UNIT.findall(text)


def _unit_width(lib: FontLibrary, face: Face, unit: str) -> float:
    key = (face, unit)
    w = _WIDTHS.get(key)
    if w is None:
        if len(_WIDTHS) > 400_000:  # bound memory in long runs
            _WIDTHS.clear()
        w = _WIDTHS[key] = lib.font(face, REF_SIZE).getlength(unit)
    return w


def wrap(text: str, width_of, max_width: float, max_lines: int | None = None) -> list[str] | None:
    """Greedy line breaking; None when a single unit is wider than the box or the line limit is exceeded."""
    lines, cur, cur_w, pending_space = [], "", 0.0, ""
    for paragraph in text.split("\n"):
        for u in units(paragraph):
            if u.isspace():
                pending_space = " " if cur else ""
                continue
            w = width_of(u)
            if w > max_width:
                return None
            sw = width_of(pending_space) if pending_space else 0.0
            if cur and cur_w + sw + w > max_width:
                lines.append(cur)
                cur, cur_w = u, w
            else:
                cur, cur_w = cur + pending_space + u, cur_w + sw + w
            pending_space = ""
        if cur:
            lines.append(cur)
        cur, cur_w, pending_space = "", 0.0, ""
        if max_lines is not None and len(lines) > max_lines:
            return None
    return lines


def _metrics(lib: FontLibrary, face: Face, size: int) -> tuple[float, float]:
    asc, desc = lib.font(face, REF_SIZE).getmetrics()
    return asc * size / REF_SIZE, desc * size / REF_SIZE


def _try(lib, face, text, size, w, h, spacing, max_lines):
    scale = size / REF_SIZE
    lines = wrap(text, lambda u: _unit_width(lib, face, u) * scale, w, max_lines)
    if not lines:
        return None
    asc, desc = _metrics(lib, face, size)
    height = asc + desc + (len(lines) - 1) * size * spacing
    return lines if height <= h else None


def fit(lib: FontLibrary, face: Face, text: str, box, *, min_size: int, max_size: int, spacing: float = 1.25,
        align: str = "left", valign: str = "top", max_lines: int | None = None) -> Block | None:
    """Lay `text` out in `box` = (x0, y0, x1, y1) at the largest size in [min_size, max_size] that fits, or None."""
    # integer box: pen positions stay whole pixels, so measured ink boxes are exactly where glyphs land
    box = x0, y0, x1, y1 = math.ceil(box[0]), math.ceil(box[1]), math.floor(box[2]), math.floor(box[3])
    w, h = x1 - x0, y1 - y0
    lo, hi, best = int(min_size), int(max_size), None
    if hi < lo or w <= 0 or h <= 0:
        return None
    while lo <= hi:
        mid = (lo + hi) // 2
        if _try(lib, face, text, mid, w, h, spacing, max_lines):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    size = best
    # exact check: measured ink must stay inside the box (scaled widths ignore hinting and overhangs)
    while size is not None and size >= min_size:
        lines = _try(lib, face, text, size, w, h, spacing, max_lines)
        block = _place(lib, face, lines, size, box, spacing, align, valign) if lines else None
        if block and all(_inside(ln.ink, box) for ln in block.lines):
            return block
        size -= max(1, size // 32)
    return None


def _inside(ink, box) -> bool:
    return ink[0] >= box[0] and ink[1] >= box[1] and ink[2] <= box[2] and ink[3] <= box[3]


def _place(lib, face, lines, size, box, spacing, align, valign) -> Block:
    font = lib.font(face, size)
    x0, y0, x1, y1 = box
    asc, desc = font.getmetrics()
    pitch = size * spacing
    height = asc + desc + (len(lines) - 1) * pitch
    top = {"top": y0, "middle": y0 + (y1 - y0 - height) / 2, "bottom": y1 - height}[valign]
    out = []
    for i, text in enumerate(lines):
        baseline = round(top + asc + i * pitch)
        out.append(_aligned(font, text, x0, x1, align, baseline))
    return Block(face, size, out, tuple(box), align, spacing)


def place_line(lib: FontLibrary, face: Face, size: int, text: str, box, align: str, baseline: float) -> Line:
    """One line at a fixed size and baseline, aligned in `box` horizontally (used by edits that keep the layout)."""
    return _aligned(lib.font(face, size), text, box[0], box[2], align, baseline)


def _aligned(font, text: str, x0: float, x1: float, align: str, baseline: float) -> Line:
    # align the ink, not the advance box: side bearings (italics, 'j') would otherwise poke out of the box
    l, t, r, b = font.getbbox(text, anchor="ls")
    x = {"left": x0 - l, "center": x0 + (x1 - x0 - (r - l)) / 2 - l, "right": x1 - r}[align]
    x = float(min(max(round(x), x0 - l), x1 - r)) if r - l <= x1 - x0 else float(round(x))
    return Line(text, x, baseline, (x + l, baseline + t, x + r, baseline + b))


def draw_block(draw, lib: FontLibrary, block: Block, fill, offset=(0, 0)) -> None:
    font = lib.font(block.face, block.size)
    for ln in block.lines:
        draw.text((ln.x + offset[0], ln.baseline + offset[1]), ln.text, font=font, fill=fill, anchor="ls")
