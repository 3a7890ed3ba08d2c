"""Edit pairs (issue 15): a source and its edited target are ONE sample through `qimage data run`.

Before: `qimage synth --edit-pairs` targets (DIR/edits/ID.png) were samples of their own, and dedup dropped one member
of 8 of 20 pairs as a near-duplicate of the other. Here one pipeline run (module fixture) over a synth folder with
a corrupted and a resized target, a copy of one pair, and a user folder (a photo pair by the sidecar convention, a
source whose target is missing, a plain photo) checks pairing, rejection, the output columns, the accounting and
the trainer's reader; discovery and the edit_pair filter also get tests of their own without Ray.
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import skimage.data as skd
from PIL import Image

N = 10  # synth pairs; 8 and 9 get their targets broken
CORRUPT, RESIZED = "ep/pure_000008.png", "ep/pure_000009.png"
IMAGE_SUFFIXES = {".png", ".jpg"}


def _read(out: Path, sub: str) -> list[dict]:
    return [r for p in sorted((out / sub).glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def _photo(arr: np.ndarray, path: Path, side: int = 384) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).resize((side, side), Image.LANCZOS).save(path, quality=92)


@pytest.fixture(scope="module")
def pair_run(ray_session, tmp_path_factory):
    from qimage.datapipe.pipeline import run as data_run
    from qimage.synth.runner import RunConfig, run

    root = tmp_path_factory.mktemp("pairs")
    run(RunConfig(kind="pure", n=N, out=str(root / "ep"), width=256, height=256, edit_pairs=True), progress=False)
    (root / "ep/edits/pure_000008.png").write_bytes(b"\x89PNG garbage, not an image" * 40)
    with Image.open(root / "ep/edits/pure_000009.png") as im:
        im.resize((256, 200)).save(root / "ep/edits/pure_000009.png")
    # a copy of pair 0 elsewhere: the two pairs are duplicates of each other (compared by their sources)
    for rel in ("pure_000000", "edits/pure_000000"):
        for ext in (".png", ".txt", ".json"):
            (root / "zcopy" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / "ep" / f"{rel}{ext}", root / "zcopy" / f"{rel}{ext}")
    # a user folder: the convention is the sidecar, not the synth layout
    user = root / "user"
    _photo(skd.astronaut(), user / "photo.jpg")
    edited = np.array(Image.open(user / "photo.jpg"))
    edited[40:120, 200:330] = (250, 250, 250)  # "snow" on the flag
    (user / "edited").mkdir()
    Image.fromarray(edited).save(user / "edited/photo_snow.png")
    (user / "photo.txt").write_text("An astronaut in front of a flag.\n")
    (user / "photo.json").write_text(json.dumps({"edit": {"target": "edited/photo_snow.png", "instruction": "Make it snow."}}))
    _photo(skd.coffee(), user / "dangling.jpg")
    (user / "dangling.json").write_text(json.dumps({"edit": {"target": "edited/gone.png", "instruction": "Add milk."}}))
    _photo(skd.chelsea(), user / "plain.jpg")
    out = tmp_path_factory.mktemp("pairs_out")
    recipe = out.parent / "pairs_recipe.yaml"
    recipe.write_text("run: {shard_size: 4}\n")  # several shards: dedup crosses shard borders
    report = data_run(root, out, recipe_path=recipe, progress=False, log=lambda m: None)
    kept = {r["path"]: r for r in _read(out, "kept")}
    rejected = {r["path"]: r for r in _read(out, "rejected")}
    return root, out, report, kept, rejected


def test_each_pair_is_one_sample_kept_with_its_target(pair_run):
    root, _, _, kept, rejected = pair_run
    assert not [p for p in [*kept, *rejected] if "/edits/" in p or p.startswith("user/edited/")]  # targets: no inputs
    for i in range(N - 2):
        src = f"ep/pure_{i:06d}.png"
        r = kept[src]
        meta = json.loads((root / src).with_suffix(".json").read_text())
        assert r["target_path"] == f"ep/edits/pure_{i:06d}.png"
        assert r["target_image"] == (root / r["target_path"]).read_bytes()  # plain RGB PNGs ship as they are
        assert r["image"] == (root / src).read_bytes()
        assert r["instruction"] == meta["edit"]["instruction"] and r["instruction"]
        edit = json.loads(r["edit"])
        assert edit["type"] == meta["edit"]["type"] and edit["target"] == "edits/" + Path(src).name and edit["region"]
        assert r["target_caption"] == (root / r["target_path"]).with_suffix(".txt").read_text().strip()
        assert json.loads(r["target_meta"])["source"] == "../" + Path(src).name
        assert 0 < r["score_edit_pair"] < 0.5  # the share of pixels the edit changed


def test_no_pair_member_is_rejected_as_a_duplicate_of_its_partner(pair_run):
    _, _, _, _, rejected = pair_run
    dups = {p: r for p, r in rejected.items() if r["filter"] == "duplicate"}
    # the only duplicate: the copied pair, of the original pair (by their sources), its target rejected with it
    assert list(dups) == ["zcopy/pure_000000.png"], {p: r["reason"] for p, r in dups.items()}
    d = dups["zcopy/pure_000000.png"]
    assert "near-duplicate of ep/pure_000000.png" in d["reason"] and d["target_path"] == "zcopy/edits/pure_000000.png"


def test_a_corrupted_or_resized_target_rejects_its_pair_naming_it(pair_run):
    _, _, _, kept, rejected = pair_run
    bad = rejected[CORRUPT]
    assert (bad["stage"], bad["filter"]) == (1, "edit_pair") and bad["target_path"] == "ep/edits/pure_000008.png"
    assert bad["reason"].startswith("target ep/edits/pure_000008.png: ") and "not an image" in bad["reason"], bad["reason"]
    small = rejected[RESIZED]
    assert small["filter"] == "edit_pair" and small["target_path"] == "ep/edits/pure_000009.png"
    assert small["reason"] == "target ep/edits/pure_000009.png is 256x200, its source 256x256"
    gone = rejected["user/dangling.jpg"]
    assert gone["filter"] == "edit_pair" and gone["target_path"] is None
    assert gone["reason"] == "edit target edited/gone.png: not found (missing, or hidden)"
    assert CORRUPT not in kept and RESIZED not in kept


def test_a_user_folder_pair_and_a_plain_sample(pair_run):
    root, _, _, kept, _ = pair_run
    r = kept["user/photo.jpg"]
    assert r["target_path"] == "user/edited/photo_snow.png" and r["instruction"] == "Make it snow."
    assert r["target_image"] == (root / "user/edited/photo_snow.png").read_bytes()
    assert r["caption"] == "An astronaut in front of a flag." and r["target_caption"] == "" and r["target_meta"] == "{}"
    assert json.loads(r["edit"]) == {"target": "edited/photo_snow.png", "instruction": "Make it snow."}
    plain = kept["user/plain.jpg"]
    assert all(plain[c] is None for c in ("target_path", "target_image", "target_caption", "target_meta",
                                          "instruction", "edit", "score_edit_pair"))


def test_every_file_is_kept_or_rejected_once_and_the_report_counts_pairs(pair_run):
    root, out, report, kept, rejected = pair_run
    images = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in IMAGE_SUFFIXES)
    rows = [*kept.values(), *rejected.values()]
    files = [r["path"] for r in rows] + [r["target_path"] for r in rows if r["target_path"]]
    assert sorted(files) == images  # each once, sources and targets alike
    c = report["counts"]
    assert c["conserved"] and c["inputs"] == len(rows) == c["kept"] + c["rejected"]
    assert c["files"] == len(images)
    assert c["pairs"] == {"inputs": N + 3, "kept": N - 2 + 1, "rejected": 4, "targets": N + 2}
    assert json.loads((out / "report.json").read_text())["counts"] == c
    edit_pair = next(f for s in report["stages_detail"] for f in s["filters"] if f["name"] == "edit_pair")
    assert edit_pair["status"] == "on" and edit_pair["rejected"] == 3 and edit_pair["scored"] == N - 2 + 2
    assert f'{c["files"]} files; {N + 3} edit pairs' in (out / "report.html").read_text()


def test_read_pairs_gives_the_trainer_source_target_and_instruction(pair_run):
    from qimage.datapipe.pairs import read_pairs

    root, out, _, kept, _ = pair_run
    got = list(read_pairs(out))
    assert [p["path"] for p in got] == [r["path"] for r in kept.values() if r["target_path"]]
    assert len(got) == N - 2 + 1
    for p in got:
        r = kept[p["path"]]
        assert p["source"].mode == p["target"].mode == "RGB" and p["source"].size == p["target"].size
        assert np.array_equal(np.asarray(p["target"]), np.asarray(Image.open(root / r["target_path"]).convert("RGB")))
        assert np.array_equal(np.asarray(p["source"]), np.asarray(Image.open(root / r["path"]).convert("RGB")))
        assert p["instruction"] == r["instruction"] and p["caption"] == r["caption"]
        assert p["meta"] == json.loads(r["meta"]) and p["edit"]["target"] == p["meta"]["edit"]["target"]
    files = sorted((out / "kept").glob("*.parquet"))
    assert [p["path"] for p in read_pairs(files)] == [p["path"] for p in got]  # shard files work as well


# -- without Ray ---------------------------------------------------------------------------------------------------
def _img(path: Path, value: int = 0, size=(64, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)


def _edit(path: Path, target, instruction: str | None = "Do it.") -> None:
    e = {"target": target} if instruction is None else {"target": target, "instruction": instruction}
    path.with_suffix(".json").write_text(json.dumps({"edit": e}))


def test_discover_pairs_by_the_source_json_and_says_why_it_cannot(tmp_path):
    from qimage.datapipe.sample import discover

    for name in ("a", "edits/a", "b", "c", "d", "e", "shared", "f", "g", "h", "i", "plain", ".hidden/x"):
        _img(tmp_path / f"{name}.png")
    _edit(tmp_path / "a.png", "edits/a.png")
    (tmp_path / "edits/a.txt").write_text("target caption")
    (tmp_path / "edits/a.json").write_text('{"source": "../a.png"}')
    _edit(tmp_path / "b.png", "../outside.png")
    _edit(tmp_path / "c.png", "c.png")
    _edit(tmp_path / "d.png", "shared.png")
    _edit(tmp_path / "e.png", "./shared.png")
    _edit(tmp_path / "f.png", "a.json")
    _edit(tmp_path / "g.png", "h.png")  # a chain: g -> h -> i; h is g's target only, i stays a sample
    _edit(tmp_path / "h.png", "i.png")
    _edit(tmp_path / "plain.png", ".hidden/x.png")
    inputs, cars = discover(tmp_path)
    assert inputs == ["a.png", "b.png", "c.png", "d.png", "e.png", "f.png", "g.png", "i.png", "plain.png"]
    assert cars["a.png"] == {"json": "a.json", "target": "edits/a.png", "target_txt": "edits/a.txt",
                             "target_json": "edits/a.json"}
    assert cars["d.png"]["target"] == "shared.png" and cars["g.png"]["target"] == "h.png"
    err = {k: v.get("edit_error") for k, v in cars.items() if "edit_error" in v}
    assert err == {"b.png": "edit target ../outside.png: outside the input folder",
                   "c.png": "edit target c.png: is the sample itself",
                   "e.png": "edit target shared.png: already paired with d.png",
                   "f.png": "edit target a.json: is a caption/metadata sidecar, not an image",
                   "plain.png": "edit target .hidden/x.png: not found (missing, or hidden)"}
    assert "edits/a.png" not in cars and "h.png" not in cars  # targets' sidecars belong to their sources


def test_a_resume_sees_an_edited_target(tmp_path):
    from qimage.datapipe.pipeline import _fingerprint_inputs
    from qimage.datapipe.sample import discover

    _img(tmp_path / "a.png")
    _img(tmp_path / "edits/a.png", 1)
    _edit(tmp_path / "a.png", "edits/a.png")
    before = _fingerprint_inputs(tmp_path, *discover(tmp_path))
    _img(tmp_path / "edits/a.png", 2, size=(64, 48))
    assert _fingerprint_inputs(tmp_path, *discover(tmp_path)) != before


def test_edit_pair_filter_wants_an_instruction_and_optionally_a_change(tmp_path):
    from qimage.datapipe import recipe as R
    from qimage.datapipe.process import Plan, process_file
    from qimage.datapipe.sample import discover

    for name, target, instruction in (("a", "t/a.png", None), ("b", "t/b.png", "Do nothing.")):
        _img(tmp_path / f"{name}.png", 0, (300, 300))
        _edit(tmp_path / f"{name}.png", target, instruction)
    _img(tmp_path / "t/a.png", 1, (300, 300))
    shutil.copy(tmp_path / "b.png", tmp_path / "t/b.png")  # a no-op edit
    (tmp_path / "t/b.json").write_text(json.dumps({"edit": {"type": "none", "instruction": "ignored: the source's wins"}}))
    user = tmp_path.parent / f"{tmp_path.name}_recipe.yaml"
    user.write_text("filters: {edit_pair: {min: 0.001}}\n")
    plan = Plan(R.load(user), (1,))
    inputs, cars = discover(tmp_path)
    rows = {rel: process_file(plan, tmp_path, rel, cars.get(rel, {})) for rel in inputs}
    assert rows["a.png"]["reason"] == "target t/a.png: no instruction (edit.instruction in the source's or the target's JSON)"
    b = rows["b.png"]
    assert b["filter"] == "edit_pair" and b["reason"] == "target t/b.png: changed share 0 < min 0.001" and b["score"] == 0
    assert b["instruction"] == "Do nothing." and json.loads(b["edit"]) == {"type": "none", "instruction": "Do nothing.",
                                                                         "target": "t/b.png"}
    assert rows["a.png"]["target_image"] is None and b["target_image"] is None  # only kept rows ship bytes
