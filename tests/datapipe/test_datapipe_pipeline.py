"""End to end on the demo folder (real photos with planted defects): conservation, decisions, outputs, report."""
from __future__ import annotations

import io
import json
import math

import pyarrow.parquet as pq
from PIL import Image


def _read(out, sub):
    return [r for p in sorted((out / sub).glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def test_every_input_ends_in_exactly_one_of_kept_or_rejected(demo_run):
    root, expected, out, report, _ = demo_run
    kept, rejected = _read(out, "kept"), _read(out, "rejected")
    paths = [r["path"] for r in kept] + [r["path"] for r in rejected]
    assert sorted(paths) == sorted(expected)  # every planted file, none twice, sidecars not counted as inputs
    assert len(set(paths)) == len(paths)
    assert report["counts"]["conserved"] and report["counts"]["inputs"] == len(expected)


def test_each_planted_defect_is_rejected_by_its_filter(demo_run):
    _, expected, out, _, _ = demo_run
    got = {r["path"]: r["filter"] for r in _read(out, "rejected")}
    wrong = {p: (e, got.get(p)) for p, e in expected.items() if got.get(p) != e}
    assert not wrong, wrong


def test_kept_rows_follow_the_contract(demo_run):
    _, _, out, _, _ = demo_run
    t = pq.read_table(sorted((out / "kept").glob("*.parquet"))[0])
    for col, typ in [("id", "string"), ("path", "string"), ("image", "binary"), ("width", "int32"), ("height", "int32"),
                     ("caption", "string"), ("meta", "string"), ("lang", "string"), ("category", "string"),
                     ("bucket", "string"), ("weight", "double"), ("score_clarity", "double")]:
        assert str(t.schema.field(col).type) == typ, col
    kept = {r["path"]: r for r in _read(out, "kept")}
    for r in kept.values():
        im = Image.open(io.BytesIO(r["image"]))
        assert im.size == (r["width"], r["height"]) and im.mode in ("RGB", "L")
        assert r["lang"] in ("en", "zh", "other", "none") and r["category"] in ("general", "portrait", "text")
        assert r["weight"] > 0 and "x" in r["bucket"]
        json.loads(r["meta"])
    assert kept["photos/astronaut.jpg"]["caption"].startswith("An astronaut")
    assert kept["photos/coffee_cmyk.jpg"]["caption"].startswith("A cup of coffee")  # caption from the JSON sidecar
    assert kept["photos/camera_16bit.png"]["caption"] == ""  # missing caption recorded as empty
    assert kept["text/sign_en.jpg"]["lang"] == "en" and kept["text/sign_zh.jpg"]["lang"] == "zh"
    assert kept["text/sign_en.jpg"]["category"] == "text"
    assert kept["photos/astronaut.jpg"]["category"] == "portrait"
    assert kept["synthetic/000001.png"]["category"] == "text"


def test_rejected_rows_say_stage_filter_reason_score(demo_run):
    _, _, out, _, _ = demo_run
    rej = {r["path"]: r for r in _read(out, "rejected")}
    r = rej["quality/blurry.png"]
    assert (r["stage"], r["filter"]) == (2, "clarity") and r["score"] < 100 and "min 100" in r["reason"]
    d = rej["dup/astronaut_small.jpg"]
    assert d["stage"] == 1 and "photos/astronaut.jpg" in d["reason"] and d["score"] <= 6
    assert rej["broken/empty.jpg"]["reason"] == "empty file"


def test_report_files_hold_the_counts(demo_run):
    _, expected, out, report, _ = demo_run
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["counts"] == report["counts"]
    n_rej = sum(e is not None for e in expected.values())
    assert report["counts"]["kept"] == len(expected) - n_rej and report["counts"]["rejected"] == n_rej
    by_filter = {f["name"]: f["rejected"] for s in report["stages_detail"] for f in s["filters"]}
    for name in set(e for e in expected.values() if e):
        assert by_filter[name] == sum(e == name for e in expected.values()), name
    stages = report["stages_detail"]
    assert stages[0]["in"] == len(expected) and stages[-1]["out"] == report["counts"]["kept"]
    assert all(a["out"] == b["in"] for a, b in zip(stages, stages[1:]))
    clarity = next(f for f in stages[1]["filters"] if f["name"] == "clarity")
    assert clarity["thresholds"] == {"min": 100.0} and sum(clarity["histogram"]["counts"]) == clarity["scored"]
    html = (out / "report.html").read_text()
    scored = sum(bool(f["histogram"]) for s in stages for f in s["filters"])
    assert scored >= 10 and html.count('<figure class="hist"><img') == scored  # one matplotlib chart per scored filter
    assert html.count("data:image/jpeg;base64") >= n_rej - 7  # broken files have no pixels
    assert "quality/blurry.png" in html and "Laplacian variance" in html


def test_same_input_and_recipe_give_the_same_sets(demo_run, tmp_path):
    from qimage.datapipe.pipeline import run

    root, _, out, report, recipe = demo_run
    again = tmp_path / "again"
    run(root, again, recipe_path=recipe, progress=False, log=lambda m: None)
    key = lambda rows: sorted((r["path"], r.get("filter"), r.get("reason")) for r in rows)
    assert key(_read(out, "rejected")) == key(_read(again, "rejected"))
    assert [r["id"] for r in _read(out, "kept")] == [r["id"] for r in _read(again, "kept")]
    w1 = [r["weight"] for r in _read(out, "kept")]
    w2 = [r["weight"] for r in _read(again, "kept")]
    assert all(math.isclose(a, b) for a, b in zip(w1, w2))
