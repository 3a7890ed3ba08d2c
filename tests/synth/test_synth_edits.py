"""Edit pairs: the target differs from the source only inside the instructed region, and does differ."""
import numpy as np
import pytest

from qimage.synth.runner import FULL_KINDS, RunConfig, make_sample


@pytest.mark.parametrize("kind", FULL_KINDS)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_edit_pairs_differ_only_where_instructed(kind, lang, quad_mask):
    cfg = RunConfig(kind=kind, n=6, out=".", lang=lang, width=224, height=224, seed=13, edit_pairs=True)
    types = set()
    for i in range(6):
        s = make_sample(cfg, i)
        e = s.edit
        assert e is not None and e.meta["edit"]["instruction"].strip() and e.caption.strip()
        types.add(e.meta["edit"]["type"])
        a, b = np.asarray(s.image).astype(int), np.asarray(e.image).astype(int)
        diff = np.abs(a - b).max(-1) > 0
        assert diff.sum() > 10, "the target must actually change"
        region = quad_mask(e.meta["edit"]["region"], a.shape, grow=2)
        assert not (diff & ~region).any(), f"{kind} sample {i}: pixels changed outside the instructed region"
        if e.meta["edit"]["type"] == "replace_text":
            assert e.meta["edit"]["new"] in e.meta["edit"]["instruction"]
            assert e.meta["edit"]["new"] != e.meta["edit"]["old"]
    if kind != "scenes":
        assert types == {"replace_text", "recolor"}  # both edit kinds occur in six samples
