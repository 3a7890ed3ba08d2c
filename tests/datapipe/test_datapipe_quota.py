"""Stage 7's quality quota: per category, the best share by a quality score survives; the report counts the rest."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from PIL import Image
from skimage import data

from qimage.datapipe.filters.quality_quota import QualityQuota, quality
from qimage.datapipe.pipeline import run


def test_quality_is_the_mean_percentile_rank_of_the_measures_a_sample_has():
    rows = [{"score_clarity": 10.0, "score_exposure": 0.0}, {"score_clarity": 100.0, "score_exposure": 0.2},
            {"score_clarity": 1000.0, "score_exposure": 0.1}, {"score_clarity": None}]
    # clarity ranks 0, 1/2, 1 (the fourth has none); exposure, lower is better: 1, 0, 1/2
    assert quality(rows) == pytest.approx([0.5, 0.25, 0.75, 1.0])  # a sample with no measure is never ranked down


def test_each_category_keeps_its_best_share_and_synthetic_renders_are_exempt():
    def row(path, cat, clarity, synthetic=False):
        return {"path": path, "category": cat, "synthetic": synthetic, "score_clarity": clarity}

    rows = [row("g1", "general", 50.0), row("g2", "general", 500.0), row("g3", "general", 5.0),
            row("g4", "general", 900.0), row("t1", "text", 1.0), row("t2", "text", 2.0),
            row("s1", "text", 0.0, synthetic=True)]
    scores, rejected = QualityQuota(keep=0.5, quotas={"text": 1.0}).resolve(rows)
    assert set(rejected) == {0, 2}  # the two least sharp general images; text keeps all; the render is exempt
    assert "ranks 4 of 4 in general; the quota keeps 2" in rejected[2][1]
    assert scores[6] != scores[6]  # NaN: not scored
    assert QualityQuota().resolve(rows)[1] == {}  # the default keeps everything
    assert set(QualityQuota(keep=0.01).resolve(rows)[1]) == {0, 1, 2, 4}  # ceil: a kept category never empties


def test_the_quota_runs_in_the_pipeline_and_is_counted_in_the_report(tmp_path, ray_session):
    root = tmp_path / "in"
    root.mkdir()
    for name in ("coffee", "chelsea", "rocket", "astronaut", "hubble_deep_field", "immunohistochemistry"):
        Image.fromarray(getattr(data, name)()).save(root / f"{name}.jpg", quality=92)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("filters: {quality_quota: {keep: 0.5}}\n")
    out = tmp_path / "out"
    report = run(root, out, recipe_path=recipe, stages="1-2,6-7", progress=False, log=lambda m: None)
    rejected = [r for p in (out / "rejected").glob("*.parquet") for r in pq.read_table(p).to_pylist()]
    kept = [r for p in (out / "kept").glob("*.parquet") for r in pq.read_table(p).to_pylist()]
    quota = [r for r in rejected if r["filter"] == "quality_quota"]
    assert len(kept) + len(quota) == 6, [(r["path"], r["reasons"]) for r in rejected]  # no other filter fires
    cats = {c: [r for r in kept if r["category"] == c] for c in {r["category"] for r in kept}}
    for r in quota:  # "... in general; the quota keeps 2": the rejected are the category's worst
        cat = r["reason"].split(" in ")[1].split(";")[0]
        assert r["score"] < min(k["score_quality_quota"] for k in cats[cat]), (r, cats[cat])
    n = {c: len(v) + sum(1 for r in quota if f" in {c};" in r["reason"]) for c, v in cats.items()}
    assert {c: len(v) for c, v in cats.items()} == {c: -(-m // 2) for c, m in n.items()}
    stage7 = next(s for s in report["stages_detail"] if s["stage"] == 7)
    assert len(quota) >= 2 and stage7["rejected"] == len(quota) and stage7["out"] == len(kept)
