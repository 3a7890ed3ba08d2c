"""`qimage data demo DIR`: a folder of real photos (scikit-image's sample images) with planted defects.

It exercises every classical filter, every odd-but-valid format and every way a file can be broken, and returns
what each file should become, so tests and users can check the pipeline end to end. Sources are assigned so that no
two planted files are near-duplicates by accident (a darkened copy of a kept photo would be rejected as its
duplicate, correctly, instead of for darkness).
"""
from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

EAN_L = ["0001101", "0011001", "0010011", "0111101", "0100011", "0110001", "0101111", "0111011", "0110111", "0001011"]
EAN_G = ["0100111", "0110011", "0011011", "0100001", "0011101", "0111001", "0000101", "0010001", "0001001", "0010111"]
EAN_R = ["1110010", "1100110", "1101100", "1000010", "1011100", "1001110", "1010000", "1000100", "1001000", "1110100"]
EAN_PARITY = ["LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG", "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL"]


def ean13(digits12: str, module: int = 3, height: int = 120) -> np.ndarray:
    """A scannable EAN-13 barcode (white quiet zone included) as a grey uint8 image."""
    d = [int(c) for c in digits12]
    check = (10 - (sum(d[0::2]) + 3 * sum(d[1::2])) % 10) % 10
    d.append(check)
    bits = "101" + "".join((EAN_L if p == "L" else EAN_G)[x] for p, x in zip(EAN_PARITY[d[0]], d[1:7])) + "01010"
    bits += "".join(EAN_R[x] for x in d[7:]) + "101"
    row = np.array([0 if b == "1" else 255 for b in bits], np.uint8).repeat(module)
    img = np.full((height + 40, len(row) + 20 * module), 255, np.uint8)
    img[20:20 + height, 10 * module:10 * module + len(row)] = row
    return img


def qr(text: str, side: int) -> np.ndarray:
    code = cv2.QRCodeEncoder.create().encode(text)
    code = np.pad(code, 4, constant_values=255)
    return cv2.resize(code, (side, side), interpolation=cv2.INTER_NEAREST)


def _jpeg(rgb: np.ndarray, quality: int = 92, exif: bytes | None = None) -> bytes:
    b = io.BytesIO()
    kw = {"exif": exif} if exif else {}
    Image.fromarray(rgb).save(b, "JPEG", quality=quality, **kw)
    return b.getvalue()


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header claims width x height grey pixels (a decompression bomb; pixels never allocated)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


def draw_text(rgb: np.ndarray, lines: list[tuple[str, int, int, int]], color=(20, 20, 20)) -> np.ndarray:
    """Render (text, x, y, px size) lines with Noto Sans CJK (covers Latin and Chinese)."""
    from PIL import ImageDraw, ImageFont

    im = Image.fromarray(rgb)
    draw = ImageDraw.Draw(im)
    font_path = _cjk_font()
    for text, x, y, size in lines:
        font = ImageFont.truetype(font_path, size) if font_path else ImageFont.load_default(size)
        draw.text((x, y), text, fill=color, font=font)
    return np.asarray(im)


def _cjk_font() -> str | None:
    try:
        import manimgx_fonts_cjk

        found = sorted(Path(manimgx_fonts_cjk.__file__).parent.glob("*.tt[cf]"))
        return str(found[0]) if found else None
    except ImportError:
        return None


def _gradient(h: int, w: int, c0, c1, vertical: bool) -> np.ndarray:
    t = np.linspace(0, 1, h if vertical else w, dtype=np.float32)
    t = t[:, None, None] if vertical else t[None, :, None]
    g = np.asarray(c0, np.float32) * (1 - t) + np.asarray(c1, np.float32) * t
    return np.ascontiguousarray(np.broadcast_to(g, (h, w, 3)).astype(np.uint8))


