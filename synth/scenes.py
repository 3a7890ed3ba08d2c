"""Scenes: flat coloured shapes with compositional captions (counts, colours, positions), no text.

Method: a task is drawn as in GenEval (single object, two objects, counting, colour attribution, position), its
objects get a shape (circle, square, triangle, star, hexagon: distinguishable by polygon vertex count), a colour (hues
far apart in RGB and from the background) and a size (a fraction of the shorter side, times `--scale`), and are placed
by rejection sampling so that no two bounding boxes come closer than a margin; position tasks place the pair so that
the named relation holds by a wide margin on its axis. `--layout rows` places them in canonical rows instead (one
object centred; two side by side; up to three counted objects evenly along the middle row, four to six on two rows;
two counted groups on an upper and a lower row; a position pair on the named side, a third or a quarter of the canvas
out), each centre jittered by 1.5% of the shorter side and radii capped so that neighbours keep a margin: one layout
per caption, much as a word is always centred, which a small denoiser learns far faster than random placements
(docs/toy.md). Shapes are drawn at 2x and downsampled for clean edges. The metadata lists every object with shape,
colour name, RGB, bbox, centre and radius, plus counts and the relation, which is what a rule-based checker with
OpenCV needs to score a generated image against the caption.

Edit pairs (`--edit-pairs`) recolour, add or remove one object of the plan and render it again, so the rest of the
image keeps its pixels; no training target is a held-out combination, and `eval_edit_pairs` draws only such targets.
"""
from __future__ import annotations

import functools
import math
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image, ImageDraw

from qimage.errors import UserError

from . import colors
from .sample import SCHEMA_VERSION, Sample, build

SHAPES = {"circle": "圆形", "square": "正方形", "triangle": "三角形", "star": "星形", "hexagon": "六边形"}
VERTICES = {"circle": 0, "square": 4, "triangle": 3, "star": 10, "hexagon": 6}
OBJECT_COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray"]
# neutral backgrounds only: a tinted one would share a hue family with some object colour
BACKGROUNDS = ["off-white", "light gray", "cream", "beige", "dark gray"]
TASKS = ("single_object", "two_object", "counting", "colors", "position", "counting_two")
TASK_P = (0.15, 0.2, 0.25, 0.1, 0.2, 0.1)
NUM_EN = ["zero", "one", "two", "three", "four", "five", "six"]
NUM_ZH = ["零", "一", "两", "三", "四", "五", "六"]
LAYOUTS = ("random", "rows")
RELATIONS = {"left of": ("在", "的左边"), "right of": ("在", "的右边"), "above": ("在", "的上方"),
             "below": ("在", "的下方")}


@dataclass
class Obj:
    shape: str
    color: str
    cx: float
    cy: float
    r: float
    angle: float


@dataclass
class Plan:
    width: int
    height: int
    caption_lang: str
    task: str
    bg: str
    objects: list[Obj]
    relation: dict | None


def _colors_for(rng, bg: str, k: int) -> list[str]:
    bg_rgb = colors.BY_NAME[bg].rgb
    cands = [c for c in OBJECT_COLORS if colors.distance(colors.BY_NAME[c].rgb, bg_rgb) >= 110]
    idx = rng.choice(len(cands), size=min(k, len(cands)), replace=False)
    return [cands[int(i)] for i in idx]


def _upright(rng, shape: str) -> float:
    """Rotation in degrees: near upright (tilt within 15 degrees), so a square never reads as a diamond."""
    base = {"triangle": -90.0, "star": -90.0, "hexagon": 0.0}.get(shape, 0.0)
    return base + float(rng.uniform(-15, 15))


