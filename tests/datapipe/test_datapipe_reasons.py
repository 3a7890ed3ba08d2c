"""Every filter a sample fails in its rejecting stage is recorded, counted in the report and drawn per filter."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
from PIL import Image
from skimage import data

from qimage.datapipe.pipeline import run


def test_a_nearly_black_photo_is_rejected_for_every_stage_2_filter_it_fails(tmp_path, ray_session):
    root = tmp_path / "in"
    root.mkdir()
    photo = data.astronaut()
    Image.fromarray(photo).save(root / "clean.jpg", quality=92)
    # another photo, nearly black (a darkened copy of the clean one would be its near-duplicate: pHash ignores gain)
    Image.fromarray((data.chelsea() * 0.03).astype(np.uint8)).save(root / "dark.png")
    Image.fromarray(np.full((300, 300, 3), 30, np.uint8)).save(root / "flat.png")  # dark, flat, tiny file
    out = tmp_path / "out"
    report = run(root, out, stages="1-3", progress=False, log=lambda m: None)

    rows = {r["path"]: r for p in (out / "rejected").glob("*.parquet") for r in pq.read_table(p).to_pylist()}
    dark = rows["dark.png"]
    assert dark["stage"] == 2 and dark["reasons"][0].startswith(f'{dark["filter"]}: ')  # the primary comes first
    failed = {x.split(":")[0] for x in dark["reasons"]}
    assert {"clarity", "luma", "entropy"} <= failed, dark["reasons"]
    assert all(": " in x for x in dark["reasons"])
    flat = rows["flat.png"]
    assert flat["stage"] == 1 and {x.split(":")[0] for x in flat["reasons"]} == {"file_size"}, flat["reasons"]

    counts = report["counts"]["failing_filters"]
    # 1 each: with cascade, the flat image's stage-1 rejection keeps stage 2 from measuring (and reporting) its darkness
    assert counts["luma"] == 1 and counts["clarity"] == 1 and counts["file_size"] == 1, counts
    assert json.loads((out / "report.json").read_text())["counts"]["failing_filters"] == counts
    luma = next(f for s in report["stages_detail"] for f in s["filters"] if f["name"] == "luma")
    assert luma["failed"] == 1 and luma["scored"] == 2  # the clean photo and the dark one
    h = luma["histogram"]
    assert sum(h["rejected"]) == 1 and sum(h["kept"]) == 1
    assert [k + r for k, r in zip(h["kept"], h["rejected"])] == h["counts"]
    assert "blue: kept" in (out / "report.html").read_text()
