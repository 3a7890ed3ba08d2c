"""One input file as the filters see it: raw bytes, caption, metadata and lazily derived pixels.

Decoding happens per row inside a try/except (never Ray's read_images, which aborts a job on one truncated JPEG),
and every derived array is computed once and shared: the grey image and its histogram feed luma, entropy and
exposure; the OCR boxes feed the language split, intensive_text and small_character.
"""
from __future__ import annotations

import io
import json
import posixpath
import warnings
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

# Ray already runs one task per core; OpenCV's own thread pool would only fight it for the same cores.
cv2.setNumThreads(1)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
SIDECAR_EXTS = {".txt", ".json"}
# The folder-level sidecar a `qimage synth` run writes beside its samples (see `discover`).
SYNTH_MANIFEST = "manifest.json"
# `qimage synth`'s sidecar "kind"s: such samples are synthetic (so is any sidecar with a "kind" and ground-truth "lines").
SYNTH_KINDS = frozenset({"pure", "compose", "complex", "words", "scenes"})
# Filters measure at a fixed size so scores (Laplacian variance, edge density) compare across resolutions.
WORK_SIDE = 512


class DecodeError(Exception):
    """The file cannot become pixels; the message is the rejection reason."""


class Sample:
    def __init__(self, root: Path, rel: str, data: bytes, caption: str | None, meta: str | None, max_pixels: int):
        self.rel = rel
        self.root = root
        self.data = data
        self.size_bytes = len(data)
        self.caption = caption or ""
        self.has_caption = caption is not None
        self.meta_text = meta if meta is not None else "{}"
        try:
            self.meta = json.loads(self.meta_text) if meta else {}
            if not isinstance(self.meta, dict):
                self.meta = {}
        except ValueError:
            self.meta = {}
        if not self.has_caption and isinstance(self.meta.get("caption"), str):
            self.caption, self.has_caption = self.meta["caption"], True
        # Synthesised samples join the pipeline at stage 4, as in Qwen-Image: photo-quality measures (clarity,
        # entropy, ...) would judge flat renders as bad photos. Text renders also carry their ground-truth lines,
        # which stand in for OCR and make them text data; scenes are synthetic but have no text.
        lines = self.meta.get("lines")
        self.text_render = bool("kind" in self.meta and isinstance(lines, list) and lines)
        self.synthetic = self.text_render or self.meta.get("kind") in SYNTH_KINDS
        self.max_pixels = max_pixels
        self.rgb: np.ndarray | None = None
        self.format = ""
        self.mode = ""
        self.orientation = 1
        self.animated = False
        self.width = self.height = 0
        self.ocr = None  # list[(quad ndarray 4x2 in original pixels, text, confidence)] once stage 4 ran
        # edit pairs (qimage.datapipe.pairs), set by process_file: the target as a Sample of its own (decoded by the
        # edit_pair filter), why the source could not be paired, the merged edit metadata and the instruction
        self.target: Sample | None = None
        self.read_error: str | None = None
        self.edit_error: str | None = None
        self.edit: dict | None = None
        self.instruction = ""

    # -- decoding ---------------------------------------------------------------------------------------------
    def decode(self) -> None:
        """Decode to 8-bit RGB at full size, or raise DecodeError with a reason a user understands."""
        if not self.data:
            raise DecodeError("empty file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im = Image.open(io.BytesIO(self.data))
                self.format = im.format or ""
                w, h = im.size
                if w * h > self.max_pixels:
                    raise DecodeError(f"decompression bomb: {w}x{h} exceeds max_pixels {self.max_pixels}")
                self.animated = bool(getattr(im, "is_animated", False))
                self.orientation = int(im.getexif().get(0x0112, 1) or 1)
                self.mode = im.mode
                self.rgb = _fast_jpeg(self.data, im) if self.format == "JPEG" else None
                if self.rgb is None:
                    im.seek(0)
                    im.load()
                    self.rgb = to_rgb8(im)
        except DecodeError:
            raise
        except Image.DecompressionBombError as e:
            raise DecodeError(f"decompression bomb: {e}") from None
        except Image.UnidentifiedImageError:
            suffix = Path(self.rel).suffix.lower()
            if suffix in SIDECAR_EXTS:  # e.g. a `qimage synth` folder's manifest.json: kept track of, not a sample
                raise DecodeError(f"not an image: a {suffix} with no image of the same name beside it") from None
            raise DecodeError("not an image (unidentified format)") from None
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, MemoryError) as e:
            raise DecodeError(f"cannot decode: {e}") from None
        self.height, self.width = self.rgb.shape[:2]
        if self.width == 0 or self.height == 0:
            raise DecodeError("zero-sized image")

    # -- shared derived views ---------------------------------------------------------------------------------
    @cached_property
    def work(self) -> np.ndarray:
        """RGB shrunk so the long side is at most WORK_SIDE. Never enlarged: upsampling smooths the image, and a
        small but sharp photo would then score as blurry (clarity) or flat (texture)."""
        return fit_side(self.rgb, WORK_SIDE)

    @cached_property
    def grey(self) -> np.ndarray:
        return cv2.cvtColor(self.work, cv2.COLOR_RGB2GRAY)

    @cached_property
    def grey_full(self) -> np.ndarray:
        return cv2.cvtColor(self.rgb, cv2.COLOR_RGB2GRAY)

    @cached_property
    def hist(self) -> np.ndarray:
        """Normalised 256-bin histogram of `grey` (sums to 1)."""
        h = cv2.calcHist([self.grey], [0], None, [256], [0, 256]).ravel()
        return h / max(h.sum(), 1.0)

    @cached_property
    def hsv_sub(self) -> np.ndarray:
        """HSV of every second pixel of `work` in each direction."""
        return cv2.cvtColor(np.ascontiguousarray(self.work[::2, ::2]), cv2.COLOR_RGB2HSV)

    @cached_property
    def faces(self) -> list[tuple[int, int, int, int]]:
        from qimage.datapipe.faces import detect_faces

        return detect_faces(self.rgb)

    # -- output -----------------------------------------------------------------------------------------------
    def encoded(self) -> bytes:
        """The bytes a kept row ships: the original file when training can read it as is, else a lossless PNG of
        the decoded 8-bit RGB (orientation applied, first frame, alpha flattened on white)."""
        plain = self.format in ("JPEG", "PNG", "WEBP") and self.mode in ("RGB", "L") and not self.animated
        if plain and self.orientation == 1:
            return self.data
        rgb = _apply_orientation(self.rgb, self.orientation)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return buf.tobytes()

    def thumbnail(self, side: int = 96) -> bytes:
        h, w = self.rgb.shape[:2]
        s = side / max(h, w)
        small = cv2.resize(self.work, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        return buf.tobytes()


def _fast_jpeg(data: bytes, im: Image.Image) -> np.ndarray | None:
    """Decode a plain, complete RGB or grey JPEG with OpenCV (~2x cheaper than PIL + convert); None means "let PIL do
    it". Complete means it ends with the EOI marker: a truncated file goes to PIL, whose error names the problem."""
    if im.mode not in ("RGB", "L") or not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return None
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if arr is None or arr.shape[:2] != (im.size[1], im.size[0]):
        return None
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def fit_side(img: np.ndarray, side: int) -> np.ndarray:
    """img shrunk (INTER_AREA) so its long side is at most `side`; returned as is when it already fits."""
    h, w = img.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _apply_orientation(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation tag (1..8) -> upright pixels, with the same transposes PIL's exif_transpose uses."""
    T = Image.Transpose
    method = {2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE,
              6: T.ROTATE_270, 7: T.TRANSVERSE, 8: T.ROTATE_90}.get(orientation)
    if method is None:
        return rgb
    return np.ascontiguousarray(np.asarray(Image.fromarray(rgb).transpose(method)))


def to_rgb8(im: Image.Image) -> np.ndarray:
    """Any PIL mode (CMYK, 16-bit grey, palette, alpha, float) -> HxWx3 uint8, alpha flattened on white."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.nan_to_num(np.asarray(im).astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        # 16-bit greys use the full 0..65535 range; I and F carry no range, so take the smallest usual one that
        # holds the data (float images in 0..1, 8-bit or 16-bit values stored wide), else stretch to the maximum.
        m = float(a.max()) if a.size else 0.0
        if mode.startswith("I;16"):
            top = 65535.0
        else:
            top = next((t for t in (1.0, 255.0, 65535.0) if m <= t), m)
        g = np.clip(a / top * 255.0, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(g[..., None], 3, axis=2))
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        a = np.asarray(im).astype(np.float32)
        alpha = a[..., 3:4] / 255.0
        rgb = a[..., :3] * alpha + 255.0 * (1 - alpha)
        return np.ascontiguousarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    if mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im))


def discover(root) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Every file under root (a folder, a URI or a qimage.datapipe.storage.Store) that is not a caption/metadata
    sidecar, sorted; plus each input's sidecars.

    Sidecars are not inputs, everything else is (a file that is no image gets rejected as such), so nothing under the
    root goes unaccounted. Two kinds of sidecar:
    - `ID.txt` / `ID.json` when an input with the same stem sits next to it (its caption and metadata);
    - `manifest.json` that `qimage synth` wrote for its folder (`synth_manifest`): the folder's own metadata.
    A lone `.txt`/`.json` that is neither, e.g. any other `manifest.json`, is an input like any other file.

    Edit pairs (qimage.datapipe.pairs): an input whose `ID.json` names a target (`edit.target`) is paired with it,
    and the target is no input of its own: the source's entry gains `target` (+ `target_txt` / `target_json`, the
    target's sidecars), or `edit_error` (a message) when the target cannot be paired.
    """
    from qimage.datapipe.pairs import pair_edits
    from qimage.datapipe.storage import open_store

    store = open_store(root)
    files = store.files()
    by_stem: dict[tuple[str, str], list[str]] = {}
    for rel in files:
        by_stem.setdefault(_stem_key(rel), []).append(rel)
    inputs: list[str] = []
    sidecars: dict[str, dict[str, str]] = {}
    for rel in files:
        group = by_stem[_stem_key(rel)]
        primaries = [q for q in group if _suffix(q) not in SIDECAR_EXTS]
        if _suffix(rel) in SIDECAR_EXTS and primaries:
            continue
        if posixpath.basename(rel) == SYNTH_MANIFEST and synth_manifest(store, rel):
            continue
        inputs.append(rel)
        cars = {_suffix(q)[1:]: q for q in group if _suffix(q) in SIDECAR_EXTS and q != rel}
        if cars and _suffix(rel) not in SIDECAR_EXTS:
            sidecars[rel] = cars
    inputs = pair_edits(set(files), inputs, sidecars, store.read_bytes)
    return inputs, sidecars


def _suffix(rel: str) -> str:
    return posixpath.splitext(rel)[1].lower()


def _stem_key(rel: str) -> tuple[str, str]:
    folder, name = posixpath.split(rel)
    return folder, posixpath.splitext(name)[0]


def synth_manifest(store, rel: str) -> bool:
    """True when `rel` (in a storage.Store) is the manifest a `qimage synth` run writes beside its samples
    (synth/runner.py): a JSON object whose `generator` is "qimage.synth", with a `samples` list and a `count` equal
    to its length. Anything else named manifest.json (another tool's, a truncated or edited one) stays an input and
    is accounted for."""
    try:
        if store.read_bytes(rel, limit=64).lstrip()[:1] != b"{":  # not JSON: do not read a large file only to reject it
            return False
        m = json.loads(store.read_bytes(rel))
    except (OSError, ValueError):
        return False
    return (isinstance(m, dict) and m.get("generator") == "qimage.synth" and isinstance(m.get("samples"), list)
            and m.get("count") == len(m["samples"]))