def _place(rng, W, H, objs_spec, margin, fixed=None, tries=400):
    """Rejection-sample centres so that padded boxes never overlap and all stay inside the canvas."""
    placed = []
    for shape, color, r in objs_spec:
        for _ in range(tries):
            cx, cy = rng.uniform(r + margin, W - r - margin), rng.uniform(r + margin, H - r - margin)
            if all(abs(cx - o.cx) > r + o.r + margin or abs(cy - o.cy) > r + o.r + margin for o in placed):
                placed.append(Obj(shape, color, float(cx), float(cy), float(r), _upright(rng, shape)))
                break
        else:
            return None
    return placed


def _arrange_rows(rng, W, H, spec, task, margin, jitter, relation=None):
    """Canonical centres for spec [(shape, colour, r)]: the rows layout (module docstring). Radii are capped so that
    neighbours stay 4 margins apart before jitter: touching blobs would read as one object."""
    def row(n, y):
        return [(W * (i + 0.5) / n, y) for i in range(n)]

    n = len(spec)
    if task in ("single_object", "colors"):
        slots, cap = [(W / 2, H / 2)], min(W, H) / 2
    elif task == "counting" and n <= 3:
        slots, cap = row(n, H / 2), min(W / (2 * n), H / 2)
    elif task == "counting":  # four to six: two rows, the upper one takes the odd one out
        top = (n + 1) // 2
        slots, cap = row(top, H / 4) + row(n - top, 3 * H / 4), min(W / (2 * top), H / 4)
    elif task == "counting_two":  # one row per group
        first = sum(1 for s in spec if s[:2] == spec[0][:2])
        slots, cap = row(first, H / 4) + row(n - first, 3 * H / 4), min(W / (2 * max(first, n - first)), H / 4)
    else:  # two_object, position: subject first
        a, b = {"left of": ((W / 3, H / 2), (2 * W / 3, H / 2)), "right of": ((2 * W / 3, H / 2), (W / 3, H / 2)),
                "above": ((W / 2, H / 4), (W / 2, 3 * H / 4)), "below": ((W / 2, 3 * H / 4), (W / 2, H / 4))
                }[relation or "left of"]
        slots, cap = [a, b], (H / 4 if relation in ("above", "below") else min(W / 6, H / 2))
    cap -= 2 * margin
    out = []
    for (shape, color, r), (x, y) in zip(spec, slots):
        dx, dy = rng.uniform(-jitter, jitter, size=2)
        out.append(Obj(shape, color, float(x + dx), float(y + dy), float(min(r, cap)), _upright(rng, shape)))
    return out


