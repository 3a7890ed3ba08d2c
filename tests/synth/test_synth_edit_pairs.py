"""Edit pairs of words (and scenes) for the toy edit model: pixel-aligned, exact instruction forms, held-out
combinations kept out of training and drawn by the eval's functions, same bytes for any worker count."""
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qimage.synth import words
from qimage.synth.runner import RunConfig, make_sample, run

WORD_FORMS = {
    "replace_text": re.compile(r'Change the text to "([A-Z]{4})"\.'),
    "recolor_text": re.compile(r"Make the text ([a-z -]+)\."),
    "recolor_background": re.compile(r"Make the background ([a-z -]+)\."),
}
CAPTION = re.compile(r'On a ([a-z -]+) background, displaying ([a-z -]+) text "([A-Z]{4})"\.')


def _words_cfg(w, h, seed=11, **kw):
    return RunConfig(kind="words", n=1, out=".", width=w, height=h, seed=seed, edit_pairs=True, **kw)


def _arrays(src, tgt):
    return np.asarray(src).astype(int), np.asarray(tgt).astype(int)


def _check_words_pair(src_img, src_meta, tgt_img, tgt_meta, info, quad_mask):
    """The pixel contract of one words pair; returns its edit type."""
    kind = info["type"]
    m = WORD_FORMS[kind].fullmatch(info["instruction"])
    assert m and m[1] == info["new"], info["instruction"]
    a, b = _arrays(src_img, tgt_img)
    diff = np.abs(a - b).max(-1)
    region = quad_mask(info["region"], a.shape, grow=1)
    assert diff[~region].max(initial=0) == 0, f"{kind}: pixels changed outside the recorded region"
    assert (diff > 0).sum() > 20, f"{kind}: the target must change"
    bg, fg = np.array(src_meta["background"]["rgb"]), np.array(src_meta["color"]["rgb"])
    ink = (a == fg).all(-1)  # full-coverage text pixels of the source
    paper = (a == bg).all(-1)
    assert ink.sum() > 20 and paper.sum() > 0.3 * paper.size
    new_bg, new_fg = np.array(tgt_meta["background"]["rgb"]), np.array(tgt_meta["color"]["rgb"])
    if kind == "recolor_text":
        assert info["old"] == src_meta["color"]["name"] and info["new"] == tgt_meta["color"]["name"]
        assert (b[ink] == new_fg).all()  # the text pixels take exactly the new colour (was mean < 1, measured 0)
        assert (b[paper] == bg).all()  # the background never changes
    elif kind == "recolor_background":
        assert info["old"] == src_meta["background"]["name"] and info["new"] == tgt_meta["background"]["name"]
        assert (b[paper] == new_bg).all()  # was mean < 1, measured 0
        assert (b[ink] == fg).all()  # the text stays where it was, in its colour
    else:
        assert info["old"] == src_meta["lines"][0]["text"] != info["new"] == tgt_meta["lines"][0]["text"]
        assert src_meta["font"] == tgt_meta["font"] and src_meta["font_size"] == tgt_meta["font_size"]
        # the new word stays in the old one's box: the union of the two ink quads, nothing else
        assert len(info["region"]) == 2
    return kind


@pytest.mark.parametrize("size", [(128, 64), (256, 128)])
def test_words_pairs_differ_only_in_the_region_and_as_instructed(size, quad_mask):
    types = {}
    for i in range(18):
        s = make_sample(_words_cfg(*size), i)
        e = s.edit
        kind = _check_words_pair(s.image, s.meta, e.image, e.meta, e.meta["edit"], quad_mask)
        types[kind] = types.get(kind, 0) + 1
        m = CAPTION.fullmatch(e.caption)
        assert m and (m[1], m[2], m[3]) == (e.meta["background"]["name"], e.meta["color"]["name"],
                                             e.meta["lines"][0]["text"])
        assert e.image.size == size
    assert set(types) == set(words.EDIT_TYPES) and min(types.values()) >= 3, types


