"""Every filter on one image that should pass it and one that should fail it, through the recipe's defaults."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data as skd
from PIL import Image

from qimage.datapipe import demo
from qimage.datapipe.filters import load_all
from qimage.datapipe.recipe import load as load_recipe
from qimage.datapipe.sample import DecodeError, Sample
from datapipe_helpers import encode, rgb, sample

REGISTRY = load_all()
DEFAULTS = load_recipe()["filters"]
ASTRO = skd.astronaut()
COFFEE = skd.coffee()


def make(name: str, **over):
    f = REGISTRY[name](**{**DEFAULTS[name], "enabled": True, **over})
    assert f.setup() is None
    return f


def exif_jpeg(arr, orientation):
    ex = Image.Exif()
    ex[0x0112] = orientation
    return encode(arr, "JPEG", quality=92, exif=ex.tobytes())


def text_boxes(s, heights, width_frac=0.5):
    """Give a sample OCR boxes directly (lines of the given pixel heights), as stage 4 would."""
    boxes = []
    for i, h in enumerate(heights):
        y, w = 10 + i * (h + 4), s.width * width_frac
        boxes.append((np.array([[10, y], [10 + w, y], [10 + w, y + h], [10, y + h]], float), "text", 1.0))
    s.ocr = boxes
    return s


def mosaic_face(a):
    m = a.copy()
    x, y, w, h = 160, 60, 114, 114
    m[y:y + h, x:x + w] = cv2.resize(cv2.resize(m[y:y + h, x:x + w], (w // 12, h // 12), interpolation=cv2.INTER_AREA),
                                     (w, h), interpolation=cv2.INTER_NEAREST)
    return m


def with_qr(a):
    m = a.copy()
    m[40:240, 40:240] = rgb(demo.qr("https://example.com", 200))
    return m


def with_barcode(a):
    m = a.copy()
    bar = rgb(demo.ean13("590123412345"))
    m[100:100 + bar.shape[0], 100:100 + bar.shape[1]] = bar
    return m


CASES = {
    # name: (passing sample, failing sample)
    "broken_file": (lambda: sample(ASTRO), lambda: sample(encode(ASTRO, "JPEG")[:5000])),
    "file_size": (lambda: sample(ASTRO), lambda: sample(np.full((300, 300, 3), 128, np.uint8))),
    "resolution": (lambda: sample(ASTRO), lambda: sample(ASTRO[:200, :300])),
    "rotation": (lambda: sample(exif_jpeg(ASTRO, 1)), lambda: sample(exif_jpeg(ASTRO, 6))),
    "clarity": (lambda: sample(ASTRO), lambda: sample(cv2.GaussianBlur(ASTRO, (0, 0), 3))),
    "luma": (lambda: sample(ASTRO), lambda: sample((ASTRO * 0.08).astype(np.uint8))),
    "saturation": (lambda: sample(ASTRO), lambda: sample(np.dstack([np.full((300, 300), v, np.uint8) for v in (255, 0, 40)]))),
    "entropy": (lambda: sample(ASTRO), lambda: sample(((np.indices((300, 300)) // 30).sum(0) % 2 * 255).astype(np.uint8))),
    "texture": (lambda: sample(ASTRO), lambda: sample(rgb(skd.gravel()))),
    "caption_length": (lambda: sample(ASTRO, caption="An astronaut."), lambda: sample(ASTRO, caption="word " * 400)),
    "invalid_caption": (lambda: sample(ASTRO, caption="An astronaut with a helmet."),
                        lambda: sample(ASTRO, caption="Sorry, I cannot help with that image.")),
    "intensive_text": (lambda: text_boxes(sample(ASTRO), [30]), lambda: text_boxes(sample(ASTRO), [40] * 11, 0.9)),
    "small_character": (lambda: text_boxes(sample(ASTRO), [30, 30]), lambda: text_boxes(sample(ASTRO), [6, 6, 6])),
    "exposure": (lambda: sample(ASTRO), lambda: sample(np.clip(ASTRO.astype(int) * 2 + 60, 0, 255).astype(np.uint8))),
    "compression": (lambda: sample(encode(COFFEE, "JPEG", quality=95)), lambda: sample(encode(COFFEE, "JPEG", quality=3))),
    "hires": (lambda: sample(cv2.resize(ASTRO, (700, 700))), lambda: sample(ASTRO)),
    "qr_code": (lambda: sample(ASTRO), lambda: sample(with_qr(ASTRO))),
    "barcode": (lambda: sample(COFFEE), lambda: sample(with_barcode(COFFEE))),
    "face_mosaic": (lambda: sample(ASTRO), lambda: sample(mosaic_face(ASTRO))),
}
# the global ones (duplicate, quality_quota) and the four model filters are tested in their own files
ELSEWHERE = {"edit_pair", "duplicate", "quality_quota", "nsfw", "watermark", "aesthetic", "clip_similarity"}


def test_every_registered_filter_has_a_pass_and_a_fail_case():
    assert set(CASES) | ELSEWHERE == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(CASES))
def test_filter_passes_good_and_rejects_bad(name):
    good, bad = CASES[name]
    f = make(name)
    v_good, v_bad = f(good()), f(bad())
    assert v_good.keep, f"{name} rejected the good sample: {v_good.reason}"
    assert not v_bad.keep, f"{name} kept the bad sample (score {v_bad.score})"
    assert v_bad.reason


def test_thresholds_come_from_the_recipe():
    s = sample(cv2.GaussianBlur(ASTRO, (0, 0), 3))
    assert not make("clarity")(s).keep
    assert make("clarity", min=1.0)(s).keep


def test_broken_file_reasons_name_the_problem():
    f = make("broken_file")
    assert "empty" in f(sample(b"")).reason
    assert "not an image" in f(sample(b"hello world, not pixels")).reason
    assert "decompression bomb" in f(sample(demo.bomb_png())).reason
    assert "decode" in f(sample(encode(ASTRO, "JPEG")[:8000])).reason
    # a lone .json (a synth folder's manifest.json) is accounted for as what it is, not as a corrupt picture
    manifest = Sample(Path("."), "words/manifest.json", b'{"samples": []}', None, None, 64_000_000)
    with pytest.raises(DecodeError, match="a .json with no image of the same name beside it"):
        manifest.decode()


@pytest.mark.parametrize("kind", ["cmyk", "grey16", "float_tiff", "bilevel", "palette", "palette_alpha", "rgba", "la",
                                  "gif_animated", "webp_animated", "bmp", "tiff"])
def test_odd_formats_decode_to_rgb8(kind):
    im = Image.fromarray(COFFEE)
    data = {
        "cmyk": lambda: _save(im.convert("CMYK"), "JPEG"),
        "grey16": lambda: encode((rgb(skd.camera())[..., 0].astype(np.uint16) * 257)),
        "float_tiff": lambda: _save(Image.fromarray((skd.camera() / 255.0).astype(np.float32)), "TIFF"),
        "bilevel": lambda: _save(im.convert("1"), "PNG"),
        "webp_animated": lambda: _save(im, "WEBP", save_all=True, append_images=[im.rotate(90)]),
        "palette": lambda: _save(im.quantize(64), "PNG"),
        "palette_alpha": lambda: _save(im.quantize(64), "PNG", transparency=0),
        "rgba": lambda: encode(np.dstack([COFFEE, np.full(COFFEE.shape[:2], 100, np.uint8)])),
        "la": lambda: _save(im.convert("LA"), "PNG"),
        "gif_animated": lambda: _save(im.quantize(64), "GIF", save_all=True, append_images=[im.rotate(90).quantize(64)]),
        "bmp": lambda: _save(im, "BMP"),
        "tiff": lambda: _save(im, "TIFF"),
    }[kind]()
    s = sample(data)
    assert s.rgb is not None and s.rgb.dtype == np.uint8 and s.rgb.shape[2] == 3
    out = Image.open(__import__("io").BytesIO(s.encoded()))
    assert out.mode in ("RGB", "L") and out.size == (s.width, s.height)
    if kind in ("grey16", "float_tiff"):  # scaled to 8 bits, neither clipped to white nor crushed to black
        assert 60 < s.rgb.mean() < 200
    if kind == "rgba":  # flattened on white: lighter than the photo
        assert s.rgb.mean() > COFFEE.mean()


def _save(im, fmt, **kw):
    import io

    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def test_kept_bytes_are_upright_when_orientation_is_allowed():
    s = sample(exif_jpeg(ASTRO[:, :400], 6))  # stored 512 high x 400 wide, to be shown rotated 90
    assert make("rotation", reject=[])(s).keep
    out = Image.open(__import__("io").BytesIO(s.encoded()))
    assert out.size == (512, 400)


def test_a_filter_that_raises_rejects_the_file_with_the_error_instead_of_losing_it(tmp_path, monkeypatch):
    from qimage.datapipe.process import Plan, process_file

    (tmp_path / "a.png").write_bytes(encode(ASTRO))
    plan = Plan(load_recipe(), (1, 2))
    clarity = next(f for f in plan.filters if f.name == "clarity")
    monkeypatch.setattr(clarity, "measure", lambda s: 1 / 0)
    row = process_file(plan, tmp_path, "a.png", {})
    assert row["filter"] == "clarity" and row["reason"].startswith("error in filter: ZeroDivisionError")
