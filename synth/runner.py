"""Runs a synthesiser over N samples, in parallel, and writes the sample folder.

Output (docs/contracts.md section 2): `DIR/ID.png`, `DIR/ID.txt` (caption), `DIR/ID.json` (metadata), and
`DIR/manifest.json` listing every sample. With edit pairs, `DIR/edits/ID.png|.txt|.json` hold the target: its
caption describes the target image and its metadata carries the instruction (`edit.instruction`) and the changed
region, so the target folder is itself a valid sample folder. A sample for which no edit fits (scenes only) is
written without a target; the manifest of an edit-pairs run counts `pairs` and `unpaired`.

Determinism: sample i is made from generators seeded by (seed, i) only (`sample.rng_for`), each worker builds its
own font library and caches, and files are written by the worker that made them, so the bytes are the same for any
`--workers`. The manifest is written by the parent in index order and holds no time or worker count.
"""
from __future__ import annotations

import functools
import importlib
import json
import multiprocessing as mp
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from qimage.errors import UserError

from .sample import SCHEMA_VERSION, rng_for

KINDS = ("pure", "compose", "complex", "scenes", "words")
FULL_KINDS = KINDS[:4]  # the kinds with --lang zh/mix (words is the toy's English-only curriculum)
EDIT_KINDS = KINDS  # the kinds with --edit-pairs (words: the toy edit model's English pairs, synth/words.py)
LANGS = ("en", "zh", "mix")
PNG_LEVEL = 3  # zlib level 3: ~2x faster than the default 6 and only a few % larger on these images
# pure and complex: the largest share of the image their text boxes may cover (--max-text-area). Under the data pipeline's
# intensive_text threshold (0.35) with a margin for OCR boxes, which sit looser than the ink quads when a pipeline
# does not take the sidecar's lines. Without a cap (--max-text-area 1, which the toy recipe pins for its data)
# paragraphs covered 0.40 of a 512x512 image at the median and up to 0.52: 41 of 150 default renders were
# rejected as intensive text.
MAX_TEXT_AREA = 0.3


@dataclass(frozen=True)
class RunConfig:
    kind: str
    n: int
    out: str
    lang: str = "en"
    width: int = 512
    height: int = 512
    seed: int = 0
    workers: int = 1
    fonts: str | None = None
    faces: str | None = None  # comma-separated face labels: draw with these only
    pairs: str | None = None  # words: comma-separated background/text colour pairs, e.g. "white/black"
    backgrounds: str | None = None
    edit_pairs: bool = False
    scale: float = 1.0  # scenes: object size factor (radii times scale)
    layout: str = "random"  # scenes: "random" placement or canonical "rows" (synth/scenes.py)
    max_text_area: float = MAX_TEXT_AREA  # pure, complex: text box area / image area at most this


@dataclass
class Context:
    lib: object
    backgrounds: list
    width: int
    height: int
    pairs: tuple | None = None  # words: the (background, text) colour names to draw from
    scale: float = 1.0  # scenes: object size factor
    layout: str = "random"  # scenes: object placement
    max_text_area: float = MAX_TEXT_AREA  # pure, complex: text box area / image area at most this


def parse_pairs(text: str | None) -> tuple | None:
    """--pairs 'white/black, navy blue/yellow' -> (("white", "black"), ("navy blue", "yellow")), palette names."""
    if text is None:
        return None
    from . import colors

    if str(text).strip() == "all":
        from .words import all_pairs

        return all_pairs()

    out = []
    for item in str(text).split(","):
        parts = [x.strip() for x in item.split("/")]
        if len(parts) != 2 or not all(parts):
            raise UserError(f"--pairs {text!r}: expected BACKGROUND/TEXT colour pairs, e.g. 'white/black,black/white'")
        for name in parts:
            if name not in colors.BY_NAME:
                raise UserError(f"--pairs: unknown colour {name!r}; the palette: {', '.join(colors.BY_NAME)}")
        if parts[0] == parts[1]:
            raise UserError(f"--pairs: {item.strip()!r} draws text in its background's colour")
        out.append(tuple(parts))
    return tuple(dict.fromkeys(out))


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not m:
        raise UserError(f"--size {text!r}: expected WxH, e.g. 512x512")
    w, h = int(m.group(1)), int(m.group(2))
    if not (64 <= w <= 4096 and 64 <= h <= 4096):
        raise UserError(f"--size {text}: width and height must be between 64 and 4096")
    return w, h


