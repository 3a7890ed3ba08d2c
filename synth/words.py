"""Words: one upper-case 4-letter word, large and centred, captioned exactly in the report's template.

The toy's text-rendering curriculum data. The probes (docs/, toy-probes) found letter identity learnable on a CPU when
a single word fills 70-85% of the width; the caption is the evaluation's prompt format verbatim,
``On a <bg> background, displaying <fg> text "WORD".``, with colour pairs on light and dark backgrounds. Words come
from wordfreq's English list (alphabetic, exactly 4 letters) minus the held-out set in ``heldout_words.txt``, which
evaluation reads (``qimage eval``): a model trained on this data never saw the words it is tested on.

With ``--edit-pairs`` each sample also gets a pixel-aligned edit target for the toy edit model (replace the word,
recolour the text, recolour the background; see "edit pairs" below and docs/synth.md), and ``eval_edit_pairs``
draws the held-out pairs (held-out words, ``heldout_edits.txt`` colour combinations) that training never sees.
"""
from __future__ import annotations

import functools
import hashlib
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from . import colors
from .layout import Block, fit, place_line
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
    pairs = ctx.pairs or PAIRS
    bg_name, fg_name = pairs[int(rng.integers(len(pairs)))]
    return _plan_in(ctx, rng, colors.BY_NAME[bg_name], colors.BY_NAME[fg_name], vocabulary())


def _plan_in(ctx, rng, bg: colors.Color, fg: colors.Color, vocab) -> Plan:
    W, H = ctx.width, ctx.height
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
    """The edit target of a training pair: one of the three edit types (equal odds), never a held-out word or a
    held-out colour combination (`heldout_edits`). A type this plan cannot take (no other word fits the box, no
    training colour is legible) hands over to the next type in EDIT_TYPES."""
    first = int(rng.integers(len(EDIT_TYPES)))
    for k in range(len(EDIT_TYPES)):
        target = _edit(ctx, p, rng, EDIT_TYPES[(first + k) % len(EDIT_TYPES)], held=False)
        if target is not None:
            return target
    raise RuntimeError(f"words: no edit fits {p.word!r} in {p.bg.name}/{p.fg.name}")


# --- edit pairs ------------------------------------------------------------------------------------------------------
# Three edits of a words image, each the same plan (face, size, box, baseline) rendered again with one field changed,
# so source and target are equal pixel for pixel outside `edit.region`: replace the word (the old and the new ink
# boxes), recolour the text (the text's ink box: only text pixels and their antialiased edge change) or recolour the
# background (the whole image: every background pixel changes, the text stays where it was).
EDIT_TYPES = ("replace_text", "recolor_text", "recolor_background")
INSTRUCTIONS = {"replace_text": 'Change the text to "{new}".', "recolor_text": "Make the text {new}.",
                "recolor_background": "Make the background {new}."}
EDIT_MIN_CONTRAST = 3.0  # WCAG contrast of the edited text against the edited background (as recolour edits elsewhere)
EDIT_MIN_DISTANCE = 120  # RGB distance between a colour and the one replacing it (colors.pick_text's far_from)
HELDOUT_SHARE = 0.15  # of the recolour combinations, per edit type, held out for evaluation


def edit_colors() -> tuple[str, ...]:
    """The colours an edit may introduce: those PAIRS already draws, so the toy has seen every one of them."""
    return tuple(sorted({c for pair in PAIRS for c in pair}))


def all_pairs() -> tuple[tuple[str, str], ...]:
    """`--pairs all`: every (background, text) of edit_colors() that an edit may leave behind (WCAG contrast >=
    EDIT_MIN_CONTRAST), so each colour is drawn in the company of every other, not only in its PAIRS."""
    B = colors.BY_NAME
    return tuple((bg, fg) for bg in edit_colors() for fg in edit_colors()
                 if bg != fg and colors.contrast(B[bg].rgb, B[fg].rgb) >= EDIT_MIN_CONTRAST)


def edit_key(kind: str, bg: str, fg: str, new: str) -> str:
    """A recolour combination as written in heldout_edits.txt: `recolor_text: white/black -> red`."""
    return f"{kind}: {bg}/{fg} -> {new}"


def recolor_options(kind: str, bg: str, fg: str, palette=None) -> list[str]:
    """The colours a `recolor_text` / `recolor_background` edit of a (background, text) pair may choose, held-out
    ones included: another colour of `palette` (edit_colors()), clearly different from the one it replaces and with
    contrast >= EDIT_MIN_CONTRAST against the colour that stays."""
    B = colors.BY_NAME
    old, stay = (fg, bg) if kind == "recolor_text" else (bg, fg)
    return [c for c in (palette or edit_colors()) if c not in (bg, fg)
            and colors.contrast(B[c].rgb, B[stay].rgb) >= EDIT_MIN_CONTRAST
            and colors.distance(B[c].rgb, B[old].rgb) >= EDIT_MIN_DISTANCE]


def heldout_edit_rule() -> list[str]:
    """The rule heldout_edits.txt was written from (a test checks it still holds). Every recolour combination
    (type, background, text colour, new colour) of the PAIRS, per type ranked by the SHA-256 of its key; the first
    round(15%) are held out, skipping one that would leave its (type, pair) without a training colour."""
    out = []
    for kind in EDIT_TYPES[1:]:
        combos = {(bg, fg): recolor_options(kind, bg, fg) for bg, fg in PAIRS}
        keys = sorted((edit_key(kind, bg, fg, c) for (bg, fg), cs in combos.items() for c in cs),
                      key=lambda k: hashlib.sha256(k.encode()).hexdigest())
        quota, left = round(HELDOUT_SHARE * len(keys)), {pair: len(cs) for pair, cs in combos.items()}
        for key in keys:
            pair = tuple(key.split(": ", 1)[1].split(" -> ")[0].split("/"))
            if quota and left[pair] > 1:
                out.append(key)
                left[pair] -= 1
                quota -= 1
    return out


