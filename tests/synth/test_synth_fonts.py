"""Fonts from PyPI packages, user fonts, and glyph coverage: no tofu ever reaches an image."""
import shutil

import numpy as np
import pytest

from qimage.errors import UserError
from qimage.synth import corpus, pure
from qimage.synth.fonts import FontLibrary, user_faces
from qimage.synth.sample import rng_for


@pytest.fixture(scope="module")
def lib():
    return FontLibrary.create()


def test_packaged_faces_include_cjk_and_several_latin_families(lib):
    names = {f.name for f in lib.faces}
    assert "Noto Sans CJK SC" in names
    assert len({f.name for f in lib.faces if f.style in ("sans", "serif", "display", "hand")} - {"Noto Sans CJK SC"}) >= 4


def test_coverage_by_cmap_and_ink(lib):
    arimo = next(f for f in lib.faces if f.name == "Arimo")
    cjk = next(f for f in lib.faces if f.name == "Noto Sans CJK SC")
    assert lib.covers(arimo, "Hello, World!") and not lib.covers(arimo, "你好")
    assert lib.covers(cjk, "你好，世界") and lib.covers(cjk, "Hello")
    runic = "ᚠᚢᚦ"  # in no packaged font
    assert not any(lib.covers(f, runic) for f in lib.faces)
    assert lib.choose(np.random.default_rng(0), runic) is None
    assert lib.choose(np.random.default_rng(0), "汉字").name == "Noto Sans CJK SC"


def test_pure_drops_texts_no_face_can_draw(make_ctx, monkeypatch):
    """The first texts drawn contain a character no font has; the sample must use a later, drawable text."""
    texts = iter(["tofu ᚠ here", "还有 ᚢ 字", "drawable text"])
    monkeypatch.setattr(corpus, "text", lambda rng, lang, mode: next(texts))
    s = pure.make(make_ctx(256, 256), rng_for(0, 0), "en")
    assert [ln["text"] for ln in s.meta["lines"]] and " ".join(ln["text"] for ln in s.meta["lines"]) == "drawable text"


def test_user_fonts_folder(tmp_path, lib):
    src = next(f for f in lib.faces if f.name == "Anton").path
    shutil.copy(src, tmp_path / "MyFont.ttf")
    faces = user_faces(tmp_path)
    assert len(faces) == 1 and faces[0].style == "user"
    assert any(f.style == "user" for f in FontLibrary.create(str(tmp_path)).faces)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "broken.ttf").write_bytes(b"not a font")
    with pytest.raises(UserError, match=r"no loadable \.ttf/\.otf/\.ttc font found"):
        user_faces(tmp_path / "empty")
