"""Complex rendering: documents and UI built from templates whose placeholder boxes are filled by rules.

Method: a template (`templates/*.yaml`) places a document frame in the canvas, decorative shapes, and text boxes in
frame-relative coordinates. Each box names a placeholder (e.g. "在此输入内容"), a content rule (`fillers.py`),
alignment, a font role (title or body), a size range relative to the frame height, a colour role of the theme and
the role of the surface under it. Per sample a theme (`templates/themes.yaml`) and one family per font role are
drawn; every box is filled with fresh content and laid out by `layout.fit` inside its own box: the text shrinks
within the box's size range and wraps up to its line limit; content that still does not fit is redrawn, then cut
word by word (character by character in Chinese). Nothing is ever drawn outside its box. When all the lines' quads
cover more than `max_text_area` of the image (0.3, as for pure), the box with the most text is refitted smaller
within its size range until they do not (`_sparse`), so the data pipeline's intensive_text filter keeps the render.
"""
from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass, replace
from importlib import resources

import yaml
from PIL import Image, ImageDraw, ImageFilter

from . import captions, colors, edits, fillers
from .layout import Block, draw_block, fit, ink_area
from .sample import SCHEMA_VERSION, Sample, build, quad_json, sample_lang

TITLE_STYLES = ("sans", "serif", "display")
BODY_STYLES = ("sans", "serif")


@functools.lru_cache(maxsize=1)
def templates() -> dict[str, dict]:
    root = resources.files("qimage.synth") / "templates"
    out = {}
    for f in sorted(root.iterdir(), key=lambda p: p.name):
        if f.name.endswith(".yaml") and f.name != "themes.yaml":
            t = yaml.safe_load(f.read_text(encoding="utf-8"))
            out[t["name"]] = t
    return out


@functools.lru_cache(maxsize=1)
def themes() -> list[dict]:
    text = (resources.files("qimage.synth") / "templates" / "themes.yaml").read_text(encoding="utf-8")
    return [{k: (v if k == "name" else colors.BY_NAME[v]) for k, v in t.items()} for t in yaml.safe_load(text)]


@dataclass
class Fill:
    spec: dict
    box: tuple  # frame pixels
    text: str
    color: colors.Color
    block: Block | None


@dataclass
class Plan:
    width: int
    height: int
    lang: str
    template: str
    theme: dict
    frame: tuple[int, int, int, int]
    fills: list[Fill]


def _families(lib, styles):
    return sorted({f.name for f in lib.faces if f.style in styles})


def _face(lib, family: str, role: str, text: str):
    """The face of `family` for `role` (heaviest for titles, lightest >= 400 for body) that covers `text`."""
    def rank(f):
        w = f.weight or 400
        return -w if role == "title" else abs(w - 400)
    for pool in ([f for f in lib.faces if f.name == family],
                 [f for f in lib.faces if f.style in (TITLE_STYLES if role == "title" else BODY_STYLES)],
                 lib.faces):
        cands = sorted((f for f in pool if lib.covers(f, text)), key=lambda f: (rank(f), f.label))
        if cands:
            return cands[0]
    return None


def _px_box(rel, frame_w, frame_h):
    return (rel[0] * frame_w, rel[1] * frame_h, rel[2] * frame_w, rel[3] * frame_h)


def _shorten(text: str, lang: str) -> str:
    if lang == "zh" or " " not in text.strip():
        return text[:-1]
    return text.rsplit(" ", 1)[0]


def _fit_kw(spec: dict, fh: int) -> dict:
    # the template's lower bound, not a fixed pixel floor: at 512 px it is >= 11 px (OCR-legible); small canvases
    # (the toy model's 256 px) scale it down instead of emptying boxes
    min_size = max(7, round(spec["size"][0] * fh))
    max_size = max(min_size, round(spec["size"][1] * fh))
    return dict(min_size=min_size, max_size=max_size, spacing=float(spec.get("spacing", 1.2)), align=spec["align"],
                valign=spec["valign"], max_lines=int(spec.get("max_lines", 1)))


def fill_box(ctx, rng, spec: dict, lang: str, families: dict, fw: int, fh: int, text: str | None = None) -> Fill:
    box = _px_box(spec["box"], fw, fh)
    kw = _fit_kw(spec, fh)
    rule = fillers.RULES[spec["content"]]
    for attempt in range(8):
        t = text if (text is not None and attempt == 0) else rule(rng, lang)
        while t.strip():
            face = _face(ctx.lib, families[spec["font"]], spec["font"], t)
            if face is None:  # no face can draw it: new content, never tofu
                break
            block = fit(ctx.lib, face, t, box, **kw)
            if block is not None:
                return Fill(spec, box, t, None, block)
            if attempt < 6:
                break
            t = _shorten(t, lang).strip()
    return Fill(spec, box, "", None, None)


