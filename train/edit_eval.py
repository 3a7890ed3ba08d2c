"""`qimage eval --edit`: held-out edit pairs, edited by a model and scored against what the instruction asked.

Pairs come from the synthesisers' held-out draws (``qimage.synth.words.eval_edit_pairs``: new words from
heldout_words.txt, colour combinations no training pair uses). For each pair, with the region the instruction changes
R = pixels where target != source (exact: pairs are pixel-aligned), dilated by 2 px:

    word_exact      replace_text: the full rapidocr pipeline reads exactly the new word in the edited image
    color_right     every other edit: the asked colour is the one the target shows on most of the changed pixels
                    (the instruction's text, background or shape colour; for a removal the background); the edited
                    image's mean over the pixels where the target shows it in full (not the anti-aliased rim, which
                    blends it with its neighbour), eroded by 1 px, must be nearest to it among the palette
    psnr_untouched  PSNR of the edited image against the source outside R, in dB (what must not move)
    shift_px        colour-only edits: the sub-pixel offset of the edited image against the target (whose edges
                    are the source's) by phase correlation

The report also gives the VAE ceiling: the same scores of each target after a round trip through the model's VAE,
what a perfect edit model would score (a toy decoder that never saw a colour pair can fail the exact target). The
eval keeps the full OCR pipeline (detection, classification, recognition), as ``qimage eval`` does.
"""
from __future__ import annotations

import numpy as np

EDIT_FIELDS = ["step", "word_exact", "color_right", "psnr_untouched"]
# Word pairs are drawn in the face the toys learnt their letters in (train/recipes/toy.yaml, toy-edit.yaml): what is
# held out is the words and the colour combinations, not the typeface.
WORDS_FACE = "Arimo 700"
COLOR_EDITS = ("recolor_text", "recolor_background", "recolor_object")


def heldout_pairs(kinds, n: int, seed: int, size) -> list[dict]:
    """n held-out pairs split over the synthesisers `kinds` (each must offer ``eval_edit_pairs``)."""
    import importlib

    out = []
    for j, kind in enumerate(kinds):
        k = n // len(kinds) + (1 if j < n % len(kinds) else 0)
        mod = importlib.import_module(f"qimage.synth.{kind}")
        extra = {"faces": WORDS_FACE} if kind == "words" else {}
        out += [{**p, "kind": kind} for p in mod.eval_edit_pairs(k, seed, width=size[0], height=size[1], **extra)]
    return out


def run_edits(pipe, pairs, steps=None, cfg=None, seed: int = 0) -> list:
    """The edited image of every pair; pair k uses seed + k (one pair per call: each has its own source)."""
    return [pipe(p["source"], p["instruction"], steps=steps, cfg=cfg, seeds=seed + k,
                 width=p["source"].width, height=p["source"].height)[0] for k, p in enumerate(pairs)]


def changed_region(source, target, grow: int = 2) -> np.ndarray:
    from scipy.ndimage import binary_dilation

    diff = np.any(np.asarray(source, dtype=np.int16) != np.asarray(target, dtype=np.int16), axis=-1)
    return binary_dilation(diff, iterations=grow) if grow else diff


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def nearest_color(rgb) -> str:
    from qimage.synth import colors

    return min(colors.PALETTE, key=lambda c: sum((float(x) - y) ** 2 for x, y in zip(rgb, c.rgb))).name


