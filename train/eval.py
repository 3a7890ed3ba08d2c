"""`qimage eval`: can the model write a held-out word, and draw what a compositional prompt asks for?

Text: for held-out 4-letter words (never to be used in training data: recipes exclude ``HELDOUT_WORDS``) and colour
pairs in plain English on light and dark backgrounds, the prompt is ``On a <bg> background, displaying <fg> text
"WORD".``; rapidocr reads each generated image (upscaled so small toy images reach the detector's working size) and

    exact     = [normalise(read) == normalise(WORD)]                 normalise: NFKC, lower case, no spaces/punctuation
    char_acc  = max(0, 1 - levenshtein(read, WORD) / len(WORD))

Scenes (GenEval-style, rule-based), held out: each prompt is one of the 48 combinations of synth/heldout_scenes.txt
(two objects, a position relation, two counted groups; no synthesised training scene ever shows one, and none appears
in the scenes the shipped toy trained on), drawn in the toy's layout (rows, objects at scale 2) with a background and
caption template from the seed; the plan's metadata is the answer key. Every pixel is labelled with the nearest of the
scene's background and object colours (within an RGB distance); connected blobs per colour larger than a fifth of the
smallest object's disc and at least 0.3 solid (area over convex hull: a star is about 0.55, while the rim of a
black-on-cream edge, which reads as brown, is far less) are objects. A blob's shape is the template (circle, square, triangle, star, hexagon; upright
within 15 degrees; the blob's area and centre) whose anti-aliased coverage overlaps the blob's colour coverage best
(soft IoU); blobs under 50 px (radius < 4 px), where a hexagon and a circle differ by a pixel, keep their count but
are not judged by shape. A prompt scores 1 when every colour has its exact object count, every judged blob of a colour
has the asked shape, and, for position prompts, the subject's blob centre lies on the named side of the object's
along the dominant axis; else 0. The score is the mean over prompts, per task too.

Non-words: 48 random 4-letter strings that are no English word (``NONWORDS``; training never renders them), in the
words' prompt format: whether the model spells letters or recalls word shapes it saw.
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np

from qimage.errors import UserError

# Held out from every training set (the probes' 12 first, then more): common, distinct 4-letter words.
HELDOUT_WORDS = (
    "MILK ROSE GOLD WIND FISH LAMP BOOK STAR CAKE DOOR TREE SHIP "
    "BIRD CORN DUCK FROG HAND KITE LION MOON NEST PARK RAIN SALT "
    "SNOW SOUP TOWN VASE WOLF YARN BELL COAT DRUM FARM GIFT HILL "
    "JAZZ KING LEAF MASK NAIL OVEN PEAR QUIZ ROAD SEED TENT WAVE"
).split()
# Random 4-letter strings that are no English word (wordfreq frequency 0, not in the words vocabulary), each read
# back exactly by the eval's OCR from a ground-truth render; drawn once from numpy's default_rng(20261202).
NONWORDS = (
    "DJSE XBNV EJXL HNEM OLQU BYYJ CWAP GZPE OTSV SQFW SDKB ERAC QHCD PWJF CMKH ODSK ZMKA GDZK IXZM QUZG AMDD YGJR "
    "YCQM TBEF YGOF ARDV XEEY NTTX HLYP HFZM DIIQ INKP LQAK SQFZ JEQX ZNUR UQCE YMGQ HKTP UELH RPEE NTFJ WKTV JWPA "
    "ANMU ZODJ OHRV VUKV"
).split()
# (background, text): light and dark backgrounds alike, colour names from qimage.synth.colors
COLOR_PAIRS = (
    ("white", "black"), ("black", "white"), ("light gray", "navy blue"), ("navy blue", "yellow"),
    ("cream", "dark red"), ("dark green", "white"), ("light blue", "black"), ("dark gray", "orange"),
)
PROMPT = 'On a {bg} background, displaying {fg} text "{word}".'


def word_items(n: int, words=HELDOUT_WORDS) -> list[dict]:
    """n (word, bg, fg, prompt) items: words in order, colour pairs cycling at a different period."""
    items = []
    for k in range(n):
        word = words[k % len(words)]
        bg, fg = COLOR_PAIRS[(k + k // len(words)) % len(COLOR_PAIRS)]
        items.append({"word": word, "bg": bg, "fg": fg, "prompt": PROMPT.format(bg=bg, fg=fg, word=word)})
    return items


def render_word(word: str, bg: str, fg: str, size: tuple[int, int]):
    """A ground-truth render: the word in a bold sans face, centred, about 80% of the width."""
    from PIL import Image, ImageDraw

    from qimage.synth import colors
    from qimage.synth.fonts import FontLibrary

    lib = FontLibrary.create()
    face = next(f for f in lib.faces if f.name == "Arimo" and f.weight == 700)
    W, H = size
    im = Image.new("RGB", size, colors.BY_NAME[bg].rgb)
    d = ImageDraw.Draw(im)
    px = max(6, int(H * 0.7))
    while px > 6:
        x0, y0, x1, y1 = d.textbbox((0, 0), word, font=lib.font(face, px))
        if x1 - x0 <= 0.8 * W and y1 - y0 <= 0.75 * H:
            break
        px -= 1
    font = lib.font(face, px)
    x0, y0, x1, y1 = d.textbbox((0, 0), word, font=font)
    d.text(((W - (x1 - x0)) / 2 - x0, (H - (y1 - y0)) / 2 - y0), word, font=font, fill=colors.BY_NAME[fg].rgb)
    return im


def read_text(image, min_height: int = 192) -> str:
    """What rapidocr reads in the whole image, left to right, normalised; small images are upscaled first."""
    from PIL import Image

    from qimage.synth import readback

    if image.height < min_height:
        k = -(-min_height // image.height)
        image = image.resize((image.width * k, image.height * k), Image.BICUBIC)
    found = readback.ocr(image)
    found.sort(key=lambda bt: float(bt[0][:, 0].min()))
    return readback.normalize("".join(t for _, t in found))


def score_words(images, items) -> list[dict]:
    from qimage.synth.readback import levenshtein, normalize

    rows = []
    for im, it in zip(images, items):
        read, gt = read_text(im), normalize(it["word"])
        rows.append({**it, "read": read, "exact": float(read == gt),
                     "char_acc": max(0.0, 1 - levenshtein(read, gt) / len(gt))})
    return rows


def scene_samples(n: int, size: tuple[int, int], seed: int = 0):
    """n held-out scenes (synth/heldout_scenes.txt in order, cycling) at size: (image, caption, meta); background,
    caption template and jitter from the seed."""
    from qimage.synth import scenes
    from qimage.synth.runner import RunConfig, context
    from qimage.synth.sample import rng_for

    ctx = context(RunConfig(kind="scenes", n=n, out=".", width=size[0], height=size[1], seed=seed, scale=2.0,
                            layout="rows"))
    keys = scenes.heldout()
    out = []
    for i in range(n):
        rng = rng_for(seed, i)
        s = scenes.to_sample(ctx, scenes.from_key(ctx, rng, keys[i % len(keys)]), rng.spawn(1)[0])
        out.append((s.image, s.caption, s.meta))
    return out


MIN_SOLIDITY = 0.3  # area / convex hull: stars are ~0.55; a rim around another object (an edge blend) is far less
SHAPE_MIN_AREA = 50  # px: below this a blob's shape is not judged (a 3-px hexagon and circle differ by a pixel)


@functools.cache
def _unit_areas() -> dict[str, float]:
    """Area of each scenes shape at radius 1 (shoelace over synth's own polygon)."""
    from qimage.synth import scenes

    out = {"circle": math.pi}
    for shape in scenes.SHAPES:
        if shape != "circle":
            pts = np.array(scenes.polygon(scenes.Obj(shape, "", 0.0, 0.0, 1.0, 0.0), 1))
            out[shape] = 0.5 * abs(np.dot(pts[:, 0], np.roll(pts[:, 1], 1)) - np.dot(pts[:, 1], np.roll(pts[:, 0], 1)))
    return out


def _template(shape: str, cx: float, cy: float, r: float, angle: float, hw: tuple[int, int], k: int = 4):
    """Anti-aliased coverage of one shape (drawn at k x, area-averaged), as the synthesiser draws it."""
    import cv2

    from qimage.synth import scenes

    t = np.zeros((hw[0] * k, hw[1] * k), np.uint8)
    if shape == "circle":
        cv2.circle(t, (round(cx * k), round(cy * k)), round(r * k), 1, -1)
    else:
        pts = scenes.polygon(scenes.Obj(shape, "", cx * k, cy * k, r * k, angle), 1)
        cv2.fillPoly(t, [np.round(np.array(pts)).astype(np.int32)], 1)
    return cv2.resize(t.astype(np.float32), (hw[1], hw[0]), interpolation=cv2.INTER_AREA)


def classify_shape(coverage: np.ndarray) -> str:
    """The shape whose template, at the blob's area and centre and upright within 15 degrees, best overlaps the
    blob's colour coverage (soft IoU: sum of minima over sum of maxima)."""
    area = float(coverage.sum())
    ys, xs = np.mgrid[:coverage.shape[0], :coverage.shape[1]]
    cx, cy = float((coverage * (xs + 0.5)).sum()) / area, float((coverage * (ys + 0.5)).sum()) / area
    best, best_iou = "", -1.0
    for shape, unit in _unit_areas().items():
        r = math.sqrt(area / unit)
        base = {"triangle": -90.0, "star": -90.0}.get(shape, 0.0)
        for tilt in ((0,) if shape == "circle" else range(-15, 16, 5)):
            t = _template(shape, cx, cy, r, base + tilt, coverage.shape)
            iou = float(np.minimum(t, coverage).sum() / np.maximum(t, coverage).sum())
            if iou > best_iou:
                best, best_iou = shape, iou
    return best


def _solidity(mask: np.ndarray) -> float:
    import cv2

    pts = cv2.findNonZero(mask.astype(np.uint8))
    hull = cv2.contourArea(cv2.convexHull(pts))
    return float(mask.sum()) / max(hull, float(mask.sum()))


def detect_blobs(image, meta: dict, max_dist: float = 90.0) -> dict[str, list[tuple[float, float, int, str | None]]]:
    """{colour name: [(cx, cy, area, shape)]} for the scene's object colours; shape is None for blobs too small to
    judge."""
    import cv2

    from qimage.synth import colors

    names = sorted({c["color"] for c in meta["counts"]})
    bg = np.asarray(meta["background"]["rgb"], np.float32)
    palette = [bg] + [np.asarray(colors.BY_NAME[n].rgb, np.float32) for n in names]
    img = np.asarray(image.convert("RGB")).astype(np.float32)
    dist = np.stack([np.linalg.norm(img - c, axis=-1) for c in palette])
    label = dist.argmin(0)
    label[dist.min(0) > max_dist] = -1
    # coverage of each colour per pixel, along background -> colour (edges are blends of the two)
    cover = np.stack([np.clip((img - bg) @ (c - bg) / max(float((c - bg) @ (c - bg)), 1e-6), 0, 1)
                      for c in palette[1:]])
    r_min = min(o["radius"] for o in meta["objects"]) * image.width / meta["size"][0]
    min_area = max(4.0, 0.2 * np.pi * r_min ** 2)
    out = {}
    for k, name in enumerate(names, start=1):
        mask = (label == k).astype(np.uint8)
        n, comp, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
        coverage = cover[k - 1]
        blobs = []
        for j in range(1, n):
            area = int(stats[j, cv2.CC_STAT_AREA])
            if area < min_area or _solidity(comp == j) < MIN_SOLIDITY:
                continue
            shape = None
            if area >= SHAPE_MIN_AREA:
                near = cv2.dilate((comp == j).astype(np.uint8), np.ones((3, 3), np.uint8))
                shape = classify_shape(coverage * near)
            blobs.append((float(centroids[j][0]), float(centroids[j][1]), area, shape))
        out[name] = blobs
    return out


def score_scene(image, meta: dict) -> dict:
    blobs = detect_blobs(image, meta)
    want: dict[str, int] = {}
    shape_of = {}
    for c in meta["counts"]:
        want[c["color"]] = want.get(c["color"], 0) + c["count"]
        shape_of[c["color"]] = c["shape"]
    counts_ok = all(len(blobs[c]) == n for c, n in want.items())
    shapes_ok = all(b[3] in (None, shape_of[c]) for c, bs in blobs.items() for b in bs)
    position_ok = True
    rel = meta.get("relation")
    if rel:
        a, b = meta["objects"][rel["subject"]], meta["objects"][rel["object"]]
        ba, bb = blobs.get(a["color"], []), blobs.get(b["color"], [])
        if not ba or not bb:
            position_ok = False
        else:
            (ax, ay, *_), (bx, by, *_) = max(ba, key=lambda t: t[2]), max(bb, key=lambda t: t[2])
            dx, dy = ax - bx, ay - by
            position_ok = {"left of": dx < 0 and abs(dx) > abs(dy), "right of": dx > 0 and abs(dx) > abs(dy),
                           "above": dy < 0 and abs(dy) > abs(dx), "below": dy > 0 and abs(dy) > abs(dx)}[rel["relation"]]
    return {"task": meta["task"], "counts_ok": counts_ok, "shapes_ok": shapes_ok, "position_ok": position_ok,
            "found": {c: len(v) for c, v in blobs.items()}, "want": want,
            "shapes": {c: [b[3] for b in v] for c, v in blobs.items()},
            "score": float(counts_ok and shapes_ok and position_ok)}


def score_scenes(images, metas) -> list[dict]:
    return [score_scene(im, m) for im, m in zip(images, metas)]


def summarise(word_rows: list[dict], scene_rows: list[dict], nonword_rows: list[dict] = ()) -> dict:
    out = {}
    if word_rows:
        out["ocr_exact"] = float(np.mean([r["exact"] for r in word_rows]))
        out["char_acc"] = float(np.mean([r["char_acc"] for r in word_rows]))
        for tone, bgs in (("light_bg", {"white", "light gray", "cream", "light blue"}),
                          ("dark_bg", {"black", "navy blue", "dark green", "dark gray"})):
            sel = [r for r in word_rows if r["bg"] in bgs]
            if sel:
                out[f"ocr_exact_{tone}"] = float(np.mean([r["exact"] for r in sel]))
    if nonword_rows:
        out["nonword_exact"] = float(np.mean([r["exact"] for r in nonword_rows]))
        out["nonword_char_acc"] = float(np.mean([r["char_acc"] for r in nonword_rows]))
    if scene_rows:
        out["scenes"] = float(np.mean([r["score"] for r in scene_rows]))
        out["scenes_shapes_ok"] = float(np.mean([r["shapes_ok"] for r in scene_rows]))
        # the score as it was before shapes were judged: counts, colours and positions only
        out["scenes_without_shapes"] = float(np.mean([r["counts_ok"] and r["position_ok"] for r in scene_rows]))
        for task in sorted({r["task"] for r in scene_rows}):
            out[f"scenes_{task}"] = float(np.mean([r["score"] for r in scene_rows if r["task"] == task]))
    return out


def win_rate(rows: list[dict], other: list[dict]) -> dict:
    """Per prompt, Flow-GRPO's OCR reward of this model's read against the other's (same prompts and seeds):
    wins, ties, losses, and the win rate over the decided prompts, wins / (wins + losses)."""
    from .rewards import ocr_score

    by_prompt = {r["prompt"]: r for r in other}
    w = t = lo = 0
    for r in rows:
        o = by_prompt.get(r["prompt"])
        if o is None:
            continue
        a, b = ocr_score(r["read"], r["word"]), ocr_score(o["read"], o["word"])
        w, t, lo = w + (a > b), t + (a == b), lo + (a < b)
    if w + t + lo == 0:
        raise UserError("--against: the other report shares no prompt with this eval")
    return {"wins": w, "ties": t, "losses": lo, "win_rate": w / (w + lo) if w + lo else 0.5}


def print_table(summary: dict, counts: dict) -> None:
    print(f"{'metric':<28} {'value':>7}  n")
    for k, v in summary.items():
        n = counts["nonwords"] if k.startswith("nonword") else \
            counts["words"] if k.startswith(("ocr", "char")) else counts["scenes"]
        print(f"{k:<28} {v:>7.3f}  {n}")


def evaluate(pipe, size: tuple[int, int], words: int = 48, scenes: int = 32, steps=None, cfg=None, seed: int = 0,
             batch: int = 8, nonwords: int = 0) -> tuple[dict, list, list, list, list, list, list]:
    """Generates and scores with a Pipeline: (summary, word rows, scene rows, word images, scene images, non-word
    rows, non-word images); non-words use the words' seeds, so each row pairs a word and a non-word drawn from the same noise."""
    W, H = size

    def generate(prompts):
        images = []
        for i in range(0, len(prompts), batch):
            chunk = prompts[i:i + batch]
            images += pipe(chunk, width=W, height=H, steps=steps, cfg=cfg,
                           seeds=[seed + i + k for k in range(len(chunk))])
        return images

    items = word_items(words)
    word_images = generate([it["prompt"] for it in items]) if items else []
    word_rows = score_words(word_images, items)
    odd = word_items(nonwords, NONWORDS)
    nonword_images = generate([it["prompt"] for it in odd]) if odd else []
    nonword_rows = score_words(nonword_images, odd)
    scene_rows, scene_images = [], []
    if scenes:
        samples = scene_samples(scenes, (W, H), seed)
        scene_images = generate([c for _, c, _ in samples])
        scored = score_scenes(scene_images, [m for _, _, m in samples])
        scene_rows = [{**r, "prompt": c} for r, (_, c, _) in zip(scored, samples)]
    return (summarise(word_rows, scene_rows, nonword_rows), word_rows, scene_rows, word_images, scene_images,
            nonword_rows, nonword_images)


def run(model=None, output="eval.json", words: int = 48, scenes: int = 48, size=None, steps=None, cfg=None,
        seed: int = 0, device="auto", batch: int = 8, nonwords: int = 48, against=None) -> dict:
    from qimage.commands import parse_size
    from qimage.quiet import quiet_libraries
    from qimage.grid import image_grid
    from qimage.model_dir import resolve_model
    from qimage.pipeline import Pipeline

    model = resolve_model(model)
    quiet_libraries()
    pipe = Pipeline.load(model, device=device)
    W, H = parse_size(size) if size else (pipe.settings.width, pipe.settings.height)
    pipe.check_size(W, H)
    pipe.check_steps(pipe.settings.steps if steps is None else steps)  # before any work: --steps 0 is an error
    summary, word_rows, scene_rows, word_images, scene_images, nonword_rows, nonword_images = evaluate(
        pipe, (W, H), words, scenes, steps, cfg, seed, batch, nonwords)
    other = None
    if against:
        try:
            other = json.loads(Path(against).read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"--against {against}: not a readable eval report ({e})") from None
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"model": str(model), "size": [W, H], "steps": steps or pipe.settings.steps, "cfg": cfg or pipe.settings.cfg,
              "seed": seed, "summary": summary, "words": word_rows, "nonwords": nonword_rows, "scenes": scene_rows}
    if other is not None:
        report["against"] = {"report": str(against),
                             **win_rate(word_rows + nonword_rows, other.get("words", []) + other.get("nonwords", []))}
    out.write_text(json.dumps(report, indent=2) + "\n")
    if word_images:
        image_grid(word_images, cols=8).save(out.with_suffix(".words.png"))
    if nonword_rows:
        image_grid(nonword_images, cols=8).save(out.with_suffix(".nonwords.png"))
    if scene_images:
        image_grid(scene_images, cols=8).save(out.with_suffix(".scenes.png"))
    print_table(summary, {"words": len(word_rows), "nonwords": len(nonword_rows), "scenes": len(scene_rows)})
    if other is not None:
        a = report["against"]
        print(f"against {against}: {a['wins']} wins, {a['ties']} ties, {a['losses']} losses by OCR reward "
              f"(win rate {a['win_rate']:.3f} of the decided prompts)")
    print(f"wrote {out}")
    return report