def plan(ctx, rng, lang: str) -> Plan:
    W, H = ctx.width, ctx.height
    lang = sample_lang(rng, lang)
    text_lang = "en" if lang == "mix" and rng.random() < 0.5 else ("zh" if lang == "mix" else lang)
    names = sorted(templates())
    t = templates()[names[int(rng.integers(len(names)))]]
    theme = themes()[int(rng.integers(len(themes())))]
    f = t["frame"]
    frame = (round(f[0] * W), round(f[1] * H), round(f[2] * W), round(f[3] * H))
    fw, fh = frame[2] - frame[0], frame[3] - frame[1]
    fams = {"title": _families(ctx.lib, TITLE_STYLES), "body": _families(ctx.lib, BODY_STYLES)}
    families = {k: v[int(rng.integers(len(v)))] for k, v in fams.items()}
    fills = []
    for spec in t["boxes"]:
        box_lang = text_lang if lang != "mix" else ("zh" if rng.random() < 0.5 else "en")
        fl = fill_box(ctx, rng, spec, box_lang, families, fw, fh)
        fl.color = theme[spec["color"]]
        fills.append(fl)
    _sparse(ctx, fills, fh, ctx.max_text_area * W * H)
    return Plan(W, H, lang, t["name"], theme, frame, fills)


def _sparse(ctx, fills: list[Fill], fh: int, max_px: float) -> None:
    """While the lines' quads of all boxes cover more than `max_px` pixels, refit the box whose text covers the most
    at the size that takes the excess off it (same text and face, never below the box's size range), then the next.
    The data pipeline rejects renders over 0.35 (intensive_text): a three-line poster title at the top of its range
    covered up to 0.42 of the image with the rest of the poster. Draws no random numbers, so a sample already under
    the cap is the one it always was."""
    stuck: set[int] = set()
    while (total := sum(ink_area(fl.block) for fl in fills if fl.block is not None)) > max_px:
        cands = [i for i, fl in enumerate(fills) if fl.block is not None and i not in stuck
                 and fl.block.size > _fit_kw(fl.spec, fh)["min_size"]]
        if not cands:
            return
        i = max(cands, key=lambda i: ink_area(fills[i].block))
        fl = fills[i]
        own = ink_area(fl.block)
        kw = _fit_kw(fl.spec, fh)
        size = math.floor(fl.block.size * math.sqrt(max(0.0, own - (total - max_px)) / own))
        kw["max_size"] = max(kw["min_size"], min(fl.block.size - 1, size))
        block = fit(ctx.lib, fl.block.face, fl.text, fl.box, **kw)
        if block is None:
            stuck.add(i)
        else:
            fl.block = block


def render(ctx, p: Plan) -> Image.Image:
    t = templates()[p.template]
    th = p.theme
    img = Image.new("RGB", (p.width, p.height), th["canvas"].rgb)
    x0, y0, x1, y1 = p.frame
    fw, fh = x1 - x0, y1 - y0
    radius = round(t.get("radius", 0) * min(fw, fh) * 2)
    if t.get("shadow"):
        sh = Image.new("L", img.size, 0)
        ImageDraw.Draw(sh).rounded_rectangle((x0 + 6, y0 + 8, x1 + 6, y1 + 8), radius=radius, fill=110)
        sh = sh.filter(ImageFilter.GaussianBlur(6))
        img.paste((0, 0, 0), mask=sh)
    page = Image.new("RGB", (fw, fh), th["bg"].rgb)
    d = ImageDraw.Draw(page)
    for s in t.get("shapes", []):
        b = [round(v) for v in _px_box(s["box"], fw, fh)]
        col = th[s["fill"]].rgb
        if s["type"] == "rect":
            d.rectangle(b, fill=col)
        elif s["type"] == "ellipse":
            d.ellipse(b, fill=col)
        elif s["type"] == "round_rect":
            d.rounded_rectangle(b, radius=round(s.get("radius", 0.02) * fh), fill=col)
    for fl in p.fills:
        if fl.block is None:
            continue
        draw_block(d, ctx.lib, fl.block, fl.color.rgb)
        if fl.spec.get("marker") == "dot":
            cx, cy, r = _marker(fl, fw)
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fl.color.rgb)
    mask = Image.new("L", (fw, fh), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, fw - 1, fh - 1), radius=radius, fill=255)
    img.paste(page, (x0, y0), mask)
    return img


def _marker(fl: Fill, fw: int):
    """Centre and radius of a bullet dot: left of the box, at the first line's x-height."""
    return fl.box[0] - 0.04 * fw, fl.block.lines[0].baseline - 0.35 * fl.block.size, max(2.0, fl.block.size * 0.14)


def _marker_quads(fl: Fill, fw: int, dx: int, dy: int) -> list:
    if fl.block is None or fl.spec.get("marker") != "dot":
        return []
    cx, cy, r = _marker(fl, fw)
    r += 1.5
    return [[[cx - r + dx, cy - r + dy], [cx + r + dx, cy - r + dy], [cx + r + dx, cy + r + dy], [cx - r + dx, cy + r + dy]]]


