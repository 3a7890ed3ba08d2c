"""A real OCR (rapidocr, offline) reads back what the metadata says, where the quads say, for every text
synthesiser in English and Chinese. The negative checks show the score falls when the text or the quads are wrong,
so a renderer drawing tofu, wrong glyphs or misplaced text would fail the threshold."""

import numpy as np
import pytest

from qimage.synth import readback
from qimage.synth.runner import RunConfig, make_sample

THRESHOLD = 0.9  # measured read-back is 0.99-1.00 on 512 px samples (docs/synth.md)
N = 3


@pytest.fixture(scope="module")
def read():
    cache = {}

    def _read(kind, lang):
        if (kind, lang) not in cache:
            cfg = RunConfig(kind=kind, n=N, out=".", lang=lang, width=512, height=512, seed=11)
            out = []
            for i in range(N):
                s = make_sample(cfg, i)
                out.append((s.meta, readback.ocr(s.image)))
            cache[(kind, lang)] = out
        return cache[(kind, lang)]
    return _read


def _rate(pairs):
    m = t = 0
    for meta, found in pairs:
        a, b = readback.score(meta, found)
        m, t = m + a, t + b
    return m / max(t, 1), t


@pytest.mark.parametrize("kind", ["pure", "compose", "complex"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_ocr_reads_back_the_metadata(read, kind, lang):
    rate, chars = _rate(read(kind, lang))
    assert chars >= 10
    assert rate >= THRESHOLD, f"{kind}/{lang}: read-back {rate:.3f} < {THRESHOLD}"


@pytest.mark.parametrize("kind", ["pure", "complex"])
def test_score_falls_for_wrong_text_or_wrong_quads(read, kind):
    pairs = read(kind, "en") + read(kind, "zh")
    wrong_text = [({**m, "lines": [{**ln, "text": ln["text"][::-1] + "x"} for ln in m["lines"]]}, f) for m, f in pairs]
    shifted = [({**m, "lines": [{**ln, "quad": (np.asarray(ln["quad"]) + [0, 140]).tolist()} for ln in m["lines"]]}, f)
               for m, f in pairs]
    assert _rate(wrong_text)[0] < 0.5
    assert _rate(shifted)[0] < 0.5


def test_normalize_and_distance():
    assert readback.normalize("Ｈｅｌｌｏ， World!") == "helloworld"
    assert readback.normalize("你好，世界。") == "你好世界"
    assert readback.levenshtein("kitten", "sitting") == 3
