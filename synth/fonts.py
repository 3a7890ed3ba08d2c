"""Font faces from PyPI font packages (plus a user folder) and glyph coverage.

Method: a *face* is a font file, a collection index and, for variable fonts, a weight. The packaged faces are
Noto Sans CJK SC (`manimgx-fonts-cjk`, the only face that renders Chinese) and Latin families from `fontpkg-*`
packages. `--fonts DIR` adds every .ttf/.otf/.ttc found there.

Coverage is decided per character in two steps: the character must be in the face's cmap (read with fontTools),
and, unless it is whitespace, rendering it must produce ink (some fonts map characters to empty glyphs). A text is
drawn only with a face covering every one of its characters, so tofu boxes never reach an image: callers either
pick another face or drop the text.
"""
from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from PIL import ImageFont

from qimage.errors import UserError

FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")


@dataclass(frozen=True)
class Face:
    """One drawable face. `style` is sans / serif / display / hand / mono; `weight` is None for static fonts."""

    path: str
    name: str
    style: str
    index: int = 0
    weight: int | None = None

    @property
    def label(self) -> str:
        return self.name if self.weight is None else f"{self.name} {self.weight}"


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


# (module, file glob, family name, style, weights to instantiate); weights stay inside each file's wght range.
_PACKAGED = [
    ("manimgx_fonts_cjk", "NotoSansCJK-VF.otf.ttc", "Noto Sans CJK SC", "sans", (400, 500, 700, 900)),
    ("fontpkg_arimo", "files/Arimo[[]wght[]].ttf", "Arimo", "sans", (400, 700)),
    ("fontpkg_arimo", "files/Arimo-Italic[[]wght[]].ttf", "Arimo Italic", "sans", (400,)),
    ("fontpkg_bitter", "files/Bitter[[]wght[]].ttf", "Bitter", "serif", (400, 700)),
    ("fontpkg_noto_serif", "files/NotoSerif[[]wdth,wght[]].ttf", "Noto Serif", "serif", (400, 700)),
    ("fontpkg_anton", "files/Anton-Regular.ttf", "Anton", "display", (None,)),
    ("fontpkg_caveat", "files/Caveat[[]wght[]].ttf", "Caveat", "hand", (500, 700)),
]
# Noto Sans CJK ships JP, KR, SC, TC, HK in one collection; index 2 is Simplified Chinese glyph forms.
_CJK_INDEX = 2


def packaged_faces() -> list[Face]:
    faces = []
    for module, pattern, name, style, weights in _PACKAGED:
        root = _package_dir(module)
        if root is None:
            continue
        for path in sorted(root.glob(pattern)):
            index = _CJK_INDEX if path.suffix == ".ttc" else 0
            faces += [Face(str(path), name, style, index, w) for w in weights]
    return faces


def user_faces(folder: str | Path) -> list[Face]:
    """Every loadable font file under `folder`; a folder with none is a user error."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"--fonts {folder}: not a directory")
    faces = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in FONT_SUFFIXES):
        try:
            font = ImageFont.truetype(str(path), 24)
            family, _ = font.getname()
        except OSError:
            continue
        faces.append(Face(str(path), family or path.stem, "user", 0, None))
    if not faces:
        raise UserError(f"--fonts {folder}: no loadable .ttf/.otf/.ttc font found")
    return faces


@dataclass
class FontLibrary:
    """The faces available to one process, with cached sized fonts and cached coverage."""

    faces: list[Face]
    _cover: dict = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, fonts_dir: str | None = None, only: str | None = None) -> "FontLibrary":
        """Every packaged face plus `fonts_dir`'s; `only` (comma-separated labels, any case) keeps just those."""
        faces = packaged_faces() + (user_faces(fonts_dir) if fonts_dir else [])
        if not faces:
            raise UserError("no fonts: install the font packages (pip install -e .) or pass --fonts DIR")
        if only is not None:
            want = [w.strip() for w in str(only).split(",") if w.strip()]
            by_label = {f.label.lower(): f for f in faces}
            unknown = [w for w in want if w.lower() not in by_label]
            if unknown or not want:
                problem = f"unknown face {unknown[0]!r}" if unknown else "names no face"
                raise UserError(f"--faces {only!r}: {problem}; the faces are: {', '.join(f.label for f in faces)}")
            faces = [by_label[w.lower()] for w in dict.fromkeys(want)]
        return cls(faces)

    def font(self, face: Face, size: int) -> ImageFont.FreeTypeFont:
        return _load(face, int(size))

    def codepoints(self, face: Face) -> frozenset[int]:
        return _cmap(face.path, face.index)

    def covers(self, face: Face, text: str) -> bool:
        """True when every character of `text` has a real, inked glyph in `face`."""
        cmap = self.codepoints(face)
        for ch in set(text):
            if ch.isspace():
                continue
            if ord(ch) not in cmap or not _has_ink(face, ch):
                return False
        return True

    def covering(self, text: str, styles: tuple[str, ...] | None = None) -> list[Face]:
        return [f for f in self.faces if (styles is None or f.style in styles or f.style == "user") and self.covers(f, text)]

    def choose(self, rng, text: str, styles: tuple[str, ...] | None = None) -> Face | None:
        """A random face covering all of `text` (preferring `styles`), or None when no face can draw it."""
        cands = self.covering(text, styles)
        if not cands and styles is not None:
            cands = self.covering(text, None)
        return cands[int(rng.integers(len(cands)))] if cands else None


@functools.lru_cache(maxsize=512)
def _load(face: Face, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: Latin and Han need no shaping, and it measures about 4x faster than raqm.
    font = ImageFont.truetype(face.path, size, index=face.index, layout_engine=ImageFont.Layout.BASIC)
    if face.weight is not None:
        try:
            axes = font.get_variation_axes()
        except OSError:  # a static font: the weight is only a label
            return font
        values = [face.weight if a["name"] in (b"Weight", "Weight") else a["default"] for a in axes]
        font.set_variation_by_axes(values)
    return font


@functools.lru_cache(maxsize=64)
def _cmap(path: str, index: int) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    kwargs = {"fontNumber": index} if path.lower().endswith((".ttc", ".otc")) else {}
    with TTFont(path, lazy=True, **kwargs) as tt:
        return frozenset(tt.getBestCmap() or {})


@functools.lru_cache(maxsize=200_000)
def _has_ink(face: Face, ch: str) -> bool:
    font = _load(face, 32)
    box = font.getbbox(ch)
    if box[2] <= box[0] or box[3] <= box[1]:
        return False
    return font.getmask(ch).getbbox() is not None
