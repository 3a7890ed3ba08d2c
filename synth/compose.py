"""Compositional rendering: text written or printed on a physical medium, placed into a scene photo.

Method, per sample:
1. A medium (paper, card, sticky note, wooden board, chalkboard, cardboard, metal sign; `media.py`) is textured at
   about its on-screen resolution, and a short text is fitted into its inner box (`layout.fit`) and drawn with an
   ink that suits the medium (handwritten faces on notes, chalk with dust, paint on wood).
2. Slight curvature: the medium is bent by a vertical sine displacement dy(x) (`cv2.remap`). Each line's ink box
   becomes the parallelogram that encloses it: dy is split into its best straight line a + b x and a residual,
   whose range over the box widens the edges.
3. Perspective: a homography maps the medium's corners to a rotated, jittered quadrilateral in the canvas;
   premultiplied RGBA is warped so edges do not darken. The line parallelograms go through the same homography, so
   quads are in pixels of the written image.
4. A soft drop shadow under the medium, directional lighting over the whole image, mild sensor noise.
The background is a user photo (`--backgrounds`) or a procedural scene (`backgrounds.py`).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from . import backgrounds, captions, colors, corpus, edits, media
from .layout import Block, fit
from .pure import min_px
from .sample import SCHEMA_VERSION, Sample, build, quad_json, sample_lang

MODES = ("word", "phrase", "sentence")
MODE_P = (0.35, 0.45, 0.2)


@dataclass
class Plan:
    width: int
    height: int
    lang: str
    bg: dict
    medium: int
    base: tuple
    tex_seed: int
    mw: int
    mh: int
    pad: int
    block: Block  # in padded medium coordinates
    ink: colors.Color
    opacity: float
    curve: tuple[float, float, float]  # amplitude px, cycles across the width, phase
    dst: list  # medium corners in the canvas (tl, tr, br, bl)
    shadow: tuple[float, float, float, float]  # dx, dy, blur sigma, opacity
    light: tuple[float, float]  # angle, strength
    noise: tuple[float, int]  # sigma, seed
    blur: float
    how: str


def _dy(p: Plan, x):
    amp, cycles, phase = p.curve
    return amp * np.sin(math.pi * np.asarray(x, np.float64) / p.mw * cycles + phase)


def _dst_quad(rng, W, H, aspect):
    for _ in range(30):
        dw = rng.uniform(0.55, 0.85) * W
        dh = dw * aspect
        if dh > 0.8 * H:
            dw, dh = dw * 0.8 * H / dh, 0.8 * H
        th = math.radians(rng.uniform(-10, 10))
        cx = W / 2 + rng.uniform(-0.5, 0.5) * (W - dw) * 0.8
        cy = H / 2 + rng.uniform(-0.5, 0.5) * (H - dh) * 0.8
        c, s = math.cos(th), math.sin(th)
        pts = []
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            x, y = sx * dw / 2 + rng.uniform(-0.05, 0.05) * dw, sy * dh / 2 + rng.uniform(-0.05, 0.05) * dh
            pts.append([cx + c * x - s * y, cy + s * x + c * y])
        pts = np.array(pts)
        if pts[:, 0].min() >= 0.02 * W and pts[:, 0].max() <= 0.98 * W and pts[:, 1].min() >= 0.02 * H \
                and pts[:, 1].max() <= 0.98 * H:
            return pts.tolist(), dw
    raise RuntimeError("compose: no medium placement inside the canvas")


def plan(ctx, rng, lang: str) -> Plan:
    W, H = ctx.width, ctx.height
    lang = sample_lang(rng, lang)
    bg = backgrounds.choose(rng, ctx.backgrounds)
    mi = int(rng.integers(len(media.MEDIA)))
    med = media.MEDIA[mi]
    lo, hi = np.array(med.base[0]), np.array(med.base[1])
    base = tuple(int(v) for v in lo + (hi - lo) * rng.random())
    aspect = float(rng.uniform(0.45, 1.0))
    dst, dw = _dst_quad(rng, W, H, aspect)
    mw = int(round(dw * 1.1))
    mh = int(round(mw * aspect))
    amp = 0.0 if rng.random() < 0.3 else float(rng.uniform(0.005, 0.025) * mh)
    curve = (amp, float(rng.uniform(0.5, 1.2)), float(rng.uniform(0, 2 * math.pi)))
    pad = int(math.ceil(amp)) + 2
    ink = media.ink_for(rng, med, base)
    styles = med.styles
    # the homography shrinks the medium by about dw/mw and perspective by up to ~20% more
    min_size = int(math.ceil(min_px(H) * (mw / dw) * 1.2))
    mode = MODES[int(rng.choice(len(MODES), p=MODE_P))]
    for attempt in range(20):
        text = corpus.text(rng, lang, mode)
        face = ctx.lib.choose(rng, text, styles)
        if face is None:
            continue
        m = rng.uniform(0.08, 0.14)
        box = (m * mw, pad + m * mh, mw - m * mw, pad + mh - m * mh)
        align = ("left", "center")[int(rng.integers(2))] if mode == "sentence" else "center"
        block = fit(ctx.lib, face, text, box, min_size=min_size, max_size=max(min_size, int(0.3 * mh)),
                    spacing=float(rng.uniform(1.05, 1.35)), align=align, valign="middle")
        if block is not None:
            break
        if attempt >= 4 and mode != "word":
            mode = MODES[MODES.index(mode) - 1]
    else:
        raise RuntimeError("compose: no legible layout found in 20 tries")
    return Plan(
        W, H, lang, bg, mi, base, int(rng.integers(2**31)), mw, mh, pad, block, ink,
        float(rng.uniform(0.85, 1.0)), curve, dst,
        (float(rng.uniform(3, 12)) * rng.choice([-1, 1]), float(rng.uniform(4, 14)), float(rng.uniform(4, 10)),
         float(rng.uniform(0.25, 0.55))),
        (float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0.0, 0.25))),
        (float(rng.uniform(1.0, 4.0)), int(rng.integers(2**31))),
        float(rng.uniform(0.0, 0.7)) if rng.random() < 0.3 else 0.0,
        "chalk" if med.texture == "chalk" else "handwritten" if face.style == "hand" else
        med.how[int(rng.integers(len(med.how)))],
    )


def _homography(p: Plan) -> np.ndarray:
    src = np.float32([[0, p.pad], [p.mw, p.pad], [p.mw, p.pad + p.mh], [0, p.pad + p.mh]])
    return cv2.getPerspectiveTransform(src, np.float32(p.dst))


def line_quads(p: Plan) -> list[list[list[float]]]:
    """Each line's enclosing quad in canvas pixels: ink box -> curvature parallelogram -> homography."""
    Hm = _homography(p)
    out = []
    for ln in p.block.lines:
        (x0, y0), _, (x1, y1), _ = ln.quad()
        xs = np.linspace(x0, x1, 33)
        d = _dy(p, xs)
        b, a = np.polyfit(xs, d, 1) if x1 > x0 else (0.0, float(d[0]))
        r = d - (a + b * xs)
        rmin, rmax = float(r.min()) - 0.5, float(r.max()) + 0.5
        par = np.float32([[x0, y0 + a + b * x0 + rmin], [x1, y0 + a + b * x1 + rmin],
                          [x1, y1 + a + b * x1 + rmax], [x0, y1 + a + b * x0 + rmax]])
        out.append(cv2.perspectiveTransform(par[None], Hm)[0].tolist())
    return out