def build(root: str | Path) -> dict[str, str | None]:
    """Write the demo folder; return {relative path: filter expected to reject it, or None if it should be kept}."""
    import skimage.data as d

    root = Path(root)
    exp: dict[str, str | None] = {}

    def put(rel: str, data: bytes, expect: str | None, caption: str | None = None, meta: dict | None = None):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        if caption is not None:
            p.with_suffix(".txt").write_text(caption, encoding="utf-8")
        if meta is not None:
            p.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        exp[rel] = expect

    rgb = lambda a: np.ascontiguousarray(np.repeat(a[..., None], 3, 2)) if a.ndim == 2 else np.ascontiguousarray(a[..., :3])
    astro, coffee, rocket, hubble = d.astronaut(), d.coffee(), d.rocket(), d.hubble_deep_field()
    rng = np.random.default_rng(0)

    # clean photos in every odd-but-valid format: all kept
    put("photos/astronaut.jpg", _jpeg(astro, 95), None, caption="An astronaut in a white space suit holding a helmet, "
        "with the American flag behind her.")
    put("photos/coffee_cmyk.jpg", _save(Image.fromarray(coffee).convert("CMYK"), "JPEG", quality=92), None,
        meta={"caption": "A cup of coffee with latte art on a saucer."})
    cam16 = (d.camera().astype(np.uint16) * 257)
    put("photos/camera_16bit.png", _save(Image.fromarray(cam16), "PNG"), None)
    put("photos/chelsea_palette.png", _save(Image.fromarray(d.chelsea()).quantize(256), "PNG"), None)
    alpha = np.full(rocket.shape[:2], 255, np.uint8)
    alpha[:40, :40] = 128  # a soft corner: valid alpha, same picture
    put("photos/rocket_alpha.png", _save(Image.fromarray(np.dstack([rocket, alpha]), "RGBA"), "PNG"), None)
    frames = [Image.fromarray(d.immunohistochemistry()).quantize(256), Image.fromarray(d.immunohistochemistry()[::-1]).quantize(256)]
    put("photos/immuno_animated.gif", _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0), None)
    put("photos/hubble.webp", _save(Image.fromarray(hubble), "WEBP", quality=90), None)
    put("photos/brick.bmp", _save(Image.fromarray(d.brick()), "BMP"), None)
    put("unicode/硬币 coins ü.tiff", _save(Image.fromarray(d.coins()), "TIFF"), None, caption="桌面上的一些旧硬币。")

    # broken files: stage 1 broken_file
    put("broken/empty.jpg", b"", "broken_file")
    good = _jpeg(d.gravel()[:, ::-1].copy(), 90)
    put("broken/truncated.jpg", good[: len(good) * 6 // 10], "broken_file")
    png = bytearray(_save(Image.fromarray(astro[::-1].copy()), "PNG"))
    png[len(png) // 2: len(png) // 2 + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    put("broken/corrupt.png", bytes(png), "broken_file")
    put("broken/notes.jpg", b"this is a text file with a .jpg name\n" * 20, "broken_file")
    put("broken/bomb.png", bomb_png(), "broken_file")
    put("broken/manifest.csv", b"id,url\n1,http://example.com/a.jpg\n", "broken_file")
    put("orphans/lonely.txt", "a caption whose image went missing".encode(), "broken_file")

    # stage 1 size filters and duplicates
    put("small/flat.png", _save(Image.new("RGB", (300, 300), (120, 140, 160)), "PNG"), "file_size")
    put("small/thumbnail.jpg", _jpeg(hubble[500:700, 600:840], 92), "resolution")
    put("dup/astronaut_small.jpg", _jpeg(cv2.resize(astro, (384, 384), interpolation=cv2.INTER_AREA), 80), "duplicate")
    put("dup/rocket_copy.webp", _save(Image.fromarray(rocket), "WEBP", quality=70), "duplicate")

    # stage 2 image quality (each from a source no other planted file uses)
    exif = Image.Exif()
    exif[0x0112] = 6
    put("quality/rotated.jpg", _jpeg(d.moon()[..., None].repeat(3, 2), 92, exif.tobytes()), "rotation")
    put("quality/blurry.png", _save(Image.fromarray(cv2.GaussianBlur(rgb(d.clock()), (0, 0), 2)), "PNG"), "clarity")
    quads = [hubble[:436, :500], hubble[:436, 500:], hubble[436:, :500], hubble[436:, 500:]]
    put("quality/dark.jpg", _jpeg(((quads[0] / 255.0) ** 1.5 * 255).astype(np.uint8), 95), "luma")
    hsv = cv2.cvtColor(np.clip(quads[1].astype(np.float32) * 3, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
    hsv[..., 1] = 255
    hsv[..., 2] = np.maximum(hsv[..., 2], 90)
    put("quality/oversaturated.png", _save(Image.fromarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)), "PNG"), "saturation")
    checks = ((np.indices((512, 512)) // 32).sum(0) % 2 * 255).astype(np.int16)
    checks = np.clip(checks + rng.integers(0, 2, checks.shape) * np.where(checks > 0, -1, 1), 0, 255).astype(np.uint8)
    put("quality/flat_checks.png", _save(Image.fromarray(checks), "PNG"), "entropy")
    put("quality/gravel.png", _save(Image.fromarray(d.gravel()), "PNG"), "texture")

    # stage 3 captions (images that pass everything else: flipped copies are far apart in pHash)
    put("captions/refusal_en.jpg", _jpeg(rgb(d.camera())[:, ::-1].copy(), 92), "invalid_caption",
        caption="I'm sorry, but I cannot describe this image.")
    put("captions/refusal_zh.jpg", _jpeg(rocket[::-1].copy(), 92), "invalid_caption", caption="抱歉，我无法描述这张图片。")
    long_caption = " ".join(["a detailed description of the scene with many words"] * 45)
    put("captions/too_long.jpg", _jpeg(coffee[::-1].copy(), 92), "caption_length", caption=long_caption)

    # stage 4 text rendering
    en = draw_text(_gradient(480, 640, (250, 236, 200), (200, 225, 250), vertical=False),
                   [("OPEN 24 HOURS", 60, 150, 64), ("Fresh coffee", 60, 260, 48)])
    put("text/sign_en.jpg", _jpeg(en, 92), None, caption='A sign reading "OPEN 24 HOURS" and "Fresh coffee".')
    zh = draw_text(_gradient(480, 640, (200, 240, 210), (250, 220, 230), vertical=True),
                   [("欢迎光临", 80, 120, 96), ("通义千问图像", 80, 280, 72)])
    put("text/sign_zh.jpg", _jpeg(zh, 92), None, caption="一块写着“欢迎光临”的招牌。")
    page = cv2.resize(rgb(d.page()), None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    put("text/dense_page.png", _save(Image.fromarray(page), "PNG"), "intensive_text")
    small = _gradient(1024, 1024, (235, 235, 225), (215, 225, 240), vertical=True)
    small = draw_text(small, [(f"line {i}: the quick brown fox jumps over the lazy dog", 40, 60 + 60 * i, 11) for i in range(8)])
    put("text/small_print.png", _save(Image.fromarray(small), "PNG"), "small_character")

    # stage 5 high-resolution quality and abnormal elements
    over = np.clip(astro[::-1].astype(np.float32) * 1.5 + 70, 0, 255).astype(np.uint8)
    put("hires/overexposed.jpg", _jpeg(over, 92), "exposure")
    put("hires/jpeg_artefacts.jpg", _jpeg(np.clip(quads[3].astype(np.float32) * 3, 0, 255).astype(np.uint8), 4), "compression")
    base = rocket[:, ::-1].copy()
    base[40:240, 40:240] = rgb(qr("https://example.com/qimage", 200))
    put("hires/qr.png", _save(Image.fromarray(base), "PNG"), "qr_code")
    base = coffee[:, ::-1].copy()
    bar = rgb(ean13("590123412345"))
    base[120:120 + bar.shape[0], 120:120 + bar.shape[1]] = bar
    put("hires/barcode.png", _save(Image.fromarray(base), "PNG"), "barcode")

    # stage 6 portraits: a face pixelated out (mirrored so it is no duplicate of the kept astronaut)
    m = astro[:, ::-1].copy()
    x, y, w, h = 512 - 274, 60, 114, 114
    roi = m[y:y + h, x:x + w]
    m[y:y + h, x:x + w] = cv2.resize(cv2.resize(roi, (w // 12, h // 12), interpolation=cv2.INTER_AREA), (w, h),
                                     interpolation=cv2.INTER_NEAREST)
    put("people/face_mosaic.png", _save(Image.fromarray(m), "PNG"), "face_mosaic")

    # a synthetic text render (what qimage synth writes): white background, ground-truth lines in the JSON
    syn = draw_text(np.full((512, 768, 3), 255, np.uint8), [("Qwen-Image 通义", 40, 200, 80)])
    put("synthetic/000001.png", _save(Image.fromarray(syn), "PNG"), None,
        caption='On a white background, displaying black text "Qwen-Image 通义".',
        meta={"lines": [{"text": "Qwen-Image 通义", "quad": [[40, 210], [640, 210], [640, 300], [40, 300]]}],
              "lang": "mix", "font": "NotoSansCJK", "kind": "pure"})
    return exp