def test_words_colours_stay_legible_and_within_the_drawn_palette():
    from qimage.synth import colors

    palette = set(words.edit_colors())
    for i in range(60):
        e = make_sample(_words_cfg(128, 64, seed=21), i).edit
        bg, fg = e.meta["background"], e.meta["color"]
        assert bg["name"] in palette and fg["name"] in palette
        if e.meta["edit"]["type"] != "replace_text":
            assert colors.contrast(bg["rgb"], fg["rgb"]) >= 3.0
            old = colors.BY_NAME[e.meta["edit"]["old"]].rgb
            assert colors.distance(old, colors.BY_NAME[e.meta["edit"]["new"]].rgb) >= 120


def test_heldout_file_follows_its_rule_and_holds_about_15_percent():
    held = words.heldout_edits()
    assert held == frozenset(words.heldout_edit_rule())
    total = sum(len(words.recolor_options(k, bg, fg)) for k in words.EDIT_TYPES[1:] for bg, fg in words.PAIRS)
    assert (len(held), total) == (11, 71)  # 5 of 33 text recolours, 6 of 38 background recolours
    for k in words.EDIT_TYPES[1:]:  # every (type, pair) keeps a training colour
        for bg, fg in words.PAIRS:
            assert any(not words.heldout_edit(k, bg, fg, c) for c in words.recolor_options(k, bg, fg))


def test_training_pairs_never_draw_heldout_words_or_combinations():
    held_words = words.heldout()
    for i in range(300):
        s = make_sample(_words_cfg(128, 64, seed=4), i)
        info = s.edit.meta["edit"]
        assert info["word"] not in held_words and s.meta["lines"][0]["text"] not in held_words
        assert not words.heldout_edit(info["type"], info["background"], info["color"], info["new"]), info
        if info["type"] == "replace_text":
            assert info["new"] not in held_words


def test_eval_pairs_draw_only_heldout_ones_balanced_and_aligned(quad_mask):
    pairs = words.eval_edit_pairs(12, seed=3)
    assert [p["meta"]["type"] for p in pairs] == list(words.EDIT_TYPES) * 4
    for p in pairs:
        m = p["meta"]
        assert p["source"].mode == p["target"].mode == "RGB" and p["source"].size == (128, 64)
        assert words.heldout_edit(m["type"], m["background"], m["color"], m["new"]), m
        assert m["word"] not in words.heldout()  # the source is a training word: only the edit is new
        _check_words_pair(p["source"], m["source_meta"], p["target"], m["target_meta"], m, quad_mask)
        assert p["instruction"] == m["instruction"] and CAPTION.fullmatch(m["target_caption"])
    again = words.eval_edit_pairs(12, seed=3)
    assert all(a["target"].tobytes() == b["target"].tobytes() for a, b in zip(pairs, again))


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", ["words", "scenes"])
def test_edit_pairs_same_bytes_for_one_and_two_workers(tmp_path, kind):
    common = dict(kind=kind, n=6, width=128, height=64, seed=9, edit_pairs=True)
    run(RunConfig(out=str(tmp_path / "a"), workers=1, **common), progress=False)
    run(RunConfig(out=str(tmp_path / "b"), workers=2, **common), progress=False)
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert len(da) == 6 * 6 + 1 and da == db


def test_cli_writes_words_edit_pairs(tmp_path):
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "-m", "qimage", "synth", "words", "-n", "6", "--edit-pairs", "-o", str(out),
                        "--size", "128x64"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == 6
    for e in manifest["samples"]:
        src = json.loads((out / e["meta"]).read_text())
        tgt = json.loads((out / "edits" / e["meta"]).read_text())
        assert src["edit"]["target"] == e["edit"] and (out / e["edit"]).is_file()
        assert src["edit"]["instruction"] == tgt["edit"]["instruction"]
        assert WORD_FORMS[src["edit"]["type"]].fullmatch(src["edit"]["instruction"])
        assert tgt["source"] == f"../{e['image']}" and tgt["edit"]["region"]
        assert CAPTION.fullmatch((out / "edits" / e["caption"]).read_text().strip())