def plan(ctx, rng, lang: str) -> Plan:
    W, H = ctx.width, ctx.height
    caption_lang = "zh" if lang == "zh" or (lang == "mix" and rng.random() < 0.5) else "en"
    task = TASKS[int(rng.choice(len(TASKS), p=TASK_P))]
    bg = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    shapes = list(SHAPES)
    S = min(W, H)
    R = S * ctx.scale  # radii scale with --scale; margins and the relation gap do not
    for _ in range(50):
        relation = None
        if task in ("single_object", "colors"):
            spec = [(shapes[int(rng.integers(5))], _colors_for(rng, bg, 1)[0], rng.uniform(0.1, 0.2) * R)]
        elif task in ("two_object", "position"):
            s1, s2 = rng.choice(5, size=2, replace=False)
            c1, c2 = _colors_for(rng, bg, 2)
            spec = [(shapes[int(s1)], c1, rng.uniform(0.08, 0.15) * R), (shapes[int(s2)], c2, rng.uniform(0.08, 0.15) * R)]
        elif task == "counting":
            n = int(rng.integers(2, 7))
            shape, col = shapes[int(rng.integers(5))], _colors_for(rng, bg, 1)[0]
            r = rng.uniform(0.05, 0.1 if n > 3 else 0.13) * R
            spec = [(shape, col, r)] * n
        else:  # counting_two
            s1, s2 = rng.choice(5, size=2, replace=False)
            c1, c2 = _colors_for(rng, bg, 2)
            n1, n2 = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            r = rng.uniform(0.05, 0.09) * R
            spec = [(shapes[int(s1)], c1, r)] * n1 + [(shapes[int(s2)], c2, r)] * n2
        if ctx.layout == "rows":
            rel = None
            if task == "position":
                rel = tuple(RELATIONS)[int(rng.integers(len(RELATIONS)))]
            objs = _arrange_rows(rng, W, H, spec, task, margin=0.03 * S, jitter=0.015 * S, relation=rel)
            relation = {"subject": 0, "object": 1, "relation": rel} if rel else None
            if combo_key(task, objs, relation) in heldout():
                continue
            return Plan(W, H, caption_lang, task, bg, objs, relation)
        objs = _place(rng, W, H, spec, margin=0.03 * S)
        if objs is None:
            continue
        if task == "position":
            a, b = objs
            dx, dy = a.cx - b.cx, a.cy - b.cy
            # the relation must hold clearly: the dominant axis gap exceeds both radii
            if max(abs(dx), abs(dy)) < a.r + b.r or abs(abs(dx) - abs(dy)) < 0.1 * S:
                continue
            rel = ("left of" if dx < 0 else "right of") if abs(dx) > abs(dy) else ("above" if dy < 0 else "below")
            relation = {"subject": 0, "object": 1, "relation": rel}
        if combo_key(task, objs, relation) in heldout():
            continue  # the eval's combinations (synth/heldout_scenes.txt) never reach training data
        return Plan(W, H, caption_lang, task, bg, objs, relation)
    raise UserError(f"scenes: could not place {task} objects in {W}x{H} at --scale {ctx.scale:g} "
                    "(a smaller --scale or a larger --size fits them)")


def polygon(o: Obj, k: float):
    """The object's outline as (x, y) points at scale k (the renderer draws at 2x); a circle is not a polygon."""
    cx, cy, r, a0 = o.cx * k, o.cy * k, o.r * k, math.radians(o.angle)
    if o.shape == "square":
        pts = [(r * 0.8, a0 + math.pi / 4 + i * math.pi / 2) for i in range(4)]
        return [(cx + rr * math.sqrt(2) * math.cos(a), cy + rr * math.sqrt(2) * math.sin(a)) for rr, a in pts]
    n = {"triangle": 3, "hexagon": 6, "star": 10}[o.shape]
    out = []
    for i in range(n):
        rr = r if (o.shape != "star" or i % 2 == 0) else r * 0.45
        a = a0 + 2 * math.pi * i / n
        out.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return out


def render(ctx, p: Plan) -> Image.Image:
    k = 2  # supersample for anti-aliased edges
    img = Image.new("RGB", (p.width * k, p.height * k), colors.BY_NAME[p.bg].rgb)
    d = ImageDraw.Draw(img)
    for o in p.objects:
        rgb = colors.BY_NAME[o.color].rgb
        if o.shape == "circle":
            d.ellipse((k * (o.cx - o.r), k * (o.cy - o.r), k * (o.cx + o.r), k * (o.cy + o.r)), fill=rgb)
        else:
            d.polygon(polygon(o, k), fill=rgb)
    return img.reduce(k)  # box filter: edges stay within a pixel of the shape (no Lanczos ringing)


def _bbox(o: Obj, W: int, H: int):
    if o.shape == "circle":
        xs, ys = [o.cx - o.r, o.cx + o.r], [o.cy - o.r, o.cy + o.r]
    else:
        pts = polygon(o, 1)
        xs, ys = [x for x, _ in pts], [y for _, y in pts]
    return [round(max(0, min(xs)), 1), round(max(0, min(ys)), 1), round(min(W - 1, max(xs)), 1),
            round(min(H - 1, max(ys)), 1)]


def _phrase(n: int, color: str, shape: str, lang: str) -> str:
    if lang == "zh":
        return f"{NUM_ZH[n]}个{colors.BY_NAME[color].zh}的{SHAPES[shape]}"
    noun = shape + ("es" if shape.endswith("x") else "s") if n > 1 else shape
    art = ("an" if color[0] in "aeiou" else "a") if n == 1 else NUM_EN[n]
    return f"{art} {color} {noun}"