def validate(cfg: RunConfig) -> None:
    if cfg.kind not in KINDS:
        raise UserError(f"unknown kind {cfg.kind!r}: choose one of {', '.join(KINDS)}")
    if cfg.lang not in LANGS:
        raise UserError(f"--lang {cfg.lang!r}: choose one of {', '.join(LANGS)}")
    if cfg.kind not in FULL_KINDS and cfg.lang != "en":
        raise UserError("words renders English 4-letter words only (drop --lang)")
    if cfg.edit_pairs and cfg.kind not in EDIT_KINDS:
        raise UserError(f"{cfg.kind} has no edit pairs (drop --edit-pairs)")
    if cfg.pairs is not None:
        if cfg.kind != "words":
            raise UserError("--pairs chooses the colours of words; the other kinds choose their own")
        parse_pairs(cfg.pairs)
    if cfg.scale != 1.0:
        if cfg.kind != "scenes":
            raise UserError("--scale sizes the objects of scenes; the other kinds have none")
        if not 0.25 <= cfg.scale <= 2.0:
            raise UserError(f"--scale {cfg.scale}: must be between 0.25 and 2")
    if cfg.layout != "random":
        if cfg.kind != "scenes":
            raise UserError("--layout places the objects of scenes; the other kinds have none")
        from .scenes import LAYOUTS

        if cfg.layout not in LAYOUTS:
            raise UserError(f"--layout {cfg.layout!r}: choose one of {', '.join(LAYOUTS)}")
    if cfg.max_text_area != MAX_TEXT_AREA:
        if cfg.kind not in ("pure", "complex"):
            raise UserError("--max-text-area caps the text of pure and complex; the other kinds lay out their own")
        if not 0.05 <= cfg.max_text_area <= 1.0:
            raise UserError(f"--max-text-area {cfg.max_text_area:g}: must be between 0.05 and 1 (a share of the image)")
    if cfg.kind == "compose" and min(cfg.width, cfg.height) < 128:
        raise UserError(f"compose needs at least 128x128 (a medium with legible text inside a photo), got {cfg.width}x{cfg.height}")
    if cfg.n <= 0:
        raise UserError(f"-n {cfg.n}: the number of samples must be positive")
    if cfg.seed < 0:
        raise UserError(f"--seed {cfg.seed}: must be >= 0")
    if cfg.workers < 1:
        raise UserError(f"--workers {cfg.workers}: must be >= 1")
    if not (64 <= cfg.width <= 4096 and 64 <= cfg.height <= 4096):
        raise UserError(f"size {cfg.width}x{cfg.height}: width and height must be between 64 and 4096")
    out = Path(cfg.out)
    try:
        (out / "edits" if cfg.edit_pairs else out).mkdir(parents=True, exist_ok=True)
        probe = out / ".qimage-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"-o {cfg.out}: cannot write there ({e.strerror or e})") from None


_CONTEXTS: dict = {}


def context(cfg: RunConfig) -> Context:
    """The per-process context (fonts, background list), built once per process and configuration."""
    key = (cfg.kind, cfg.lang, cfg.fonts, cfg.faces, cfg.pairs, cfg.backgrounds, cfg.width, cfg.height, cfg.scale, cfg.layout,
           cfg.max_text_area)
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        from . import backgrounds
        from .fonts import FontLibrary

        lib = FontLibrary.create(cfg.fonts, cfg.faces)
        if cfg.faces is not None and cfg.kind != "scenes":
            probe = {"en": "Aa", "zh": "中文", "mix": "Aa中文"}[cfg.lang]
            if not lib.covering(probe):
                raise UserError(f"--faces {cfg.faces!r}: no such face draws --lang {cfg.lang} text ({probe!r})")
        ctx = _CONTEXTS[key] = Context(lib, backgrounds.list_photos(cfg.backgrounds), cfg.width, cfg.height,
                                       parse_pairs(cfg.pairs), cfg.scale, cfg.layout, cfg.max_text_area)
    return ctx


