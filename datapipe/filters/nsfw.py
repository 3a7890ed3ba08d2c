"""nsfw (stage 1): nudity, by nudenet's bundled detector (default) or a local image classifier (`model`).

Score with `model: null` (the default): the highest confidence among the boxes NudeNet 3's detector (YOLOv8n at
320 px, the ONNX file shipped inside the `nudenet` wheel; nothing is downloaded) finds of a class in `classes`,
0 when it finds none. The default `classes` are the explicit ones: FEMALE_BREAST_EXPOSED, FEMALE_GENITALIA_EXPOSED,
MALE_GENITALIA_EXPOSED, BUTTOCKS_EXPOSED, ANUS_EXPOSED; every other class (faces, covered parts, exposed feet,
belly, armpits, male breast) never counts. nudenet reports only boxes of confidence >= 0.2, so a score is 0 or in
[0.2, 1]. A rejection names the class. The detector sees `Sample.work` (long side <= 512) as the BGR array it
would read from a file, loads once per worker process with one onnxruntime thread (Ray gives each task a core),
and costs ~60 ms of CPU per image on this 2-core machine (59-63 ms measured on scikit-image photos, shared).

Score with `model: DIR` (a saved transformers image classifier, e.g. Falconsai/nsfw_image_detection, labels
normal/nsfw): the summed probability of its labels listed in `labels` (whole names, case-insensitive).

Keep when score <= max (0.5). Skipped with a warning when `model` is null and nudenet is not installed.
"""
from __future__ import annotations

import importlib.util
import os

import cv2

from qimage.datapipe.filters import Verdict, _fmt, register
from qimage.datapipe.filters._model import ClassifierFilter
from qimage.errors import UserError

# NudeNet 3's classes (nudenet/nudenet.py, `__labels`), for checking a recipe's `classes`.
NUDENET_CLASSES = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)
EXPLICIT = ["FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "BUTTOCKS_EXPOSED",
            "ANUS_EXPOSED"]

_DETECTOR = None


def detector():
    """nudenet's NudeDetector, once per process, its ONNX session on one thread."""
    global _DETECTOR
    if _DETECTOR is None:
        import nudenet
        import onnxruntime as ort

        det = nudenet.NudeDetector()
        # NudeDetector takes no session options and would start one thread per core in every Ray task
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        onnx = os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx")
        det.onnx_session = ort.InferenceSession(onnx, sess_options=opts, providers=["CPUExecutionProvider"])
        _DETECTOR = det
    return _DETECTOR


@register
class Nsfw(ClassifierFilter):
    name = "nsfw"
    stage = 1
    what = "unsafe probability"
    params = {"model": None, "classes": EXPLICIT, "labels": ["nsfw", "porn", "hentai", "sexy", "unsafe"],
              "min": None, "max": 0.5}

    def _uses_nudenet(self) -> bool:
        return self.cfg.get("model") is None

    def _check_classes(self) -> None:
        unknown = [c for c in self.cfg.get("classes") or [] if c not in NUDENET_CLASSES]
        if unknown:
            raise UserError(f"recipe: filters.nsfw.classes: unknown nudenet class {unknown[0]!r} "
                            f"(known: {', '.join(NUDENET_CLASSES)})")

    def check(self):
        if not self._uses_nudenet():
            return super().check()
        self._check_classes()
        if importlib.util.find_spec("nudenet") is None:
            return "nsfw skipped: no model configured and nudenet is not installed (pip install nudenet)"
        return None

    def setup(self):
        if not self._uses_nudenet():
            return super().setup()
        problem = self.check()
        if problem is None:
            self._detector = detector()
        return problem

    def top(self, sample) -> tuple[float, str | None]:
        """(score, class of the most confident listed detection or None) from nudenet."""
        wanted = set(self.cfg.get("classes") or [])
        found = [(float(d["score"]), d["class"]) for d in self._detector.detect(cv2.cvtColor(sample.work, cv2.COLOR_RGB2BGR))
                 if d["class"] in wanted]
        return max(found) if found else (0.0, None)

    def measure(self, sample) -> float:
        return self.top(sample)[0] if self._uses_nudenet() else super().measure(sample)

    def __call__(self, sample) -> Verdict:
        if not self._uses_nudenet():
            return super().__call__(sample)
        score, cls = self.top(sample)
        v = self.decide(score)
        hi = self.cfg.get("max")
        if not v.keep and cls is not None and hi is not None and score > hi:
            v.reason = f"{cls} confidence {_fmt(score)} > max {_fmt(hi)}"
        return v