def groups(objects: list[Obj]) -> list[tuple[str, str, int]]:
    """(colour, shape, count) in first-appearance order."""
    out: dict[tuple[str, str], int] = {}
    for o in objects:
        out[(o.color, o.shape)] = out.get((o.color, o.shape), 0) + 1
    return [(c, s, n) for (c, s), n in out.items()]


def describe(p: Plan) -> str:
    lang = p.caption_lang
    if p.relation:
        a, b = p.objects[p.relation["subject"]], p.objects[p.relation["object"]]
        if lang == "zh":
            pre, post = RELATIONS[p.relation["relation"]]
            return f"{_phrase(1, a.color, a.shape, 'zh')}{pre}{_phrase(1, b.color, b.shape, 'zh')}{post}"
        return f"{_phrase(1, a.color, a.shape, 'en')} {p.relation['relation']} {_phrase(1, b.color, b.shape, 'en')}"
    parts = [_phrase(n, c, s, lang) for c, s, n in groups(p.objects)]
    if lang == "zh":
        return "和".join(parts)
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def combo_key(task: str, objects: list[Obj], relation: dict | None) -> str:
    """A scene's combination, free of language, template, background and placement: what a held-out scenes prompt
    must never share with training. Groups are sorted (the same objects in another order are the same picture); a
    relation is written from its left or upper object ("A right of B" is "B left of A")."""
    if relation:
        a, b, rel = objects[relation["subject"]], objects[relation["object"]], relation["relation"]
        if rel in ("right of", "below"):
            a, b, rel = b, a, {"right of": "left of", "below": "above"}[rel]
        return f"position: {a.color} {a.shape} {rel} {b.color} {b.shape}"
    return f"{task}: " + " + ".join(sorted(f"{n} {c} {s}" for c, s, n in groups(objects)))


