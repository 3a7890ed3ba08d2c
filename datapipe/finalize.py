"""The global pass after scoring: near-duplicates across shards, weights, kept/rejected shards, the reports.

It reads only the small columns of every shard (no pixels), then rewrites each shard into kept/ and rejected/.
Its outputs are a pure function of the shard files, so a run killed here simply redoes this pass.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping

import numpy as np

import pyarrow as pa

from qimage.datapipe import labels as L
from qimage.datapipe.pipeline import PAIR_FIELDS, shard_file
from qimage.datapipe.process import Plan
from qimage.datapipe.storage import open_store

LIGHT = ["path", "size_bytes", "width", "height", "stage", "filter", "reason", "reasons", "score", "phash", "passed_later",
         "lang", "category", "bucket", "has_caption", "synthetic", "ocr", "ocr_text", "target_path", "edit"]


SHARED = {"filter", "lang", "category", "bucket", "ocr"}  # few distinct values: one string object each


class Rows:
    """The small columns of every shard, held as columns so that the driver's memory grows only by what dedup needs
    (hash, path, OCR text) and a few bytes per score: numbers in numpy arrays (float null as NaN, which shards never
    store; integers with a validity mask), the few-valued strings interned. ``rows[i]`` reads and writes row i as a
    mapping, with the values pyarrow's to_pylist would give."""

    def __init__(self, tables: list[pa.Table], extra: dict[str, pa.DataType]):
        self.starts = np.cumsum([0] + [t.num_rows for t in tables])
        self.n = int(self.starts[-1])
        self.cols: dict[str, object] = {}
        self.valid: dict[str, np.ndarray] = {}  # integer columns: null where False (int64 hashes do not fit a float)
        schema = tables[0].schema if tables else pa.schema([])
        for field in schema:
            arr = pa.chunked_array([c for t in tables for c in t.column(field.name).chunks], type=field.type)
            self._hold(field.name, field.type, arr)
        for name, typ in extra.items():
            self._hold(name, typ, pa.chunked_array([pa.nulls(self.n, typ)]))

    def _hold(self, name: str, typ: pa.DataType, arr: pa.ChunkedArray) -> None:
        if pa.types.is_floating(typ):
            self.cols[name] = arr.to_numpy().astype(np.float64)
        elif pa.types.is_integer(typ):
            self.cols[name] = arr.fill_null(0).to_numpy().astype(np.int64)
            self.valid[name] = arr.is_valid().to_numpy().copy()
        elif name in SHARED:
            self.cols[name] = [None if v is None else sys.intern(v) for v in arr.to_pylist()]
        else:
            self.cols[name] = arr.to_pylist()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> "Row":
        return Row(self, i)

    def __iter__(self):
        return (Row(self, i) for i in range(self.n))

    def column(self, name: str):
        return self.cols[name]

    def shard(self, s: int) -> range:
        return range(int(self.starts[s]), int(self.starts[s + 1]))

    def get_value(self, name: str, i: int):
        col = self.cols[name]
        if name in self.valid:
            return int(col[i]) if self.valid[name][i] else None
        if isinstance(col, np.ndarray):
            v = float(col[i])
            return None if v != v else v
        return col[i]

    def set_value(self, name: str, i: int, v) -> None:
        col = self.cols[name]
        if name in self.valid:
            self.valid[name][i] = v is not None
            col[i] = 0 if v is None else v
        elif isinstance(col, np.ndarray):
            col[i] = np.nan if v is None else v
        else:
            col[i] = sys.intern(v) if name in SHARED and v is not None else v


class Row(Mapping):
    """Row i of a Rows: a read-write view, no copy."""

    __slots__ = ("_rows", "_i")

    def __init__(self, rows: Rows, i: int):
        self._rows, self._i = rows, i

    def __getitem__(self, key):
        if key not in self._rows.cols:
            raise KeyError(key)
        return self._rows.get_value(key, self._i)

    def __iter__(self):
        return iter(self._rows.cols)

    def __len__(self) -> int:
        return len(self._rows.cols)

    def __setitem__(self, key, value) -> None:
        self._rows.set_value(key, self._i, value)

    def update(self, **values) -> None:
        for k, v in values.items():
            self[k] = v


class DedupRow(Mapping):
    """Row i as the duplicate filter reads it: its hash, its pixels, its OCR text as `text`."""

    __slots__ = ("_row",)
    KEYS = ("phash", "passed_later", "pixels", "size_bytes", "path", "text")

    def __init__(self, row: Row):
        self._row = row

    def __getitem__(self, key):
        if key == "pixels":
            return self._row["width"] * self._row["height"]
        return self._row["ocr_text" if key == "text" else key]

    def __iter__(self):
        return iter(self.KEYS)

    def __len__(self) -> int:
        return len(self.KEYS)


def kept_schema(plan: Plan) -> pa.Schema:
    fields = [("id", pa.string()), ("path", pa.string()), ("image", pa.binary()), ("width", pa.int32()),
              ("height", pa.int32()), ("caption", pa.string()), ("meta", pa.string()), ("lang", pa.string()),
              ("category", pa.string()), ("bucket", pa.string()), ("weight", pa.float64()),
              ("ocr_text", pa.string()), ("has_caption", pa.bool_()), *PAIR_FIELDS]
    fields += [(c, pa.float64()) for c in plan.score_columns() if c != "score_broken_file"]
    return pa.schema(fields)


REJECTED_SCHEMA = pa.schema([("id", pa.string()), ("path", pa.string()), ("stage", pa.int32()), ("filter", pa.string()),
                             ("reason", pa.string()), ("reasons", pa.list_(pa.string())), ("score", pa.float64()),
                             ("target_path", pa.string())])  # an edit pair's target, rejected with its source


