"""Pure rendering: corpus text laid out on a clean background (the report's first synthesiser).

Method: draw a text (one or two words, a phrase, a sentence or a paragraph) from the word sources, pick a font face
that covers every character (else draw a new text: the report drops such paragraphs), a named background colour and
a named text colour with WCAG contrast >= 4.5, margins, alignment and line spacing; then `layout.fit` finds the
largest size at which the wrapped text fits. Sizes below `min_px` are never used (the report's small-character
filter), so a text that would need them is dropped for a shorter one. The lines' quads (as written to ID.json) cover
at most `max_text_area` of the image (0.3 by default, `--max-text-area`): a layout that would cover more is refitted
at the size that brings it under, so the data pipeline's intensive_text filter (text box area / image area > 0.35,
the report's "too dense" test) keeps every render. The caption quotes the text verbatim.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

from PIL import Image, ImageDraw

from . import captions, colors, corpus, edits
from .layout import Block, draw_block, fit, ink_area
from .sample import SCHEMA_VERSION, Sample, build, quad_json, sample_lang

MODES = ("word", "phrase", "sentence", "paragraph")
MODE_P = (0.2, 0.3, 0.2, 0.3)
STYLES = ("sans", "serif", "display")


@dataclass
class Plan:
    width: int
    height: int
    lang: str
    mode: str
    bg: colors.Color
    fg: colors.Color
    block: Block


def min_px(height: int) -> int:
    # ~14 px at 512: the smallest size rapidocr still reads reliably in our probes
    return max(10, round(0.027 * height))


def fit_sparse(lib, face, text: str, box, *, max_area: float, width: int, height: int, **kw) -> Block | None:
    """`layout.fit`, then, while the lines' quads cover more than `max_area` of the image, the fit again with the
    largest size capped where the area would come under (area grows with the square of the size; the rewrap can
    move it a little, hence the loop). None when no legible size is sparse enough. Draws no random numbers, so a
    layout already under the cap is exactly the one `fit` gives."""
    block = fit(lib, face, text, box, **kw)
    while block is not None and (area := ink_area(block) / (width * height)) > max_area:
        size = min(block.size - 1, math.floor(block.size * math.sqrt(max_area / area)))
        if size < kw["min_size"]:
            return None
        block = fit(lib, face, text, box, **{**kw, "max_size": size})
    return block


def plan(ctx, rng, lang: str) -> Plan:
    W, H = ctx.width, ctx.height
    lang = sample_lang(rng, lang)
    mode = MODES[int(rng.choice(len(MODES), p=MODE_P))]
    bg = colors.pick(rng)
    fg = colors.pick_text(rng, bg.rgb, exclude=(bg.name,))
    for attempt in range(20):
        text = corpus.text(rng, lang, mode)
        face = ctx.lib.choose(rng, text, STYLES)
        if face is None:  # a character no face can draw: drop the text, never draw tofu
            continue
        mx, my = rng.uniform(0.04, 0.12) * W, rng.uniform(0.04, 0.12) * H
        box = (mx, my, W - mx, H - my)
        align = ("left", "center", "right")[int(rng.choice(3, p=[0.5, 0.35, 0.15]))]
        valign = ("top", "middle", "bottom")[int(rng.choice(3, p=[0.3, 0.6, 0.1]))]
        spacing = float(rng.uniform(1.1, 1.6))
        max_size = round(H * (0.28 if mode in ("word", "phrase") else 0.12))
        block = fit_sparse(ctx.lib, face, text, box, max_area=ctx.max_text_area, width=W, height=H,
                           min_size=min_px(H), max_size=max_size, spacing=spacing, align=align, valign=valign)
        if block is not None:
            return Plan(W, H, lang, mode, bg, fg, block)
        if attempt >= 4 and mode != "word":  # too long for the canvas at a legible size: go shorter
            mode = MODES[MODES.index(mode) - 1]
    raise RuntimeError("pure: no legible layout found in 20 tries")


def render(ctx, p: Plan) -> Image.Image:
    img = Image.new("RGB", (p.width, p.height), p.bg.rgb)
    draw_block(ImageDraw.Draw(img), ctx.lib, p.block, p.fg.rgb)
    return img


def to_sample(ctx, p: Plan, rng) -> Sample:
    texts = [ln.text for ln in p.block.lines]
    lang_cap = "zh" if p.lang == "zh" else "en"
    caption = captions.text_caption(rng, lang_cap, p.bg.name_in(lang_cap), p.fg.name_in(lang_cap),
                                    captions.joined(texts, p.lang))
    meta = {
        "kind": "pure",
        "lang": p.lang,
        "font": p.block.face.label,
        "lines": [{"text": ln.text, "quad": quad_json(ln.quad(), p.width, p.height)} for ln in p.block.lines],
        "font_size": p.block.size,
        "mode": p.mode,
        "align": p.block.align,
        "background": {"name": p.bg.name, "rgb": list(p.bg.rgb)},
        "color": {"name": p.fg.name, "rgb": list(p.fg.rgb)},
        "size": [p.width, p.height],
        "version": SCHEMA_VERSION,
    }
    return Sample(render(ctx, p), caption, meta)


def make(ctx, rng, lang: str, edit_rng=None) -> Sample:
    return build(sys.modules[__name__], ctx, rng, lang, edit_rng)


def make_edit(ctx, p: Plan, rng, cap_rng) -> Sample:
    """Replace one line or recolour the text; the target otherwise equals the source."""
    return edits.text_edit(ctx, p, rng, cap_rng, to_sample, "fg", p.bg.rgb,
                           lambda q: [ln.quad() for ln in q.block.lines])