@functools.cache
def heldout() -> tuple[str, ...]:
    """The combinations `qimage eval` scores and no scene ever shows (synth/heldout_scenes.txt, one per line)."""
    text = Path(__file__).with_name("heldout_scenes.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def from_key(ctx, rng, key: str) -> Plan:
    """The plan of a held-out combination in the rows layout (the toy's): background, jitter and rotation from rng."""
    task, _, body = key.partition(": ")
    relation = None
    if task == "position":
        m = re.fullmatch(r"(\w+) (\w+) (left of|above) (\w+) (\w+)", body)
        spec = [(m[2], m[1], 1), (m[5], m[4], 1)]
        relation = {"subject": 0, "object": 1, "relation": m[3]}
        if rng.random() < 0.5:  # the same picture, said from the other object
            spec, relation["relation"] = spec[::-1], {"left of": "right of", "above": "below"}[m[3]]
    else:
        spec = [(shape, color, int(n)) for n, color, shape in (g.split(" ") for g in body.split(" + "))]
    names = {c for _, c, _ in spec}
    bgs = [bg for bg in BACKGROUNDS if all(colors.distance(colors.BY_NAME[c].rgb, colors.BY_NAME[bg].rgb) >= 110
                                           for c in names)]
    bg = bgs[int(rng.integers(len(bgs)))]
    S = min(ctx.width, ctx.height)
    lo, hi = {"two_object": (0.08, 0.15), "position": (0.08, 0.15), "counting_two": (0.05, 0.09)}[task]
    r = rng.uniform(lo, hi) * S * ctx.scale
    objs = [(shape, color, r) for shape, color, n in spec for _ in range(n)]
    placed = _arrange_rows(rng, ctx.width, ctx.height, objs, task, margin=0.03 * S, jitter=0.015 * S,
                           relation=relation and relation["relation"])
    return Plan(ctx.width, ctx.height, "en", task, bg, placed, relation)


EN = ["A photo of {d}.", "{D} on a {bg} background.", "An image showing {d}.", "A simple picture: {d}, on {bg}."]
# EN's fixed words, each one token of the toy's tokenizer (qimage.tokenizer.SCENE_WORDS); "An" starts a description
# of one object whose colour begins with a vowel ("An orange circle ..."). A test checks every caption is made of them.
TEMPLATE_WORDS = ("A photo of", "An image showing", "A simple picture:", "An", " on a", " on")
ZH = ["一张图片，画着{d}。", "{bg}背景上有{d}。", "画面中{d}。"]


def caption(rng, p: Plan) -> str:
    d = describe(p)
    if p.caption_lang == "zh":
        tpl = ZH[int(rng.integers(len(ZH)))]
        return tpl.format(d=d, bg=colors.BY_NAME[p.bg].zh)
    tpl = EN[int(rng.integers(len(EN)))]
    return tpl.format(d=d, D=d[:1].upper() + d[1:], bg=p.bg)


def to_sample(ctx, p: Plan, rng) -> Sample:
    W, H = p.width, p.height
    objects = [{"shape": o.shape, "color": o.color, "rgb": list(colors.BY_NAME[o.color].rgb), "bbox": _bbox(o, W, H),
                "center": [round(o.cx, 1), round(o.cy, 1)], "radius": round(o.r, 1), "rotation": round(o.angle, 1),
                "vertices": VERTICES[o.shape]} for o in p.objects]
    meta = {
        "kind": "scenes",
        "lang": "none",
        "font": "",
        "lines": [],
        "caption_lang": p.caption_lang,
        "task": p.task,
        "objects": objects,
        "counts": [{"color": c, "shape": s, "count": n} for c, s, n in groups(p.objects)],
        "relation": p.relation,
        "background": {"name": p.bg, "rgb": list(colors.BY_NAME[p.bg].rgb)},
        "size": [W, H],
        "version": SCHEMA_VERSION,
    }
    return Sample(render(ctx, p), caption(rng, p), meta)


def make(ctx, rng, lang: str, edit_rng=None) -> Sample:
    """One sample; with `edit_rng`, also its edit target. A scene that admits none of the three edits (at --scale 2
    a counting scene of identical objects, with no room left for another, can be neither recoloured nor reduced by
    name) is re-planned from the sample's own generator, up to REPLAN_TRIES times, and written without a pair only
    if every plan fails, then as its first plan (`edit` None; the manifest counts them). The first plan is `build`'s:
    a sample whose first plan takes an edit, or none after all, is the same bytes as without --edit-pairs; only a
    re-planned one differs there. Deterministic: only the sample's and its edit's generators are drawn from."""
    if edit_rng is None:
        return build(sys.modules[__name__], ctx, rng, lang)
    first = p = plan(ctx, rng, lang)
    first_cap = cap_rng = rng.spawn(1)[0]  # as in build: the caption's generator, the target's spawned from it
    got = _draw_edit(p, edit_rng)
    for _ in range(REPLAN_TRIES if got is None else 0):
        try:
            p = plan(ctx, rng, lang)
        except UserError:  # no room for this draw's objects: keep the scene that was placed
            break
        cap_rng = rng.spawn(1)[0]
        got = _draw_edit(p, edit_rng)
        if got is not None:
            break
    if got is None:  # the first plan, as without --edit-pairs
        p, cap_rng = first, first_cap
    s = to_sample(ctx, p, cap_rng)
    if got is not None:
        s.edit = _edit_sample(ctx, p, *got, cap_rng)
    return s


# --- edit pairs ------------------------------------------------------------------------------------------------------
# Three edits, each the source's plan rendered again with one object changed, added or removed: the other objects and
# the background are the same pixels, and `edit.region` is the changed object's box. Recolour and removal name the
# object by colour and shape, so they take only an object whose (colour, shape) is unique in the scene (a counting
# scene of identical objects can only gain one). A target whose description is a held-out combination
# (heldout_scenes.txt, under any task) is never drawn for training; `eval_edit_pairs` draws only those.
EDIT_TYPES = ("recolor_object", "add_object", "remove_object")
RECOLOR_MIN_DISTANCE = 100  # RGB distance between an object's old and new colour
REPLAN_TRIES = 20  # re-plans of a scene that takes no edit before it is written without a pair


def _article(color: str) -> str:
    return "an" if color[0] in "aeiou" else "a"


def instruction(kind: str, lang: str, shape: str, color: str, new: str | None = None) -> str:
    """`Change the red circle to green.`, `Add a blue square.`, `Remove the yellow star.` (and Chinese forms)."""
    zh = colors.BY_NAME[color].zh
    if lang == "zh":
        return {"recolor_object": f"把{zh}的{SHAPES[shape]}改成{colors.BY_NAME[new or color].zh}。",
                "add_object": f"添加一个{zh}的{SHAPES[shape]}。", "remove_object": f"去掉{zh}的{SHAPES[shape]}。"}[kind]
    return {"recolor_object": f"Change the {color} {shape} to {new}.", "add_object": f"Add {_article(color)} {color} {shape}.",
            "remove_object": f"Remove the {color} {shape}."}[kind]


def task_of(objects: list[Obj], relation: dict | None) -> str:
    """The task an edited scene now shows (a relation survives only a recolour)."""
    if relation:
        return "position"
    g = groups(objects)
    if len(g) == 1:
        return "single_object" if g[0][2] == 1 else "counting"
    if len(g) == 2:
        return "two_object" if g[0][2] == g[1][2] == 1 else "counting_two"
    return "edited"


@functools.cache
def _heldout_bodies() -> frozenset[str]:
    return frozenset(k.partition(": ")[2] for k in heldout())


def heldout_target(objects: list[Obj], relation: dict | None) -> bool:
    """True when a scene shows a held-out combination: its position key, or its groups under any task (the same
    objects make the same description whether the eval calls them two_object or counting_two)."""
    if relation:
        return combo_key("position", objects, relation) in heldout()
    return combo_key("", objects, None).partition(": ")[2] in _heldout_bodies()


def _unique(objects: list[Obj]) -> list[int]:
    keys = [(o.color, o.shape) for o in objects]
    return [i for i, k in enumerate(keys) if keys.count(k) == 1]


def _free_spot(rng, p: Plan, shape: str, r: float, tries: int = 200) -> Obj | None:
    """An object of radius r whose padded box overlaps no other object's, inside the canvas (as `_place`)."""
    margin = 0.03 * min(p.width, p.height)
    if 2 * (r + margin) >= min(p.width, p.height):
        return None
    for _ in range(tries):
        cx, cy = rng.uniform(r + margin, p.width - r - margin), rng.uniform(r + margin, p.height - r - margin)
        if all(abs(cx - o.cx) > r + o.r + margin or abs(cy - o.cy) > r + o.r + margin for o in p.objects):
            return Obj(shape, "", float(cx), float(cy), float(r), _upright(rng, shape))
    return None


def _recolor_colors(p: Plan, o: Obj) -> list[str]:
    """Colours `o` may take: legible on the background, far from its old colour, not making a twin of another object."""
    present = {(x.color, x.shape) for x in p.objects}
    bg = colors.BY_NAME[p.bg].rgb
    return [c for c in OBJECT_COLORS if c != o.color and (c, o.shape) not in present
            and colors.distance(colors.BY_NAME[c].rgb, bg) >= 110
            and colors.distance(colors.BY_NAME[c].rgb, colors.BY_NAME[o.color].rgb) >= RECOLOR_MIN_DISTANCE]


def _edit_plan(p: Plan, rng, kind: str, held: bool):
    """(target plan, changed object index in the plan that holds it, edit info) of edit `kind`, or None when `p`
    cannot take it; held=False never draws a held-out target, held=True only held-out ones."""
    lang = p.caption_lang
    if kind == "recolor_object":
        for i in rng.permutation(_unique(p.objects)) if _unique(p.objects) else []:
            o = p.objects[int(i)]
            for new in rng.permutation(_recolor_colors(p, o)):
                objs = list(p.objects)
                objs[int(i)] = replace(o, color=str(new))
                if heldout_target(objs, p.relation) == held:
                    target = replace(p, objects=objs, task=task_of(objs, p.relation))
                    return target, int(i), {"old": o.color, "new": str(new), "shape": o.shape,
                                            "instruction": instruction(kind, lang, o.shape, o.color, str(new))}
        return None
    if kind == "remove_object":
        if len(p.objects) < 2:
            return None
        for i in rng.permutation(_unique(p.objects)) if _unique(p.objects) else []:
            o = p.objects[int(i)]
            objs = [x for j, x in enumerate(p.objects) if j != int(i)]
            if heldout_target(objs, None) == held:
                target = replace(p, objects=objs, relation=None, task=task_of(objs, None))
                return target, int(i), {"old": f"{o.color} {o.shape}", "new": None, "shape": o.shape, "color": o.color,
                                        "instruction": instruction(kind, lang, o.shape, o.color)}
        return None
    # add_object: a shape of the scene's size, somewhere free
    r = p.objects[int(rng.integers(len(p.objects)))].r
    for _ in range(20):
        shape = tuple(SHAPES)[int(rng.integers(len(SHAPES)))]
        color = _colors_for(rng, p.bg, 1)[0]
        spot = _free_spot(rng, p, shape, r)
        if spot is None:
            return None
        objs = [*p.objects, replace(spot, color=color)]
        if max(n for _, _, n in groups(objs)) >= len(NUM_EN):  # captions count to six
            continue
        if heldout_target(objs, None) == held:
            target = replace(p, objects=objs, relation=None, task=task_of(objs, None))
            return target, len(objs) - 1, {"old": None, "new": f"{color} {shape}", "shape": shape, "color": color,
                                           "instruction": instruction(kind, lang, shape, color)}
    return None


def _region(p: Plan, i: int) -> list:
    b = _bbox(p.objects[i], p.width, p.height)
    return [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]]]


