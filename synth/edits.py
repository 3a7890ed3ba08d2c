"""Edit instructions shared by the synthesisers: replace one line's text, or change the text colour.

Method: an edit changes one field of a synthesiser's plan and renders the plan again with the same random state,
so the target shares everything else (background, medium, warp, noise) with the source. A replacement keeps the
layout: the new text is drawn at the old line's size and baseline, aligned in the same box, and is chosen to fit
that box, so only the pixels around the old and new line change. The changed region is recorded in the target's
metadata (`edit.region`, quads in image pixels) so tests and the editing work can check it.
"""
from __future__ import annotations

from dataclasses import replace

from . import colors, corpus
from .layout import Block, place_line


def replacement_text(rng, lang: str, old: str) -> str:
    n = max(1, len(old.split())) if lang != "zh" else max(1, len(old) // 2)
    return corpus.phrase(rng, lang, int(rng.integers(1, n + 1)))


def replace_line(rng, lib, block: Block, lang: str, tries: int = 30):
    """A copy of `block` with one line replaced by a different text that fits its box; None if none found."""
    order = rng.permutation(len(block.lines))
    for i in order[: min(3, len(order))]:
        old = block.lines[int(i)]
        for _ in range(tries // 3):
            text = replacement_text(rng, lang, old.text)
            if text == old.text or not lib.covers(block.face, text):
                continue
            new = place_line(lib, block.face, block.size, text, block.box, block.align, old.baseline)
            x0, y0, x1, y1 = block.box
            if new.ink[0] >= x0 and new.ink[2] <= x1 and new.ink[1] >= y0 and new.ink[3] <= y1:
                lines = list(block.lines)
                lines[int(i)] = new
                return replace(block, lines=lines), int(i), old.text, text
    return None


def replace_instruction(lang: str, old: str, new: str) -> str:
    if lang == "zh":
        return f"把文字“{old}”替换为“{new}”。"
    return f'Replace the text "{old}" with "{new}".'


def recolor(rng, background, current: colors.Color) -> colors.Color:
    return colors.pick_text(rng, background, min_contrast=3.0, exclude=(current.name,), far_from=current.rgb)


def recolor_instruction(lang: str, old: colors.Color, new: colors.Color, text: str | None = None) -> str:
    if lang == "zh":
        what = f"“{text}”的文字颜色" if text else "文字颜色"
        return f"把{what}从{old.zh}改为{new.zh}。"
    what = f'the colour of the text "{text}"' if text else "the text colour"
    return f"Change {what} from {old.name} to {new.name}."


def edit_meta(kind: str, instruction: str, region: list, **extra) -> dict:
    return {"type": kind, "instruction": instruction, "region": region, **extra}


def text_edit(ctx, p, rng, cap_rng, to_sample, color_field: str, under_rgb, quads):
    """The edit target of a plan holding one text block (`p.block`, `p.lang`, colour in `p.<color_field>`):
    replace one line (60%) or recolour the text (40%), then render it with the synthesiser's `to_sample`.
    `quads(plan)` gives the plan's line quads in image pixels; they make the recorded region."""
    from .sample import quad_json

    lang_i = "zh" if p.lang == "zh" else "en"
    rep = replace_line(rng, ctx.lib, p.block, p.lang) if rng.random() < 0.6 else None
    if rep is not None:
        block, i, old, new = rep
        target = replace(p, block=block)
        info = edit_meta("replace_text", replace_instruction(lang_i, old, new), [quads(p)[i], quads(target)[i]],
                         line=i, old=old, new=new)
    else:
        cur = getattr(p, color_field)
        col = recolor(rng, under_rgb, cur)
        target = replace(p, **{color_field: col})
        info = edit_meta("recolor", recolor_instruction(lang_i, cur, col), quads(p), old=cur.name, new=col.name)
    info["region"] = [quad_json(q, p.width, p.height) for q in info["region"]]
    s = to_sample(ctx, target, cap_rng.spawn(1)[0])
    s.meta["edit"] = info
    return s