def _shift(quad, dx, dy):
    return [[x + dx, y + dy] for x, y in quad]


def to_sample(ctx, p: Plan, rng) -> Sample:
    t = templates()[p.template]
    x0, y0 = p.frame[:2]
    lines, boxes, texts = [], [], []
    for fl in p.fills:
        bx = [round(fl.box[0] + x0, 1), round(fl.box[1] + y0, 1), round(fl.box[2] + x0, 1), round(fl.box[3] + y0, 1)]
        entry = {"id": fl.spec["id"], "box": bx, "placeholder": fl.spec["placeholder"]["zh" if _is_zh(fl.text) else "en"],
                 "content": fl.spec["content"], "text": fl.text, "align": fl.spec["align"],
                 "color": fl.color.name, "font": fl.block.face.label if fl.block else None,
                 "font_size": fl.block.size if fl.block else None}
        boxes.append(entry)
        if fl.block is None:
            continue
        for ln in fl.block.lines:
            lines.append({"text": ln.text, "quad": quad_json(_shift(ln.quad(), x0, y0), p.width, p.height),
                          "box": fl.spec["id"]})
        texts.append(captions.joined([ln.text for ln in fl.block.lines], "zh" if _is_zh(fl.text) else "en"))
    lang_cap = "zh" if p.lang == "zh" else "en"
    title = next((b["text"] for b in boxes if b["text"]), "")
    caption = captions.doc_caption(rng, lang_cap, t["doc"][lang_cap], p.theme["bg"].name_in(lang_cap),
                                   p.theme["accent"].name_in(lang_cap), title, texts)
    fonts = sorted({b["font"] for b in boxes if b["font"]})
    meta = {
        "kind": "complex",
        "lang": p.lang,
        "font": ", ".join(fonts),
        "lines": lines,
        "template": p.template,
        "theme": p.theme["name"],
        "frame": list(p.frame),
        "boxes": boxes,
        "background": {"name": p.theme["bg"].name, "rgb": list(p.theme["bg"].rgb)},
        "size": [p.width, p.height],
        "version": SCHEMA_VERSION,
    }
    return Sample(render(ctx, p), caption, meta)


def _is_zh(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def make(ctx, rng, lang: str, edit_rng=None) -> Sample:
    return build(sys.modules[__name__], ctx, rng, lang, edit_rng)


def make_edit(ctx, p: Plan, rng, cap_rng) -> Sample:
    """Refill one box with new content (60%) or recolour one box's text (40%)."""
    filled = [i for i, fl in enumerate(p.fills) if fl.block is not None]
    i = filled[int(rng.integers(len(filled)))]
    fl = p.fills[i]
    lang = "zh" if _is_zh(fl.text) else "en"
    old = captions.joined([ln.text for ln in fl.block.lines], lang)
    x0, y0 = p.frame[:2]
    new_fill = None
    if rng.random() < 0.6:
        fams = {"title": fl.block.face.name, "body": fl.block.face.name}
        fw, fh = p.frame[2] - p.frame[0], p.frame[3] - p.frame[1]
        for _ in range(10):
            cand = fill_box(ctx, rng, fl.spec, lang, fams, fw, fh)
            if cand.block is not None and cand.text != fl.text:
                new_fill = replace(cand, color=fl.color)
                break
    if new_fill is not None:
        new = captions.joined([ln.text for ln in new_fill.block.lines], lang)
        instruction = edits.replace_instruction(lang, old, new)
        bx = fl.box
        region = [[[bx[0] + x0, bx[1] + y0], [bx[2] + x0, bx[1] + y0], [bx[2] + x0, bx[3] + y0], [bx[0] + x0, bx[3] + y0]]]
        region += _marker_quads(fl, fw, x0, y0) + _marker_quads(new_fill, fw, x0, y0)
        info = edits.edit_meta("replace_text", instruction, [quad_json(q, p.width, p.height) for q in region],
                               box=fl.spec["id"], old=old, new=new)
    else:
        under = p.theme[fl.spec["over"]]
        col = edits.recolor(rng, under.rgb, fl.color)
        new_fill = replace(fl, color=col)
        instruction = edits.recolor_instruction(lang, fl.color, col, text=old)
        region = [_shift(ln.quad(), x0, y0) for ln in fl.block.lines]
        region += _marker_quads(fl, p.frame[2] - p.frame[0], x0, y0)
        info = edits.edit_meta("recolor", instruction, [quad_json(q, p.width, p.height) for q in region],
                               box=fl.spec["id"], old=fl.color.name, new=col.name)
    fills = list(p.fills)
    fills[i] = new_fill
    s = to_sample(ctx, replace(p, fills=fills), cap_rng.spawn(1)[0])
    s.meta["edit"] = info
    return s
