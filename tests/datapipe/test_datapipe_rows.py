"""finalize's columnar Rows: each row reads back exactly as pyarrow's to_pylist gives it, and writes stick."""
from __future__ import annotations

import math

import pyarrow as pa

from qimage.datapipe.finalize import Rows

SCHEMA = pa.schema([("path", pa.string()), ("width", pa.int32()), ("size_bytes", pa.int64()),
                    ("phash", pa.int64()), ("score", pa.float64()), ("filter", pa.string()),
                    ("reasons", pa.list_(pa.string())), ("synthetic", pa.bool_())])


def _tables():
    a = pa.Table.from_pylist([
        {"path": "a.png", "width": 640, "size_bytes": 2**40, "phash": -(2**62) - 7, "score": 0.1, "filter": None,
         "reasons": None, "synthetic": False},
        {"path": "b.png", "width": None, "size_bytes": 12, "phash": None, "score": None, "filter": "broken_file",
         "reasons": ["broken_file: not an image"], "synthetic": None}], schema=SCHEMA)
    b = pa.Table.from_pylist([
        {"path": "c.png", "width": 3, "size_bytes": 0, "phash": 2**62 + 5, "score": -1e300, "filter": "clarity",
         "reasons": ["clarity: x", "luma: y"], "synthetic": True}], schema=SCHEMA)
    return a, b


def test_rows_read_back_as_to_pylist_and_keep_shard_ranges():
    a, b = _tables()
    rows = Rows([a, b], {"weight": pa.float64()})
    want = [{**r, "weight": None} for r in a.to_pylist() + b.to_pylist()]
    got = [dict(r) for r in rows]
    assert got == want  # 64-bit hashes and sizes too: int64 is not squeezed through float64
    assert all(type(g["width"]) is int for g in got if g["width"] is not None)
    assert (rows.shard(0), rows.shard(1), len(rows)) == (range(0, 2), range(2, 3), 3)
    assert rows[0].get("missing", 7) == 7


def test_rows_writes_are_seen_by_every_view():
    rows = Rows(list(_tables()), {"weight": pa.float64()})
    rows[0].update(filter="duplicate", score=3.0, reasons=["duplicate: near-duplicate of c.png"])
    rows[2]["weight"] = 1.5
    rows[1]["score"] = None
    assert rows[0]["filter"] == "duplicate" and rows[0]["score"] == 3.0 and rows[0]["reasons"][0].startswith("dup")
    assert rows[2]["weight"] == 1.5 and rows[1]["score"] is None and rows[0]["weight"] is None
    assert math.isnan(rows.column("score")[1])