def sample_id(kind: str, index: int) -> str:
    return f"{kind}_{index:06d}"


def make_sample(cfg: RunConfig, index: int):
    mod = importlib.import_module(f"qimage.synth.{cfg.kind}")
    edit_rng = rng_for(cfg.seed, index, "edit") if cfg.edit_pairs else None
    return mod.make(context(cfg), rng_for(cfg.seed, index), cfg.lang, edit_rng)


def _dump(meta: dict) -> str:
    return json.dumps(meta, ensure_ascii=False, sort_keys=True)


def _write(folder: Path, sid: str, image, caption: str, meta: dict) -> None:
    image.save(folder / f"{sid}.png", "PNG", compress_level=PNG_LEVEL)
    (folder / f"{sid}.txt").write_text(caption + "\n", encoding="utf-8")
    (folder / f"{sid}.json").write_text(_dump(meta) + "\n", encoding="utf-8")


def write_one(cfg: RunConfig, index: int) -> dict:
    """Make sample `index`, write its files, return its manifest entry."""
    s = make_sample(cfg, index)
    sid = sample_id(cfg.kind, index)
    out = Path(cfg.out)
    s.meta = {"id": sid, "seed": [cfg.seed, index], **s.meta}
    entry = {"id": sid, "image": f"{sid}.png", "caption": f"{sid}.txt", "meta": f"{sid}.json",
             "lang": s.meta["lang"], "lines": len(s.meta["lines"])}
    if s.edit is not None:
        e = s.edit
        e.meta = {"id": sid, "seed": [cfg.seed, index], "source": f"../{sid}.png", **e.meta}
        s.meta["edit"] = {"target": f"edits/{sid}.png", "instruction": e.meta["edit"]["instruction"],
                          "type": e.meta["edit"]["type"]}
        _write(out / "edits", sid, e.image, e.caption, e.meta)
        entry["edit"] = f"edits/{sid}.png"
    _write(out, sid, s.image, s.caption, s.meta)
    return entry


def run(cfg: RunConfig, progress: bool = True) -> dict:
    validate(cfg)
    context(cfg)  # fail fast on bad --fonts / --backgrounds before starting workers
    job = functools.partial(write_one, cfg)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.n, desc=f"synth {cfg.kind}", unit="img")
    entries = []
    if cfg.workers == 1:
        for i in range(cfg.n):
            entries.append(job(i))
            bar and bar.update(1)
    else:
        with mp.get_context("fork" if os.name == "posix" else "spawn").Pool(cfg.workers) as pool:
            for e in pool.imap(job, range(cfg.n), chunksize=max(1, min(16, cfg.n // (cfg.workers * 8)))):
                entries.append(e)
                bar and bar.update(1)
    if bar:
        bar.close()
    manifest = {
        "generator": "qimage.synth",
        "schema_version": SCHEMA_VERSION,
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("workers", "out")},
        "count": len(entries),
        "samples": entries,
    }
    if cfg.edit_pairs:  # a sample that admits no edit (scenes, after re-planning) has no `edit` entry
        unpaired = sum("edit" not in e for e in entries)
        manifest.update(pairs=len(entries) - unpaired, unpaired=unpaired)
    (Path(cfg.out) / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n",
                                                 encoding="utf-8")
    if cfg.edit_pairs and manifest["unpaired"] and progress:
        print(f"qimage: note: {manifest['unpaired']} of {len(entries)} samples have no edit pair (no edit fits them); "
              "manifest.json counts them as `unpaired`", file=sys.stderr)
    return manifest