@functools.cache
def heldout_edits() -> frozenset[str]:
    """The held-out recolour combinations (synth/heldout_edits.txt, `edit_key` lines): no training pair draws one."""
    text = Path(__file__).with_name("heldout_edits.txt").read_text(encoding="utf-8")
    return frozenset(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))


def heldout_edit(kind: str, bg: str, fg: str, new: str) -> bool:
    """True for an edit evaluation keeps to itself: a held-out recolour combination, or a replacement by a held-out
    word (`kind` "replace_text", `new` the word; bg and fg do not matter there)."""
    if kind == "replace_text":
        return new in heldout()
    return edit_key(kind, bg, fg, new) in heldout_edits()


def _replace(ctx, p: Plan, rng, pool, tries: int = 40):
    """The plan with another word from `pool` at the same face, size and baseline, centred in the same box; None if
    no word tried fits the box (the font size never changes, so the letters do not jump)."""
    (old,) = p.block.lines
    x0, y0, x1, y1 = p.block.box
    order = rng.permutation(len(pool))[:tries]
    for j in order:
        word = pool[int(j)]
        if word == p.word or not ctx.lib.covers(p.block.face, word):
            continue
        line = place_line(ctx.lib, p.block.face, p.block.size, word, p.block.box, "center", old.baseline)
        if line.ink[0] >= x0 and line.ink[2] <= x1 and line.ink[1] >= y0 and line.ink[3] <= y1:
            return replace(p, word=word, block=replace(p.block, lines=[line]))
    return None


def _edit(ctx, p: Plan, rng, kind: str, held: bool) -> Sample | None:
    """Target sample of edit `kind` of plan `p`, or None when the plan cannot take it. held=False draws training
    edits only (no held-out word, no held-out colour combination), held=True held-out ones only."""
    W, H = p.width, p.height
    if kind == "replace_text":
        target = _replace(ctx, p, rng, sorted(heldout()) if held else vocabulary())
        if target is None:
            return None
        old, new = p.word, target.word
        region = [p.block.lines[0].quad(), target.block.lines[0].quad()]
    else:
        palette = sorted(set(edit_colors()) | {c for pair in (ctx.pairs or ()) for c in pair})
        cands = [c for c in recolor_options(kind, p.bg.name, p.fg.name, palette)
                 if heldout_edit(kind, p.bg.name, p.fg.name, c) == held]
        if not cands:
            return None
        new = cands[int(rng.integers(len(cands)))]
        if kind == "recolor_text":
            old, target = p.fg.name, replace(p, fg=colors.BY_NAME[new])
            region = [p.block.lines[0].quad()]
        else:
            old, target = p.bg.name, replace(p, bg=colors.BY_NAME[new])
            region = [[[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]]]
    s = to_sample(ctx, target, None)
    s.meta["edit"] = {"type": kind, "instruction": INSTRUCTIONS[kind].format(new=new), "old": old, "new": new,
                      "region": [quad_json(q, W, H) for q in region], "word": p.word,
                      "background": p.bg.name, "color": p.fg.name}
    return s


def eval_edit_pairs(n: int, seed: int, width: int = 128, height: int = 64, faces: str | None = None) -> list[dict]:
    """`n` held-out edit pairs for evaluation, the edit types in turn (replace_text, recolor_text,
    recolor_background, ...): a replacement writes a held-out word (heldout_words.txt) over a training word, a
    recolour draws a held-out combination (heldout_edits.txt) on a training word. Each is a dict with `source`
    and `target` (PIL RGB images, pixel-aligned as in training pairs), `instruction` and `meta`: the edit's type,
    old, new, region (quads in pixels), word / background / color (the source's) and the source's and target's
    captions and metadata. Pair i is drawn from `rng_for(seed, i, "edit")`, so the same arguments give the same
    pairs; `faces` restricts the fonts as `--faces` does."""
    from .runner import RunConfig, context
    from .sample import rng_for

    ctx = context(RunConfig(kind="words", n=1, out=".", width=width, height=height, faces=faces))
    held: dict[str, list[tuple[str, str]]] = {}
    for key in sorted(heldout_edits()):
        kind, rest = key.split(": ", 1)
        held.setdefault(kind, []).append(tuple(rest.split(" -> ")[0].split("/")))
    out = []
    for i in range(int(n)):
        rng = rng_for(seed, i, "edit")
        kind = EDIT_TYPES[i % len(EDIT_TYPES)]
        pairs = sorted(set(held[kind])) if kind != "replace_text" else list(PAIRS)
        for _ in range(50):
            bg, fg = pairs[int(rng.integers(len(pairs)))]
            p = _plan_in(ctx, rng, colors.BY_NAME[bg], colors.BY_NAME[fg], vocabulary())
            t = _edit(ctx, p, rng, kind, held=True)
            if t is not None:
                break
        else:
            raise RuntimeError(f"words: no held-out {kind} pair in 50 tries")
        src = to_sample(ctx, p, None)
        meta = {**t.meta["edit"], "source_caption": src.caption, "target_caption": t.caption,
                "source_meta": src.meta, "target_meta": t.meta}
        out.append({"source": src.image, "target": t.image, "instruction": t.meta["edit"]["instruction"], "meta": meta})
    return out