def finalize(root, out, recipe: dict, stages: tuple[int, ...], n_shards: int, warnings: list[str],
             seconds: float, timing: dict | None = None) -> dict:
    """`root`, `out`: the input and output locations (folders, URIs or storage.Store)."""
    t_final = time.time()
    root, out = open_store(root), open_store(out)
    plan = Plan(recipe, stages, dry=True)
    files = [shard_file(i) for i in range(n_shards)]
    score_cols = plan.score_columns()
    rows = Rows([out.read_table(f, columns=LIGHT + score_cols) for f in files], {"weight": pa.float64()})

    dup = next((f for f in plan.filters if f.name == "duplicate"), None)
    if dup is not None:
        order = [f.name for f in plan.all]
        after = set(order[order.index("duplicate") + 1:])
        eligible = [i for i, r in enumerate(rows) if r["phash"] is not None and (r["filter"] is None or r["filter"] in after)]
        for k, (dist, reason) in dup.resolve([DedupRow(rows[i]) for i in eligible]).items():
            r = rows[eligible[k]]
            same_stage = r["reasons"] if r["stage"] == 1 else []  # a later stage's failures were never final
            r.update(stage=1, filter="duplicate", reason=reason, score=dist, score_duplicate=dist,
                     reasons=[f"duplicate: {reason}", *same_stage])

    quota = next((f for f in plan.filters if f.name == "quality_quota"), None)
    if quota is not None:
        _quality_quota(quota, rows)

    kept_idx = [i for i, r in enumerate(rows) if r["filter"] is None]
    w = L.weights([rows[i] for i in kept_idx], recipe["labels"], 6 in stages, 7 in stages)
    for i, x in zip(kept_idx, w):
        rows[i]["weight"] = x

    out.makedirs("kept")
    out.makedirs("rejected")
    kschema = kept_schema(plan)
    expected = set()
    for s, f in enumerate(files):
        mine = rows.shard(s)
        full = out.read_table(f, columns=["id", "image", "caption", "meta", "ocr_text", "target_image", "target_caption",
                                         "target_meta", "instruction"]).to_pylist()
        base = mine.start
        kept, rej = [], []
        for i in mine:
            r = rows[i]
            if r["filter"] is None:
                kept.append({**r, **full[i - base]})
            else:
                rej.append({**r, "id": full[i - base]["id"]})
        name = f"part-{s:05d}.parquet"
        if kept:
            out.write_table(f"kept/{name}", pa.Table.from_pylist(kept, schema=kschema))
            expected.add(f"kept/{name}")
        if rej:
            out.write_table(f"rejected/{name}", pa.Table.from_pylist(rej, schema=REJECTED_SCHEMA))
            expected.add(f"rejected/{name}")
    for sub in ("kept", "rejected"):  # stale parts of an earlier, differently decided run
        for rel in out.files(sub, recursive=False):
            if rel.endswith(".parquet") and rel not in expected:
                out.remove(rel)

    from qimage.datapipe.report import build_report, html_page

    thumbs = _thumbs(out, files, rows, int(recipe["run"]["thumbnails_per_filter"]))
    report = build_report(root.name, out.name, recipe, plan, stages, rows, warnings, seconds)
    report["timing"] = {**(timing or {}), "finalize_s": round(time.time() - t_final, 3)}
    out.write_text("report.json", json.dumps(report, indent=1, ensure_ascii=False))
    out.write_text("report.html", html_page(report, thumbs, recipe))
    return report


def _quality_quota(quota, rows: Rows) -> None:
    """Stage 7: each kept row's quality score, and the rows past their category's quota rejected."""
    kept_idx = [i for i, r in enumerate(rows) if r["filter"] is None]
    scores, rejected = quota.resolve([rows[i] for i in kept_idx])
    for i, q in zip(kept_idx, scores):
        rows[i]["score_quality_quota"] = None if q != q else q
    for k, (q, reason) in rejected.items():
        rows[kept_idx[k]].update(stage=7, filter="quality_quota", reason=reason, score=q,
                                 reasons=[f"quality_quota: {reason}"])


def thumbnail_of(data: bytes, side: int = 96) -> bytes | None:
    import io

    from PIL import Image

    try:
        im = Image.open(io.BytesIO(data))
        im.draft("RGB", (side * 2, side * 2))  # JPEG: decode at reduced size
        im = im.convert("RGB")
        im.thumbnail((side, side))
        b = io.BytesIO()
        im.save(b, "JPEG", quality=80)
        return b.getvalue()
    except (OSError, ValueError):
        return None


def _thumbs(out, files, rows: Rows, per_filter: int) -> dict[str, list[tuple[dict, bytes | None]]]:
    """Up to per_filter rejected examples per filter (first by path, so reruns show the same ones)."""
    chosen: dict[str, list[int]] = {}
    paths, filters = rows.column("path"), rows.column("filter")
    for i in sorted(range(len(rows)), key=paths.__getitem__):
        f = filters[i]
        if f is not None and len(chosen.setdefault(f, [])) < per_filter:
            chosen[f].append(i)
    need: dict[int, set[int]] = {}
    for idx in chosen.values():
        for i in idx:
            need.setdefault(int(np.searchsorted(rows.starts, i, side="right")) - 1, set()).add(i)
    got: dict[int, bytes | None] = {}
    for s, idx in need.items():
        t = out.read_table(files[s], columns=["thumb", "image"])
        thumbs, images = t.column("thumb").to_pylist(), t.column("image")
        base = rows.shard(s).start
        for i in idx:
            got[i] = thumbs[i - base]
            if got[i] is None and images[i - base].is_valid:  # rejected in the global pass: thumbnail it now
                got[i] = thumbnail_of(images[i - base].as_py())
    return {f: [(rows[i], got.get(i)) for i in idx] for f, idx in chosen.items()}
