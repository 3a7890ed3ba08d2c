"""words: the toy's curriculum data. Verbatim eval-format captions, no held-out word ever, legible to a real OCR."""
import re

import pytest

from qimage.errors import UserError
from qimage.synth import readback, words
from qimage.synth.runner import RunConfig, make_sample, validate

CAPTION = re.compile(r'On a ([a-z -]+) background, displaying ([a-z -]+) text "([A-Z]{4})"\.')


def cfg(**kw):
    return RunConfig(**{"kind": "words", "n": 1, "out": ".", "width": 128, "height": 64, "seed": 5, **kw})


def test_captions_are_the_eval_template_and_match_the_metadata():
    for i in range(12):
        s = make_sample(cfg(), i)
        m = CAPTION.fullmatch(s.caption)
        assert m, s.caption
        assert (m[1], m[2]) == (s.meta["background"]["name"], s.meta["color"]["name"])
        assert [ln["text"] for ln in s.meta["lines"]] == [m[3]]
        assert s.image.size == (128, 64)


def test_held_out_words_are_never_drawn_and_match_the_eval_set():
    from qimage.train.eval import HELDOUT_WORDS

    assert set(HELDOUT_WORDS) == set(words.heldout()) and len(words.heldout()) == 48
    vocab = set(words.vocabulary())
    assert len(vocab) > 500 and not vocab & words.heldout()
    assert all(len(w) == 4 and w.isalpha() and w.isupper() for w in vocab)


def test_faces_restricts_the_drawing_to_the_named_faces():
    fonts = {make_sample(cfg(), i).meta["font"] for i in range(40)}
    assert len(fonts) > 2  # the default draws with every sans face
    assert {make_sample(cfg(faces="arimo 700"), i).meta["font"] for i in range(12)} == {"Arimo 700"}
    two = {make_sample(cfg(faces="Arimo 700, Arimo 400"), i).meta["font"] for i in range(24)}
    assert two == {"Arimo 700", "Arimo 400"}
    with pytest.raises(UserError, match="unknown face 'Comic'.*Arimo 700"):
        make_sample(cfg(faces="Arimo 700,Comic"), 0)


def test_pairs_choose_the_colours_and_the_caption_names_them():
    import numpy as np

    for i in range(8):
        s = make_sample(cfg(pairs="white/black, navy blue/yellow"), i)
        bg, fg = s.meta["background"]["name"], s.meta["color"]["name"]
        assert (bg, fg) in {("white", "black"), ("navy blue", "yellow")}
        assert CAPTION.fullmatch(s.caption).groups()[:2] == (bg, fg)
        px = np.asarray(s.image).reshape(-1, 3)
        assert tuple(px[0]) == tuple(s.meta["background"]["rgb"])  # the corner is background
    assert {make_sample(cfg(pairs="white/black"), i).meta["color"]["name"] for i in range(6)} == {"black"}


def test_same_seed_same_bytes():
    a, b = make_sample(cfg(), 3), make_sample(cfg(), 3)
    assert a.image.tobytes() == b.image.tobytes() and a.caption == b.caption
    assert make_sample(cfg(seed=6), 3).image.tobytes() != a.image.tobytes()


def test_ocr_reads_the_words_back():
    samples = [make_sample(cfg(width=256, height=128), i) for i in range(4)]
    matched = total = 0
    for s in samples:
        a, b = readback.score(s.meta, readback.ocr(s.image))
        matched, total = matched + a, total + b
    assert total == 16 and matched / total >= 0.9


def test_unsupported_options_are_refused():
    with pytest.raises(UserError, match="words"):
        validate(cfg(lang="zh"))
    validate(cfg(edit_pairs=True, out="."))  # edit pairs are the toy edit model's data (test_synth_edit_pairs.py)