def _draw_edit(p: Plan, rng):
    """(kind, (target plan, object index, info)) of one training edit of `p`, or None when `p` takes none: the types
    in random order (equal odds), a type the scene cannot take handing over to the next."""
    for k in rng.permutation(len(EDIT_TYPES)):
        kind = EDIT_TYPES[int(k)]
        got = _edit_plan(p, rng, kind, held=False)
        if got is not None:
            return kind, got
    return None


def _edit_sample(ctx, p: Plan, kind: str, got, cap_rng) -> Sample:
    target, i, info = got
    s = to_sample(ctx, target, cap_rng.spawn(1)[0])
    # an added object's box is in the target, a removed one's in the source
    region = _region(p if kind == "remove_object" else target, i)
    s.meta["edit"] = {"type": kind, "region": region, "object": i, **info}
    return s


def make_edit(ctx, p: Plan, rng, cap_rng) -> Sample | None:
    """Recolour, add or remove one object (equal odds; a type the scene cannot take hands over to another drawn
    at random, so single objects are recoloured or joined, identical counted objects joined); the target caption
    describes the new scene. None when `p` takes no edit (`make` re-plans such a scene first)."""
    got = _draw_edit(p, rng)
    return None if got is None else _edit_sample(ctx, p, *got, cap_rng)


