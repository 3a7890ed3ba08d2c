"""`qimage eval`: can the model write a held-out word, and draw what a compositional prompt asks for?

Text: for held-out 4-letter words (never to be used in training data: recipes exclude ``HELDOUT_WORDS``) and colour
pairs in plain English on light and dark backgrounds, the prompt is ``On a <bg> background, displaying <fg> text
"WORD".``; rapidocr reads each generated image (upscaled so small toy images reach the detector's working size) and

    exact     = [normalise(read) == normalise(WORD)]                 normalise: NFKC, lower case, no spaces/punctuation
    char_acc  = max(0, 1 - levenshtein(read, WORD) / len(WORD))

Scenes (GenEval-style, rule-based): prompts are the captions of `qimage synth scenes` samples drawn at the eval size,
and their metadata is the answer key. Every pixel is labelled with the nearest of the scene's background and the
object colours (within an RGB distance); connected blobs per colour larger than a fifth of the smallest object's disc
are objects. A prompt scores 1 when every colour has its exact object count and, for position prompts, the subject's
blob centre lies on the named side of the object's along the dominant axis; else 0 (shapes are not checked: at toy
sizes a 3-px triangle and star are not reliably told apart). The score is the mean over prompts, per task too.
"""
from __future__ import annotations

import json
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
# (background, text): light and dark backgrounds alike, colour names from qimage.synth.colors
COLOR_PAIRS = (
    ("white", "black"), ("black", "white"), ("light gray", "navy blue"), ("navy blue", "yellow"),
    ("cream", "dark red"), ("dark green", "white"), ("light blue", "black"), ("dark gray", "orange"),
)
PROMPT = 'On a {bg} background, displaying {fg} text "{word}".'


