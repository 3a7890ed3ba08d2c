"""Words: one upper-case 4-letter word, large and centred, captioned exactly in the report's template.

The toy's text-rendering curriculum data. The probes (docs/, toy-probes) found letter identity learnable on a CPU when
a single word fills 70-85% of the width; the caption is the evaluation's prompt format verbatim,
``On a <bg> background, displaying <fg> text "WORD".``, with colour pairs on light and dark backgrounds. Words come
from wordfreq's English list (alphabetic, exactly 4 letters) minus the held-out set in ``heldout_words.txt``, which
evaluation reads (``qimage eval``): a model trained on this data never saw the words it is tested on.
"""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

from . import colors
from .layout import Block, fit
from .pure import render  # the same drawing: one text block on a plain background
from .sample import SCHEMA_VERSION, Sample, build, quad_json

LENGTH = 4
# (background, text): named colours from colors.PALETTE, light and dark backgrounds alike
PAIRS = (
    ("white", "black"), ("black", "white"), ("light gray", "navy blue"), ("navy blue", "yellow"),
    ("cream", "dark red"), ("dark green", "white"), ("yellow", "black"), ("blue", "white"),
    ("off-white", "purple"), ("dark gray", "light blue"), ("light blue", "dark gray"), ("red", "white"),
)
TEMPLATE = 'On a {bg} background, displaying {fg} text "{word}".'


@functools.cache
def heldout() -> frozenset[str]:
    return frozenset((Path(__file__).with_name("heldout_words.txt")).read_text().split())


@functools.cache
def vocabulary() -> tuple[str, ...]:
    import wordfreq

    ban = heldout()
    words = {w.upper() for w in wordfreq.top_n_list("en", 30000) if len(w) == LENGTH and w.isascii() and w.isalpha()}
    return tuple(sorted(words - ban))


@dataclass
class Plan:
    width: int
    height: int
    word: str
    bg: colors.Color
    fg: colors.Color
    block: Block


def plan(ctx, rng, lang: str) -> Plan:
    W, H = ctx.width, ctx.height
    vocab = vocabulary()
    pairs = ctx.pairs or PAIRS
    bg_name, fg_name = pairs[int(rng.integers(len(pairs)))]
    bg, fg = colors.BY_NAME[bg_name], colors.BY_NAME[fg_name]
    for _ in range(20):
        word = vocab[int(rng.integers(len(vocab)))]
        face = ctx.lib.choose(rng, word, ("sans",))
        if face is None:
            continue
        frac = float(rng.uniform(0.70, 0.85))  # the word's share of the width
        mx, my = (1 - frac) / 2 * W, 0.1 * H
        block = fit(ctx.lib, face, word, (mx, my, W - mx, H - my), min_size=max(8, H // 8), max_size=H,
                    spacing=1.0, align="center", valign="middle")
        if block is not None and len(block.lines) == 1:
            return Plan(W, H, word, bg, fg, block)
    raise RuntimeError("words: no single-line layout found in 20 tries")


def to_sample(ctx, p: Plan, rng) -> Sample:
    meta = {
        "kind": "words",
        "lang": "en",
        "font": p.block.face.label,
        "lines": [{"text": ln.text, "quad": quad_json(ln.quad(), p.width, p.height)} for ln in p.block.lines],
        "font_size": p.block.size,
        "background": {"name": p.bg.name, "rgb": list(p.bg.rgb)},
        "color": {"name": p.fg.name, "rgb": list(p.fg.rgb)},
        "size": [p.width, p.height],
        "version": SCHEMA_VERSION,
    }
    return Sample(render(ctx, p), TEMPLATE.format(bg=p.bg.name, fg=p.fg.name, word=p.word), meta)


def make(ctx, rng, lang: str, edit_rng=None) -> Sample:
    return build(sys.modules[__name__], ctx, rng, lang, edit_rng)


def make_edit(ctx, p: Plan, rng, cap_rng) -> Sample:
    raise NotImplementedError  # refused up front by runner.validate: words has no edit pairs