# --- scenes ----------------------------------------------------------------------------------------------------------
SHAPE = r"(circle|square|triangle|star|hexagon)"
SCENE_FORMS = {
    "recolor_object": re.compile(rf"Change the ([a-z]+) {SHAPE} to ([a-z]+)\."),
    "add_object": re.compile(rf"Add an? ([a-z]+) {SHAPE}\."),
    "remove_object": re.compile(rf"Remove the ([a-z]+) {SHAPE}\."),
}


def _object_pixels(meta, j, shape):
    """Pixels well inside object j (a disc of a third of its radius about its centre)."""
    o = meta["objects"][j]
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - o["center"][0]) ** 2 + (yy - o["center"][1]) ** 2 <= (o["radius"] / 3) ** 2


def _check_scene_pair(src_img, src_meta, tgt_img, tgt_meta, info, quad_mask):
    kind = info["type"]
    m = SCENE_FORMS[kind].fullmatch(info["instruction"])
    assert m, info["instruction"]
    a, b = _arrays(src_img, tgt_img)
    diff = np.abs(a - b).max(-1)
    # measured: every pair clean with the box dilated by 1 px (cv2's rounding of the 0.1 px box), 215 of 300 not at 0
    assert diff[~quad_mask(info["region"], a.shape, grow=1)].max(initial=0) == 0, f"{kind}: changed outside the box"
    assert (diff > 0).sum() > 20
    so, to, j = src_meta["objects"], tgt_meta["objects"], info["object"]
    bg = np.array(src_meta["background"]["rgb"])
    if kind == "recolor_object":
        assert (m[1], m[2], m[3]) == (so[j]["color"], so[j]["shape"], to[j]["color"]) and m[1] != m[3]
        assert [o for k, o in enumerate(so) if k != j] == [o for k, o in enumerate(to) if k != j]
        inside = _object_pixels(tgt_meta, j, a.shape)
        assert (b[inside] == np.array(to[j]["rgb"])).all()  # was mean < 1, measured 0
        twins = [o for o in so if (o["color"], o["shape"]) == (m[1], m[2])]
        assert len(twins) == 1  # the instruction names one object
    elif kind == "add_object":
        assert [o for k, o in enumerate(to) if k != j] == so and (m[1], m[2]) == (to[j]["color"], to[j]["shape"])
        inside = _object_pixels(tgt_meta, j, a.shape)
        assert (b[inside] == np.array(to[j]["rgb"])).all() and (a[inside] == bg).all()
        x0, y0, x1, y1 = to[j]["bbox"]
        for o in so:  # the new shape overlaps no other
            ox0, oy0, ox1, oy1 = o["bbox"]
            assert x1 < ox0 or ox1 < x0 or y1 < oy0 or oy1 < y0
    else:
        assert [o for k, o in enumerate(so) if k != j] == to and (m[1], m[2]) == (so[j]["color"], so[j]["shape"])
        assert sum((o["color"], o["shape"]) == (m[1], m[2]) for o in so) == 1
        inside = _object_pixels(src_meta, j, a.shape)
        assert (b[inside] == bg).all()
    return kind


@pytest.mark.parametrize("size,layout", [((128, 64), "random"), ((128, 64), "rows"), ((256, 128), "random")])
def test_scene_pairs_change_one_object_only(size, layout, quad_mask):
    types = {}
    for i in range(30):
        s = make_sample(RunConfig(kind="scenes", n=1, out=".", width=size[0], height=size[1], seed=5,
                                  edit_pairs=True, layout=layout), i)
        kind = _check_scene_pair(s.image, s.meta, s.edit.image, s.edit.meta, s.edit.meta["edit"], quad_mask)
        types[kind] = types.get(kind, 0) + 1
    # measured at 600 pairs: add 61%, recolour 25%, removal 14% (single and counted identical objects cannot be
    # removed by name; counted identical ones not recoloured either)
    assert set(types) == set(SCENE_FORMS), types