def eval_edit_pairs(n: int, seed: int, width: int = 128, height: int = 64, scale: float = 1.0) -> list[dict]:
    """`n` held-out scene edit pairs for evaluation, the types in turn (recolor_object, add_object, remove_object,
    ...): each target is a held-out combination (heldout_scenes.txt) in the rows layout, as `from_key` draws the
    eval's scenes, and its source is that plan with one object recoloured, missing or extra, so the pair is
    pixel-aligned as in training. Each is a dict with `source`, `target` (PIL RGB), `instruction` (English) and
    `meta`: type, old, new, shape, region (quads in pixels), object, key (the held-out combination), background,
    the captions and both metadata. Pair i comes from `rng_for(seed, i, "edit")`."""
    from .runner import RunConfig, context
    from .sample import rng_for

    ctx = context(RunConfig(kind="scenes", n=1, out=".", width=width, height=height, scale=scale))
    keys = heldout()
    out = []
    for i in range(int(n)):
        rng = rng_for(seed, i, "edit")
        kind = EDIT_TYPES[i % len(EDIT_TYPES)]
        for _ in range(100):
            key = keys[int(rng.integers(len(keys)))]
            tgt = from_key(ctx, rng, key)
            got = _inverse_edit(tgt, rng, kind)
            if got is not None:
                break
        else:
            raise RuntimeError(f"scenes: no held-out {kind} pair in 100 tries")
        src, j, info = got
        region = _region(src if kind == "remove_object" else tgt, j)
        cap = rng.spawn(1)[0]
        s, t = to_sample(ctx, src, cap), to_sample(ctx, tgt, cap.spawn(1)[0])
        meta = {"type": kind, "region": region, "object": j, "key": key, "background": tgt.bg, **info,
                "source_caption": s.caption, "target_caption": t.caption, "source_meta": s.meta, "target_meta": t.meta}
        out.append({"source": s.image, "target": t.image, "instruction": info["instruction"], "meta": meta})
    return out


