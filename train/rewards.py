"""Rewards for post-training: ``reward(images, items) -> list[float]`` in [0, 1], one per image.

An item is a dict with the prompt and what the reward needs to judge it: ``text`` (the quoted text an OCR reward
reads for) or ``meta`` (a scenes answer key). Built-in rewards, by name in a config:

    ocr      Flow-GRPO's OCR reward on the quoted text t and what the recogniser reads o (both normalised: NFKC,
             lower case, no spaces or punctuation):
                 d = 0 if t is a substring of o, else min(levenshtein(o, t), len(t));     r = 1 - d / len(t)
             read by rapidocr's recogniser alone on the image's ink (its bounding box against the border colour),
             in batches: ~25x cheaper than detection + classification + recognition, which `qimage eval` keeps, so a
             gain cannot come from fitting the reward's own reader (``agreement`` measures how often the two agree).
    scenes   the eval's GenEval-style checker with partial credit: the mean of the per-colour count credit
             max(0, 1 - |found - asked| / asked), the fraction of judged blobs with the asked shape (0 when none is
             judged) and, for position prompts, the position rule: a blank image scores 0.
    weighted a weighted sum of the above (``weights``: name -> weight), each over the items it can judge:
             r = sum_k w_k r_k / sum_k w_k over the rewards k that apply to the item.

Any ``module:function`` with the same signature is a reward too. ``guards`` are what the trainer logs beside the
reward to catch reward hacking: the fraction of dark pixels and of blank (near-uniform) images.
"""
from __future__ import annotations

import importlib
from typing import Callable, Sequence

import numpy as np

from qimage.errors import UserError

Reward = Callable[[Sequence, Sequence[dict]], list]
BUILTIN = ("ocr", "scenes", "weighted")


def quoted(prompt: str) -> str | None:
    """The text between the first pair of double quotes, or None."""
    parts = prompt.split('"')
    return parts[1] if len(parts) >= 3 and parts[1] else None


def ocr_score(read: str, target: str) -> float:
    from qimage.synth.readback import levenshtein, normalize

    t, o = normalize(target), normalize(read)
    if not t:
        raise UserError(f"OCR reward: the quoted text {target!r} has no letters to read")
    d = 0 if t in o else min(levenshtein(o, t), len(t))
    return 1.0 - d / len(t)


def ink_crop(image, pad: float = 0.1) -> np.ndarray:
    """BGR pixels of the image's ink: the bounding box of pixels far from the border's median colour, padded by a
    tenth of the image height; the whole image when nothing stands out."""
    rgb = np.asarray(image.convert("RGB")).astype(np.int16)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    bg = np.median(border, axis=0)
    ink = np.abs(rgb - bg).sum(-1) > 96
    if ink.sum() >= 4:
        ys, xs = np.nonzero(ink)
        p = int(round(pad * rgb.shape[0]))
        y0, y1 = max(0, ys.min() - p), min(rgb.shape[0], ys.max() + 1 + p)
        x0, x1 = max(0, xs.min() - p), min(rgb.shape[1], xs.max() + 1 + p)
        rgb = rgb[y0:y1, x0:x1]
    return np.ascontiguousarray(rgb[:, :, ::-1].astype(np.uint8))


def recognise(images) -> list[str]:
    """What rapidocr's recogniser reads on each image's ink, in its own batches."""
    from qimage.synth.readback import engine

    if not images:
        return []
    found, _ = engine().text_rec([ink_crop(im) for im in images])
    return [text for text, _score in found]


def ocr(images, items) -> list[float]:
    reads = recognise(list(images))
    return [ocr_score(read, it["text"]) for read, it in zip(reads, items)]


def scenes(images, items) -> list[float]:
    from .eval import score_scene

    out = []
    for im, it in zip(images, items):
        r = score_scene(im, it["meta"])
        counts = np.mean([max(0.0, 1 - abs(r["found"].get(c, 0) - n) / n) for c, n in r["want"].items()])
        judged = [s == {c["color"]: c["shape"] for c in it["meta"]["counts"]}[col]
                  for col, shapes in r["shapes"].items() for s in shapes if s is not None]
        shapes = float(np.mean(judged)) if judged else 0.0
        parts = [counts, shapes] + ([float(r["position_ok"])] if it["meta"].get("relation") else [])
        out.append(float(np.mean(parts)))
    return out


def weighted(weights: dict[str, float]) -> Reward:
    judges = {"ocr": ("text", ocr), "scenes": ("meta", scenes)}
    unknown = sorted(set(weights) - set(judges))
    if unknown:
        raise UserError(f"reward weights: unknown reward {unknown[0]!r} (weighted sums of {', '.join(judges)})")

    def reward(images, items) -> list[float]:
        total, norm = np.zeros(len(items)), np.zeros(len(items))
        for name, w in weights.items():
            key, fn = judges[name]
            idx = [i for i, it in enumerate(items) if it.get(key) is not None]
            if idx:
                total[idx] += w * np.asarray(fn([images[i] for i in idx], [items[i] for i in idx]))
                norm[idx] += w
        if (norm == 0).any():
            raise UserError("weighted reward: an item has neither quoted text nor a scenes answer key")
        return (total / norm).tolist()

    return reward


def resolve(name: str, weights: dict[str, float] | None = None) -> Reward:
    """A reward by built-in name or ``module:function``."""
    if name == "ocr":
        return ocr
    if name == "scenes":
        return scenes
    if name == "weighted":
        if not weights:
            raise UserError("reward weighted needs `weights` (e.g. {ocr: 1.0, scenes: 0.5})")
        return weighted(weights)
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise UserError(f"reward {name!r}: cannot import it ({e})") from None
        if not callable(fn):
            raise UserError(f"reward {name!r} is not callable")
        return fn
    raise UserError(f"unknown reward {name!r}: one of {', '.join(BUILTIN)} or module:function")


def guards(images) -> dict[str, float]:
    """Reward-hacking tells: mean fraction of dark pixels (luma < 0.1) and fraction of blank images (pixel std
    under 4/255)."""
    arr = [np.asarray(im.convert("L"), np.float32) / 255 for im in images]
    return {"dark_frac": float(np.mean([(a < 0.1).mean() for a in arr])),
            "blank_frac": float(np.mean([a.std() < 4 / 255 for a in arr]))}


def agreement(images, items) -> dict[str, float]:
    """How often the fast reward and the eval's full OCR (detection + recognition) agree on exact reads."""
    from .eval import read_text

    from qimage.synth.readback import normalize

    fast = recognise(list(images))
    same = [(normalize(f) == normalize(it["text"])) == (read_text(im) == normalize(it["text"]))
            for f, im, it in zip(fast, images, items)]
    return {"agreement": float(np.mean(same)), "n": len(same)}
