"""Training data: both sample forms of contract 2, and a stateless batch schedule.

Sources are read into `Record`s (caption, size, and a way to load the image): a `qimage synth` folder (ID.png + ID.txt
+ ID.json) or `qimage data run` output (OUT/kept/*.parquet with image bytes). Records are sorted by key so the same
folder always gives the same order.

The schedule is a pure function of (seed, stage, step), so resuming needs only the step (the "data position"), and
every DDP process computes the same global batch and takes its own slice:

    per stage, a source is drawn for every step by the mixture weights (one RNG stream per stage);
    per source and epoch, each bucket's records are shuffled and cut into batches (the last one wraps around to the
    start of the bucket, so a small bucket still fills a batch), and all batches are shuffled together;
    the k-th time a source is drawn in a stage it serves batch k of its epoch sequence.

Every record is seen once per epoch of its source, buckets keep one size per batch.
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qimage.errors import UserError

from .buckets import assign
from .config import Source

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_QUOTED = re.compile(r'"([^"]+)"')


@dataclass
class Record:
    key: str
    caption: str
    width: int
    height: int
    path: str = ""  # image file (folder source)
    data: bytes = b""  # encoded image (parquet source)
    meta: dict = field(default_factory=dict)
    pixels: "np.ndarray | None" = None  # already decoded and fitted to its bucket (the Ray Data path)
    target: "Record | None" = None  # an edit pair's target image (this record is its source)
    instruction: str = ""  # an edit pair's instruction

    def load(self):
        from PIL import Image

        if self.pixels is not None:
            return Image.fromarray(self.pixels)
        im = Image.open(io.BytesIO(self.data)) if self.data else Image.open(self.path)
        return im.convert("RGB")


def caption_text(caption: str, mode: str) -> str:
    """The caption as the text encoder sees it: `full`, or `quoted` (the first quoted text, else the caption)."""
    if mode == "quoted":
        m = _QUOTED.search(caption)
        return m.group(1) if m else caption
    return caption


def _read_folder(root: Path) -> list[Record]:
    from PIL import Image

    records = []
    for img in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        if "edits" in img.relative_to(root).parts[:-1]:
            continue  # `synth --edit-pairs` targets: edit training data, not text-to-image
        txt, meta_file = img.with_suffix(".txt"), img.with_suffix(".json")
        caption = txt.read_text(encoding="utf-8").strip() if txt.is_file() else ""
        meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
        with Image.open(img) as im:  # reads the header only
            w, h = im.size
        records.append(Record(str(img.relative_to(root)), caption, w, h, path=str(img), meta=meta))
    return records


def _read_parquet(files: list[Path], read=None) -> list[Record]:
    """`read(f) -> pyarrow.Table` reads a part where it lies (an object store's parts: qimage.datapipe.storage)."""
    import pyarrow.parquet as pq

    records = []
    for f in files:
        table = read(f) if read is not None else pq.read_table(f)
        cols = set(table.column_names)
        missing = {"image", "caption", "width", "height"} - cols
        if missing:
            raise UserError(f"{f} lacks column(s) {', '.join(sorted(missing))}; is it `qimage data run` output?")
        rows = table.to_pydict()
        for i in range(table.num_rows):
            key = rows["id"][i] if "id" in cols else f"{Path(f).name}:{i}"
            meta = json.loads(rows["meta"][i]) if "meta" in cols and rows["meta"][i] else {}
            rec = Record(str(key), (rows["caption"][i] or "").strip(), int(rows["width"][i]), int(rows["height"][i]),
                         data=rows["image"][i], meta=meta)
            if "target_image" in cols and rows["target_image"][i] is not None:  # an edit pair (docs/contracts.md)
                tmeta = json.loads(rows["target_meta"][i] or "{}") if "target_meta" in cols else {}
                rec.target = Record(f"{key}/target", (rows.get("target_caption", [""] * (i + 1))[i] or "").strip(),
                                    rec.width, rec.height, data=rows["target_image"][i], meta=tmeta)
                rec.instruction = (rows["instruction"][i] or "").strip()
            records.append(rec)
    return sorted(records, key=lambda r: r.key)


def read_source(src: Source, name: str = "") -> list[Record]:
    """Records of one source, sorted by key; a UserError when the path is missing or holds no samples."""
    from qimage.datapipe.storage import display_uri, is_uri

    if is_uri(src.path):
        shown = display_uri(src.path)
        return _limit(_read_store(src, name), src, f"source {name!r} ({shown})" if name else shown)
    root = Path(src.path)
    label = f"source {name!r} ({root})" if name else str(root)
    if not root.exists():
        raise UserError(f"{label} does not exist")
    if root.is_file() and root.suffix == ".parquet":
        records = _read_parquet([root])
    elif (root / "kept").is_dir():
        records = _read_parquet(sorted((root / "kept").glob("*.parquet")))
    elif any(root.glob("*.parquet")):
        records = _read_parquet(sorted(root.glob("*.parquet")))
    else:
        records = _read_folder(root)
    return _limit(records, src, label)


def _read_store(src: Source, name: str) -> list[Record]:
    """A `qimage data run` output on an object store (s3://BUCKET/clean: its kept/ parts, or the parts at the
    URI itself); reading folders of images there is left to the data pipeline."""
    from qimage.datapipe.storage import open_store

    store = open_store(src.path)
    parts = [r for r in store.files("kept", recursive=False) if r.endswith(".parquet")] or \
        [r for r in store.files(recursive=False) if r.endswith(".parquet")]
    return _read_parquet(parts, read=store.read_table)


def _limit(records: list[Record], src: Source, label: str) -> list[Record]:
    if src.limit:
        records = records[: src.limit]
    if not records:
        raise UserError(f"{label} holds no samples (no images, no kept Parquet rows)")
    return records


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


class Schedule:
    """The batches of one curriculum stage: ``batch(step) -> (source, (W, H), record indices)``."""

    def __init__(self, records: dict[str, list[Record]], mixture: dict[str, float], buckets, batch_size: int,
                 steps: int, seed: int, stage: int):
        names = [n for n in records if mixture.get(n, 1.0 if not mixture else 0.0) > 0]
        weights = np.array([mixture.get(n, 1.0) if mixture else 1.0 for n in names], dtype=np.float64)
        self.names, self.batch_size, self.seed, self.stage = names, batch_size, seed, stage
        draws = _rng(seed, stage, 0).choice(len(names), size=steps, p=weights / weights.sum())
        self.source_of_step = [names[int(i)] for i in draws]
        seen: dict[str, int] = {}
        self.index_in_source = []
        for n in self.source_of_step:  # how many times the source was drawn before: its own batch counter
            self.index_in_source.append(seen.get(n, 0))
            seen[n] = seen.get(n, 0) + 1
        self.groups = {}
        for si, n in enumerate(names):
            by_bucket: dict[tuple[int, int], list[int]] = {}
            for i, r in enumerate(records[n]):
                by_bucket.setdefault(assign(r.width, r.height, buckets), []).append(i)
            self.groups[n] = (si, sorted(by_bucket.items()))
        self._epochs: dict[tuple[str, int], list] = {}

    def _epoch(self, name: str, epoch: int) -> list:
        key = (name, epoch)
        if key not in self._epochs:
            si, groups = self.groups[name]
            rng = _rng(self.seed, self.stage, 1 + si, epoch)
            batches = []
            for bucket, idx in groups:
                order = [idx[int(j)] for j in rng.permutation(len(idx))]
                nb = -(-len(order) // self.batch_size)
                wrapped = (order * (self.batch_size // len(order) + 2))[: nb * self.batch_size]
                batches += [(bucket, wrapped[k * self.batch_size:(k + 1) * self.batch_size]) for k in range(nb)]
            self._epochs = {k: v for k, v in self._epochs.items() if k[0] != name}  # keep one epoch per source
            self._epochs[key] = [batches[int(j)] for j in rng.permutation(len(batches))]
        return self._epochs[key]

    def batches_per_epoch(self, name: str) -> int:
        _, groups = self.groups[name]
        return sum(-(-len(idx) // self.batch_size) for _, idx in groups)

    def batch(self, step: int) -> tuple[str, tuple[int, int], list[int]]:
        name = self.source_of_step[step]
        k = self.index_in_source[step]
        per = self.batches_per_epoch(name)
        bucket, idx = self._epoch(name, k // per)[k % per]
        return name, bucket, idx