def test_scene_training_targets_are_never_heldout():
    from qimage.synth import scenes

    # a held-out combination is held out under any task name: the same objects make the same description
    pair = [scenes.Obj("star", "orange", 10, 10, 5, 0), scenes.Obj("circle", "purple", 40, 10, 5, 0)]
    assert "counting_two: 1 orange star + 1 purple circle" in scenes.heldout() and scenes.heldout_target(pair, None)
    for i in range(300):
        e = make_sample(RunConfig(kind="scenes", n=1, out=".", width=128, height=64, seed=8, edit_pairs=True,
                                  layout="rows" if i % 2 else "random"), i).edit
        objs = [scenes.Obj(o["shape"], o["color"], *o["center"], o["radius"], o["rotation"]) for o in e.meta["objects"]]
        assert not scenes.heldout_target(objs, e.meta["relation"]), e.caption


def test_scene_eval_pairs_are_heldout_targets_balanced_and_aligned(quad_mask):
    from qimage.synth import scenes

    pairs = scenes.eval_edit_pairs(12, seed=2)
    assert [p["meta"]["type"] for p in pairs] == list(scenes.EDIT_TYPES) * 4
    for p in pairs:
        m = p["meta"]
        assert m["key"] in scenes.heldout() and p["source"].size == (128, 64)
        t = m["target_meta"]
        objs = [scenes.Obj(o["shape"], o["color"], *o["center"], o["radius"], o["rotation"]) for o in t["objects"]]
        assert scenes.combo_key(m["key"].split(":")[0], objs, t["relation"]) == m["key"]
        _check_scene_pair(p["source"], m["source_meta"], p["target"], t, m, quad_mask)
        assert p["instruction"] == m["instruction"]


def test_cli_writes_scene_edit_pairs(tmp_path):
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "-m", "qimage", "synth", "scenes", "-n", "6", "--edit-pairs", "-o", str(out),
                        "--size", "128x64", "--layout", "rows"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for e in json.loads((out / "manifest.json").read_text())["samples"]:
        src = json.loads((out / e["meta"]).read_text())
        assert SCENE_FORMS[src["edit"]["type"]].fullmatch(src["edit"]["instruction"])
        assert json.loads((out / "edits" / e["meta"]).read_text())["edit"]["region"]


# --- scenes that admit no edit ---------------------------------------------------------------------------------------
# At --scale 2 a counting scene of identical objects may leave no room for another and can be neither recoloured nor
# removed by name: the command below stopped after 14 samples with "internal error: scenes: no edit for counting:
# 3 blue triangle". Such a scene is re-planned from the sample's own generator; one that never takes an edit would be
# written without a pair and counted in the manifest.
FAILING = ["scenes", "-n", "200", "--edit-pairs", "--size", "128x64", "--scale", "2", "--layout", "rows", "--seed", "7"]