def asked_color(pair: dict, erode: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The colour an edit asks for and the (H, W) mask where to look for it: the target's most common colour over
    the changed pixels, and the changed pixels that show exactly it, eroded by `erode` px (kept whole if erosion
    would leave none). The mean over every changed pixel would mix glyph rims with the background: for a light gray
    text on navy it named light green, a colour nobody asked for."""
    from scipy.ndimage import binary_erosion

    tgt = np.asarray(pair["target"].convert("RGB"))
    exact = changed_region(pair["source"], pair["target"], grow=0)
    values, counts = np.unique(tgt[exact], axis=0, return_counts=True)
    asked = values[counts.argmax()]
    core = exact & np.all(tgt == asked, axis=-1)
    inner = binary_erosion(core, iterations=erode) if erode else core
    return asked, inner if inner.any() else core


def offset_px(a, b) -> float:
    from skimage.registration import phase_cross_correlation

    ga, gb = (np.asarray(im.convert("L"), dtype=np.float64) for im in (a, b))
    shift, _, _ = phase_cross_correlation(ga, gb, upsample_factor=20)
    return float(np.hypot(*shift))


def score_pair(edited, pair: dict) -> dict:
    from .eval import read_text

    src, tgt, out = (np.asarray(im.convert("RGB")) for im in (pair["source"], pair["target"], edited))
    region = changed_region(pair["source"], pair["target"])
    kind = pair["meta"].get("type", "")
    row = {"instruction": pair["instruction"], "type": kind,
           "psnr_untouched": psnr(out[~region], src[~region]) if (~region).any() else float("nan")}
    if kind == "replace_text":
        from qimage.synth.readback import normalize

        read, new = read_text(edited), normalize(str(pair["meta"]["new"]))  # both as qimage eval compares words
        row.update(read=read, word_exact=float(read == new))
    elif region.any():
        asked_rgb, core = asked_color(pair)
        asked, got = nearest_color(asked_rgb), nearest_color(out[core].mean(0))
        row.update(asked=asked, got=got, color_right=float(asked == got))
        if kind in COLOR_EDITS:
            # against the target: its edges are the source's (pixel-aligned pairs), its colours the asked ones, so
            # the offset measures where the edit put the edges, not how the colours changed the grey levels
            row["shift_px"] = offset_px(edited, pair["target"])
    return row


def summarise(rows: list[dict]) -> dict:
    def mean(key):
        vals = [r[key] for r in rows if key in r and r[key] == r[key]]
        return float(np.mean(vals)) if vals else float("nan")

    return {k: mean(k) for k in ("word_exact", "color_right", "psnr_untouched", "shift_px")} | {"pairs": len(rows)}


def evaluate_edits(pipe, pairs, steps=None, cfg=None, seed: int = 0) -> tuple[dict, list[dict], list]:
    edited = run_edits(pipe, pairs, steps, cfg, seed)
    rows = [score_pair(e, p) for e, p in zip(edited, pairs)]
    return summarise(rows), rows, edited


def vae_ceiling(pipe, pairs) -> dict:
    """The scores of a perfect edit seen through the model's VAE: each target encoded (the posterior's mode) and
    decoded, then scored as an edit. No edit model can be expected above it, since its output is decoded alike."""
    import torch

    from qimage import vae as vae_ops

    rows = []
    with torch.no_grad():
        for p in pairs:
            z = vae_ops.encode(pipe.vae, vae_ops.from_pil([p["target"]]).to(pipe.device))
            rows.append(score_pair(vae_ops.to_pil(vae_ops.decode(pipe.vae, z))[0], p))
    return summarise(rows)


def edit_grid(pairs, edited):
    """One row per pair: source | target | edited."""
    from qimage.grid import image_grid

    cells = [im for p, e in zip(pairs, edited) for im in (p["source"], p["target"], e)]
    return image_grid(cells, cols=3)


def plot_edit_eval(rows: list[dict], png_path) -> None:
    from .log import plot_curves

    series = {k: [(float(r["step"]), float(r[k])) for r in rows if r.get(k)] for k in ("word_exact", "color_right")}
    plot_curves(series, png_path, title="held-out edits (EMA weights)", y_range=(0.0, 1.0))


def run(model=None, output="eval.json", pairs: int = 48, kinds=("words",), steps=None, cfg=None, seed: int = 0,
        device="auto") -> dict:
    """`qimage eval --edit`: a JSON report, a grid (source | target | edited per row) and a table."""
    import json
    from pathlib import Path

    from qimage.quiet import quiet_libraries
    from qimage.edit import EditPipeline, check_edit_model
    from qimage.errors import UserError
    from qimage.model_dir import SHIPPED_EDIT_TOY

    if model is None:
        if not (SHIPPED_EDIT_TOY / "model_index.json").is_file():
            raise UserError("no shipped edit toy in this install; pass --model DIR (an edit model directory)")
        model = SHIPPED_EDIT_TOY
    root = check_edit_model(model)
    quiet_libraries()
    pipe = EditPipeline.load(root, device=device)
    pipe.check_steps(pipe.settings.steps if steps is None else steps)
    size = (pipe.settings.width, pipe.settings.height)
    items = heldout_pairs(list(kinds), pairs, seed, size)
    summary, rows, edited = evaluate_edits(pipe, items, steps, cfg, seed)
    by_type = {}
    for r in rows:
        by_type.setdefault(r["type"], []).append(r)
    summary["by_type"] = {t: summarise(rs) for t, rs in sorted(by_type.items())}
    summary["vae_ceiling"] = vae_ceiling(pipe, items)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"model": str(root), "size": list(size), "steps": steps or pipe.settings.steps,
              "cfg": cfg or pipe.settings.cfg, "seed": seed, "kinds": list(kinds), "summary": summary, "pairs": rows}
    out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    edit_grid(items, edited).save(out.with_suffix(".edits.png"))
    print(f"{'edit type':<20} {'pairs':>5} {'word exact':>10} {'colour':>7} {'PSNR dB':>8} {'shift px':>8}")
    for t, s in [*summary["by_type"].items(), ("all", summary), ("VAE ceiling", summary["vae_ceiling"])]:
        print(f"{t:<20} {s['pairs']:>5} {s['word_exact']:>10.3f} {s['color_right']:>7.3f} "
              f"{s['psnr_untouched']:>8.2f} {s['shift_px']:>8.3f}")
    print(f"wrote {out} and {out.with_suffix('.edits.png')}")
    return report
