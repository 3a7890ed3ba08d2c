"""Dynamic layout: largest fitting size, word/character wrapping, never past the box."""
import pytest

from qimage.synth.fonts import FontLibrary
from qimage.synth.layout import fit, units, wrap


@pytest.fixture(scope="module")
def lib():
    return FontLibrary.create()


def _face(lib, name):
    return next(f for f in lib.faces if f.name == name)


def test_units_split_latin_at_words_and_chinese_at_characters():
    assert [u for u in units("Hello big world") if not u.isspace()] == ["Hello", "big", "world"]
    # closing punctuation stays with the character before it (no line may start with "，")
    assert units("你好，世界") == ["你", "好，", "世", "界"]
    assert [u for u in units("Qwen 图像 model") if not u.isspace()] == ["Qwen", "图", "像", "model"]


def test_wrap_never_splits_a_word():
    lines = wrap("alpha beta gamma delta", len, 11)
    assert lines == ["alpha beta", "gamma delta"]
    assert wrap("incomprehensibilities", len, 10) is None  # a word wider than the box cannot fit


@pytest.mark.parametrize("text,family", [("The quick brown fox jumps over the lazy dog " * 3, "Arimo"),
                                         ("文字渲染需要精确的布局和字形覆盖检查" * 2, "Noto Sans CJK SC")])
def test_fit_finds_the_largest_size_and_stays_inside(lib, text, family):
    face = _face(lib, family)
    box = (20, 30, 300, 200)
    block = fit(lib, face, text, box, min_size=8, max_size=120)
    assert block is not None and len(block.lines) > 1
    for ln in block.lines:
        x0, y0, x1, y1 = ln.ink
        assert x0 >= 20 and y0 >= 30 and x1 <= 300 and y1 <= 200
    assert "".join(ln.text for ln in block.lines).replace(" ", "") == text.strip().replace(" ", "")
    bigger = fit(lib, face, text, box, min_size=block.size + 1, max_size=block.size + 1)
    assert bigger is None  # one pixel larger no longer fits


def test_fit_returns_none_when_text_cannot_fit(lib):
    face = _face(lib, "Arimo")
    assert fit(lib, face, "word " * 200, (0, 0, 100, 40), min_size=14, max_size=40) is None
    assert fit(lib, face, "two lines needed here", (0, 0, 120, 400), min_size=14, max_size=40, max_lines=1) is None
