"""Templates as data: at least 8, every rule exists, text is legible on its surface, nothing overflows."""
import numpy as np
import pytest

from qimage.synth import colors, fillers
from qimage.synth import complex as complex_
from qimage.synth.sample import rng_for


def test_at_least_eight_templates_with_complete_boxes():
    ts = complex_.templates()
    assert len(ts) >= 8
    for t in ts.values():
        assert t["doc"]["en"] and t["doc"]["zh"]
        for b in t["boxes"]:
            assert b["content"] in fillers.RULES, (t["name"], b["id"])
            assert b["placeholder"]["en"] and b["placeholder"]["zh"]
            assert b["align"] in ("left", "center", "right") and b["valign"] in ("top", "middle", "bottom")
            x0, y0, x1, y1 = b["box"]
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
            assert 0 < b["size"][0] <= b["size"][1]


def test_every_text_role_is_legible_over_its_surface_in_every_theme():
    for t in complex_.templates().values():
        for b in t["boxes"]:
            for th in complex_.themes():
                c = colors.contrast(th[b["color"]].rgb, th[b["over"]].rgb)
                assert c >= 4.5, (t["name"], b["id"], th["name"], round(c, 2))


@pytest.mark.parametrize("lang", ["en", "zh", "mix"])
def test_no_text_leaves_its_box(make_ctx, lang):
    ctx = make_ctx(256, 256)
    seen = set()
    for i in range(24):
        s = complex_.make(ctx, rng_for(31, i), lang)
        seen.add(s.meta["template"])
        boxes = {b["id"]: b["box"] for b in s.meta["boxes"]}
        filled = [b for b in s.meta["boxes"] if b["text"]]
        assert len(filled) >= 0.75 * len(s.meta["boxes"])
        for ln in s.meta["lines"]:
            q = np.asarray(ln["quad"])
            x0, y0, x1, y1 = boxes[ln["box"]]
            # quads carry a 1 px pad around the ink
            assert q[:, 0].min() >= x0 - 1.01 and q[:, 0].max() <= x1 + 1.01, (s.meta["template"], ln)
            assert q[:, 1].min() >= y0 - 1.01 and q[:, 1].max() <= y1 + 1.01, (s.meta["template"], ln)
    assert len(seen) >= 6