def test_scale_2_rows_command_succeeds_with_pairs_for_nearly_all_samples(tmp_path, quad_mask):
    from PIL import Image

    from qimage.synth import scenes
    from qimage.synth.runner import context
    from qimage.synth.sample import rng_for

    outs = {}
    for workers in ("1", "2"):
        out = outs[workers] = tmp_path / f"w{workers}"
        r = subprocess.run([sys.executable, "-m", "qimage", "synth", *FAILING, "-o", str(out), "--workers", workers],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert _digest(outs["1"]) == _digest(outs["2"])  # re-planning keeps the bytes independent of --workers
    out = outs["1"]
    manifest = json.loads((out / "manifest.json").read_text())
    paired = [e for e in manifest["samples"] if "edit" in e]
    assert manifest["count"] == 200 and (manifest["pairs"], manifest["unpaired"]) == (len(paired), 200 - len(paired))
    # measured: 200 of 200 pairs (16 of the 200 first plans took no edit and were re-planned once or more)
    assert len(paired) >= 0.9 * 200, manifest["unpaired"]
    for e in paired:
        src, tgt = json.loads((out / e["meta"]).read_text()), json.loads((out / "edits" / e["meta"]).read_text())
        _check_scene_pair(Image.open(out / e["image"]), src, Image.open(out / e["edit"]), tgt, tgt["edit"], quad_mask)
    # the re-planning path ran: some first plans of this run take no edit
    ctx = context(RunConfig(kind="scenes", n=1, out=".", width=128, height=64, scale=2.0, layout="rows"))
    stuck = sum(scenes._draw_edit(scenes.plan(ctx, rng_for(7, i), "en"), rng_for(7, i, "edit")) is None
                for i in range(200))
    assert stuck >= 5, stuck


@pytest.mark.parametrize("size,layout", [((128, 64), "random"), ((256, 256), "rows"), ((256, 256), "random")])
def test_scale_2_pairs_never_fail_and_keep_the_contract(size, layout, quad_mask):
    # measured at n=300 (seeds 7 and 8) for both layouts at 128x64 and 256x256, scale 1 and 2: 300 of 300 pairs each
    for i in range(40):
        s = make_sample(RunConfig(kind="scenes", n=1, out=".", width=size[0], height=size[1], seed=7, scale=2.0,
                                  edit_pairs=True, layout=layout), i)
        assert s.edit is not None
        _check_scene_pair(s.image, s.meta, s.edit.image, s.edit.meta, s.edit.meta["edit"], quad_mask)


def test_scene_without_any_edit_is_written_unpaired_and_counted(tmp_path, monkeypatch):
    from qimage.synth import scenes

    common = dict(kind="scenes", n=4, width=128, height=64, seed=3, workers=1)
    run(RunConfig(out=str(tmp_path / "plain"), **common), progress=False)
    monkeypatch.setattr(scenes, "_draw_edit", lambda p, rng: None)  # no scene takes an edit, however re-planned
    manifest = run(RunConfig(out=str(tmp_path / "e"), edit_pairs=True, **common), progress=False)
    assert (manifest["count"], manifest["pairs"], manifest["unpaired"]) == (4, 0, 4)
    assert all("edit" not in e for e in manifest["samples"]) and not list((tmp_path / "e" / "edits").iterdir())
    for e in manifest["samples"]:  # written as its first plan: the same bytes as without --edit-pairs
        meta = json.loads((tmp_path / "e" / e["meta"]).read_text())
        assert "edit" not in meta
        for key in ("image", "caption", "meta"):
            assert (tmp_path / "e" / e[key]).read_bytes() == (tmp_path / "plain" / e[key]).read_bytes()


def test_pairs_all_draws_every_legible_pair_and_still_no_heldout_edit():
    """`--pairs all` (the edit toy's recipe): every pair of the edit colours with contrast >= 3, among them every
    (background, text) a held-out recolour leaves behind; the held-out edits stay out of training all the same."""
    from qimage.synth import colors
    from qimage.synth.runner import parse_pairs

    pairs = parse_pairs("all")
    assert len(pairs) == 100 and set(words.PAIRS) < set(pairs)
    assert all(colors.contrast(colors.BY_NAME[b].rgb, colors.BY_NAME[f].rgb) >= 3 for b, f in pairs)
    for p in words.eval_edit_pairs(12, seed=0):
        tm = p["meta"]["target_meta"]
        assert (tm["background"]["name"], tm["color"]["name"]) in pairs
    drawn = set()
    for i in range(300):
        info = make_sample(_words_cfg(128, 64, seed=4, pairs="all"), i).edit.meta["edit"]
        assert not words.heldout_edit(info["type"], info["background"], info["color"], info["new"]), info
        drawn.add((info["background"], info["color"]))
    assert len(drawn) > 60  # far beyond the 12 default pairs
