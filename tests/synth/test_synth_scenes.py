"""Scenes: the metadata is enough for a rule-based checker, and it agrees with the pixels and the caption."""
import numpy as np
import pytest

from qimage.synth import colors, scenes
from qimage.synth.sample import rng_for


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_objects_match_pixels_and_caption(make_ctx, lang):
    ctx = make_ctx(256, 256)
    tasks = set()
    for i in range(30):
        s = scenes.make(ctx, rng_for(4, i), lang)
        m, img = s.meta, np.asarray(s.image).astype(int)
        tasks.add(m["task"])
        assert m["lines"] == [] and m["lang"] == "none" and m["caption_lang"] == lang
        assert sum(c["count"] for c in m["counts"]) == len(m["objects"])
        for o in m["objects"]:
            x0, y0, x1, y1 = o["bbox"]
            assert 0 <= x0 < x1 <= 255 and 0 <= y0 < y1 <= 255
            cx, cy = (int(round(v)) for v in o["center"])
            assert np.abs(img[cy, cx] - np.array(o["rgb"])).max() <= 2  # the centre pixel has the object colour
            assert colors.distance(o["rgb"], m["background"]["rgb"]) >= 110
        for a, b in zip(m["objects"], m["objects"][1:]):
            ax0, ay0, ax1, ay1 = a["bbox"]
            bx0, by0, bx1, by1 = b["bbox"]
            assert ax1 < bx0 or bx1 < ax0 or ay1 < by0 or by1 < ay0  # no overlap
        for c in m["counts"]:
            name = colors.BY_NAME[c["color"]].zh if lang == "zh" else c["color"]
            assert name in s.caption
            if lang == "en" and c["count"] > 1:
                assert scenes.NUM_EN[c["count"]] in s.caption
        if m["relation"]:
            a, b = m["objects"][m["relation"]["subject"]], m["objects"][m["relation"]["object"]]
            dx, dy = a["center"][0] - b["center"][0], a["center"][1] - b["center"][1]
            rel = m["relation"]["relation"]
            assert {"left of": dx < 0, "right of": dx > 0, "above": dy < 0, "below": dy > 0}[rel]
            assert abs(dx if "of" in rel else dy) > abs(dy if "of" in rel else dx)
            if lang == "en":
                assert rel in s.caption
    assert tasks >= {"single_object", "two_object", "counting", "position"}


def test_opencv_recovers_counts_from_pixels(make_ctx):
    """What a later checker will do: segment each named colour and count blobs; it must agree with `counts`."""
    import cv2

    ctx = make_ctx(256, 256)
    checked = 0
    for i in range(20):
        s = scenes.make(ctx, rng_for(9, i), "en")
        img = np.asarray(s.image).astype(int)
        for c in s.meta["counts"]:
            rgb = np.array(colors.BY_NAME[c["color"]].rgb)
            mask = (np.abs(img - rgb).max(-1) <= 40).astype(np.uint8)
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
            blobs = sum(1 for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= 30)
            same_colour = sum(x["count"] for x in s.meta["counts"] if x["color"] == c["color"])
            assert blobs == same_colour, (s.caption, c, blobs)
            checked += 1
    assert checked >= 20