def render(ctx, p: Plan) -> Image.Image:
    W, H = p.width, p.height
    med = media.MEDIA[p.medium]
    tex = media.texture(med, p.base, p.mw, p.mh, p.tex_seed)
    mh_pad = p.mh + 2 * p.pad
    rgb = np.zeros((mh_pad, p.mw, 3), np.float32)
    rgb[p.pad:p.pad + p.mh] = tex
    alpha = np.zeros((mh_pad, p.mw), np.float32)
    alpha[p.pad:p.pad + p.mh] = 1.0
    mask = Image.new("L", (p.mw, mh_pad), 0)
    font = ctx.lib.font(p.block.face, p.block.size)
    d = ImageDraw.Draw(mask)
    for ln in p.block.lines:
        d.text((ln.x, ln.baseline), ln.text, font=font, fill=255, anchor="ls")
    a = np.asarray(mask, np.float32) / 255.0 * p.opacity
    if med.texture == "chalk":  # chalk leaves gaps where the board's grain shows through
        a *= np.random.default_rng(p.tex_seed + 1).uniform(0.65, 1.0, size=a.shape).astype(np.float32)
    rgb = rgb * (1 - a[..., None]) + np.float32(p.ink.rgb) * a[..., None]
    if p.curve[0] > 0:
        yy, xx = np.mgrid[0:mh_pad, 0:p.mw].astype(np.float32)
        map_y = (yy - _dy(p, xx[0])[None, :]).astype(np.float32)
        rgb = cv2.remap(rgb, xx, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        alpha = cv2.remap(alpha, xx, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    Hm = _homography(p)
    warp = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    prem = cv2.warpPerspective(rgb * alpha[..., None], Hm, (W, H), **warp)
    wa = cv2.warpPerspective(alpha, Hm, (W, H), **warp)
    img = backgrounds.render(p.bg, W, H)
    dx, dy, sig, op = p.shadow
    shadow = cv2.GaussianBlur(cv2.warpAffine(wa, np.float32([[1, 0, dx], [0, 1, dy]]), (W, H)), (0, 0), sig)
    img = img * (1 - op * shadow)[..., None]
    img = img * (1 - wa[..., None]) + prem
    ang, strength = p.light
    # a linear light field is separable: a row term plus a column term
    lx = (np.arange(W, dtype=np.float32) / W - 0.5) * (2 * strength * math.cos(ang))
    ly = (np.arange(H, dtype=np.float32) / H - 0.5) * (2 * strength * math.sin(ang))
    img = img * (1 + lx[None, :, None] + ly[:, None, None])
    if p.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), p.blur)
    sigma, seed = p.noise
    img = img + np.random.default_rng(seed).standard_normal(size=(H, W, 1), dtype=np.float32) * np.float32(sigma)
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))