def word_items(n: int) -> list[dict]:
    """n (word, bg, fg, prompt) items: words in order, colour pairs cycling at a different period."""
    items = []
    for k in range(n):
        word = HELDOUT_WORDS[k % len(HELDOUT_WORDS)]
        bg, fg = COLOR_PAIRS[(k + k // len(HELDOUT_WORDS)) % len(COLOR_PAIRS)]
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
    """n `qimage synth scenes` samples (English captions) at size: (image, caption, meta)."""
    from qimage.synth import scenes
    from qimage.synth.runner import RunConfig, context
    from qimage.synth.sample import rng_for

    ctx = context(RunConfig(kind="scenes", n=n, out=".", width=size[0], height=size[1], seed=seed))
    out = []
    for i in range(n):
        s = scenes.make(ctx, rng_for(seed, i), "en")
        out.append((s.image, s.caption, s.meta))
    return out


def detect_blobs(image, meta: dict, max_dist: float = 90.0) -> dict[str, list[tuple[float, float, int]]]:
    """{colour name: [(cx, cy, area)]} for the scene's object colours, by nearest-colour labelling."""
    import cv2

    from qimage.synth import colors

    names = sorted({c["color"] for c in meta["counts"]})
    palette = [meta["background"]["rgb"]] + [colors.BY_NAME[n].rgb for n in names]
    img = np.asarray(image.convert("RGB")).astype(np.float32)
    dist = np.stack([np.linalg.norm(img - np.asarray(c, np.float32), axis=-1) for c in palette])
    label = dist.argmin(0)
    label[dist.min(0) > max_dist] = -1
    r_min = min(o["radius"] for o in meta["objects"]) * image.width / meta["size"][0]
    min_area = max(4.0, 0.2 * np.pi * r_min ** 2)
    out = {}
    for k, name in enumerate(names, start=1):
        mask = (label == k).astype(np.uint8)
        n, _, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
        out[name] = [(float(centroids[j][0]), float(centroids[j][1]), int(stats[j, cv2.CC_STAT_AREA]))
                     for j in range(1, n) if stats[j, cv2.CC_STAT_AREA] >= min_area]
    return out


def score_scene(image, meta: dict) -> dict:
    blobs = detect_blobs(image, meta)
    want: dict[str, int] = {}
    for c in meta["counts"]:
        want[c["color"]] = want.get(c["color"], 0) + c["count"]
    counts_ok = all(len(blobs[c]) == n for c, n in want.items())
    position_ok = True
    rel = meta.get("relation")
    if rel:
        a, b = meta["objects"][rel["subject"]], meta["objects"][rel["object"]]
        ba, bb = blobs.get(a["color"], []), blobs.get(b["color"], [])
        if not ba or not bb:
            position_ok = False
        else:
            (ax, ay, _), (bx, by, _) = max(ba, key=lambda t: t[2]), max(bb, key=lambda t: t[2])
            dx, dy = ax - bx, ay - by
            position_ok = {"left of": dx < 0 and abs(dx) > abs(dy), "right of": dx > 0 and abs(dx) > abs(dy),
                           "above": dy < 0 and abs(dy) > abs(dx), "below": dy > 0 and abs(dy) > abs(dx)}[rel["relation"]]
    return {"task": meta["task"], "counts_ok": counts_ok, "position_ok": position_ok,
            "found": {c: len(v) for c, v in blobs.items()}, "want": want,
            "score": float(counts_ok and position_ok)}


def score_scenes(images, metas) -> list[dict]:
    return [score_scene(im, m) for im, m in zip(images, metas)]


def summarise(word_rows: list[dict], scene_rows: list[dict]) -> dict:
    out = {}
    if word_rows:
        out["ocr_exact"] = float(np.mean([r["exact"] for r in word_rows]))
        out["char_acc"] = float(np.mean([r["char_acc"] for r in word_rows]))
        for tone, bgs in (("light_bg", {"white", "light gray", "cream", "light blue"}),
                          ("dark_bg", {"black", "navy blue", "dark green", "dark gray"})):
            sel = [r for r in word_rows if r["bg"] in bgs]
            if sel:
                out[f"ocr_exact_{tone}"] = float(np.mean([r["exact"] for r in sel]))
    if scene_rows:
        out["scenes"] = float(np.mean([r["score"] for r in scene_rows]))
        for task in sorted({r["task"] for r in scene_rows}):
            out[f"scenes_{task}"] = float(np.mean([r["score"] for r in scene_rows if r["task"] == task]))
    return out


def print_table(summary: dict, counts: dict) -> None:
    print(f"{'metric':<28} {'value':>7}  n")
    for k, v in summary.items():
        n = counts["words"] if k.startswith(("ocr", "char")) else counts["scenes"]
        print(f"{k:<28} {v:>7.3f}  {n}")


def evaluate(pipe, size: tuple[int, int], words: int = 48, scenes: int = 32, steps=None, cfg=None, seed: int = 0,
             batch: int = 8) -> tuple[dict, list, list, list, list]:
    """Generates and scores with a Pipeline: (summary, word rows, scene rows, word images, scene images)."""
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
    scene_rows, scene_images = [], []
    if scenes:
        samples = scene_samples(scenes, (W, H), seed)
        scene_images = generate([c for _, c, _ in samples])
        scored = score_scenes(scene_images, [m for _, _, m in samples])
        scene_rows = [{**r, "prompt": c} for r, (_, c, _) in zip(scored, samples)]
    return summarise(word_rows, scene_rows), word_rows, scene_rows, word_images, scene_images


def run(model=None, output="eval.json", words: int = 48, scenes: int = 32, size=None, steps=None, cfg=None,
        seed: int = 0, device="auto", batch: int = 8) -> dict:
    from qimage.commands import _quiet_libraries, parse_size
    from qimage.grid import image_grid
    from qimage.model_dir import resolve_model
    from qimage.pipeline import Pipeline

    model = resolve_model(model)
    _quiet_libraries()
    pipe = Pipeline.load(model, device=device)
    W, H = parse_size(size) if size else (pipe.settings.width, pipe.settings.height)
    pipe.check_size(W, H)
    pipe.check_steps(pipe.settings.steps if steps is None else steps)  # before any work: --steps 0 is an error
    summary, word_rows, scene_rows, word_images, scene_images = evaluate(pipe, (W, H), words, scenes, steps, cfg,
                                                                         seed, batch)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"model": str(model), "size": [W, H], "steps": steps or pipe.settings.steps, "cfg": cfg or pipe.settings.cfg,
              "seed": seed, "summary": summary, "words": word_rows, "scenes": scene_rows}
    out.write_text(json.dumps(report, indent=2) + "\n")
    if word_images:
        image_grid(word_images, cols=8).save(out.with_suffix(".words.png"))
    if scene_images:
        image_grid(scene_images, cols=8).save(out.with_suffix(".scenes.png"))
    print_table(summary, {"words": len(word_rows), "scenes": len(scene_rows)})
    print(f"wrote {out}")
    return report