def _inverse_edit(tgt: Plan, rng, kind: str):
    """A training-style source for held-out target `tgt` such that edit `kind` turns it into `tgt`:
    (source plan, the changed object's index in the plan that holds it, edit info), or None."""
    if kind == "add_object":  # the source lacks one object of the target
        j = int(rng.integers(len(tgt.objects)))
        o = tgt.objects[j]
        src = replace(tgt, objects=[x for k, x in enumerate(tgt.objects) if k != j], relation=None)
        src = replace(src, task=task_of(src.objects, None))
        return src, j, {"old": None, "new": f"{o.color} {o.shape}", "shape": o.shape, "color": o.color,
                        "instruction": instruction(kind, "en", o.shape, o.color)}
    if kind == "remove_object":  # the source has one more object, of a (colour, shape) the target lacks
        present = {(x.color, x.shape) for x in tgt.objects}
        r = tgt.objects[int(rng.integers(len(tgt.objects)))].r
        for _ in range(20):
            shape = tuple(SHAPES)[int(rng.integers(len(SHAPES)))]
            color = _colors_for(rng, tgt.bg, 1)[0]
            spot = _free_spot(rng, tgt, shape, r)
            if spot is None:
                return None
            if (color, shape) in present:
                continue
            objs = [*tgt.objects, replace(spot, color=color)]
            src = replace(tgt, objects=objs, relation=None, task=task_of(objs, None))
            return src, len(objs) - 1, {"old": f"{color} {shape}", "new": None, "shape": shape, "color": color,
                                        "instruction": instruction(kind, "en", shape, color)}
        return None
    # recolor_object: a uniquely named object of the target had another colour in the source
    for j in rng.permutation(_unique(tgt.objects)) if _unique(tgt.objects) else []:
        o = tgt.objects[int(j)]
        for old in rng.permutation(_recolor_colors(tgt, o)):
            objs = list(tgt.objects)
            objs[int(j)] = replace(o, color=str(old))
            src = replace(tgt, objects=objs, task=task_of(objs, tgt.relation))
            return src, int(j), {"old": str(old), "new": o.color, "shape": o.shape,
                                 "instruction": instruction(kind, "en", o.shape, str(old), o.color)}
    return None