def to_sample(ctx, p: Plan, rng) -> Sample:
    med = media.MEDIA[p.medium]
    lang_cap = "zh" if p.lang == "zh" else "en"
    texts = [ln.text for ln in p.block.lines]
    how = p.how
    caption = captions.medium_caption(rng, lang_cap, med.name_in(lang_cap), backgrounds.scene_name(p.bg, lang_cap),
                                      p.ink.name_in(lang_cap), media.HOW_ZH[how] if lang_cap == "zh" else how,
                                      captions.joined(texts, p.lang))
    quads = line_quads(p)
    meta = {
        "kind": "compose",
        "lang": p.lang,
        "font": p.block.face.label,
        "lines": [{"text": t, "quad": quad_json(q, p.width, p.height)} for t, q in zip(texts, quads)],
        "font_size": p.block.size,
        "medium": {"name": med.name, "quad": quad_json(p.dst, p.width, p.height), "rgb": list(p.base)},
        "background": dict(p.bg),
        "scene": backgrounds.scene_name(p.bg, "en"),
        "color": {"name": p.ink.name, "rgb": list(p.ink.rgb)},
        "how": how,
        "curvature_px": round(p.curve[0], 2),
        "homography": np.round(_homography(p), 6).tolist(),
        "size": [p.width, p.height],
        "version": SCHEMA_VERSION,
    }
    return Sample(render(ctx, p), caption, meta)


def make(ctx, rng, lang: str, edit_rng=None) -> Sample:
    return build(sys.modules[__name__], ctx, rng, lang, edit_rng)


def make_edit(ctx, p: Plan, rng, cap_rng) -> Sample:
    """Replace one line or recolour the ink; medium, warp, light and noise are shared with the source."""
    return edits.text_edit(ctx, p, rng, cap_rng, to_sample, "ink", p.base, line_quads)
