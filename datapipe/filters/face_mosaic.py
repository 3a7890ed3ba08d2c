"""face_mosaic (stage 6): portraits whose faces are pixelated (mosaic) or blurred out.

Score: the most obscured face's score in [0, 1], the larger of
  mosaic: the fraction of horizontally adjacent pixel pairs inside the face box differing by <= 1 grey level
          (a mosaic is flat inside each block: ~0.9; a real face ~0.2-0.5), and
  blur:   1 - min(1, v_face / (0.2 v_image)), v the variance of the Laplacian (a blurred face on a sharp image
          has almost none of the image's detail: ~1; a real face ~0).
Images without a detected face score NaN and pass, and so do renders whose sidecar says `qimage synth` drew them
from fonts and shapes alone (`faces.faceless_render`: no face by construction, the way their sidecar lines stand in
for OCR), without running the detector: on letters it found "faces" that a glyph's flat strokes make look obscured
(3 of 150 default pure renders rejected at 512 px, 6 at 256 px, before this check and the detector's own flat-graphics
test in datapipe/faces.py).
"""
import cv2
import numpy as np

from qimage.datapipe.faces import faceless_render
from qimage.datapipe.filters import RangeFilter, register


def obscured(grey: np.ndarray, box) -> float:
    x, y, w, h = box
    face = grey[max(0, y):y + h, max(0, x):x + w]
    if face.shape[0] < 8 or face.shape[1] < 8:
        return float("nan")
    mosaic = float((np.abs(np.diff(face.astype(np.int16), axis=1)) <= 1).mean())
    v_face = cv2.Laplacian(face, cv2.CV_64F).var()
    v_img = cv2.Laplacian(grey, cv2.CV_64F).var()
    blur = 1.0 - min(1.0, v_face / (0.2 * v_img + 1e-9))
    return max(mosaic, blur)


@register
class FaceMosaic(RangeFilter):
    name = "face_mosaic"
    stage = 6
    what = "face obscured score"
    params = {"min": None, "max": 0.8}

    def measure(self, sample) -> float:
        if sample.synthetic and faceless_render(sample.meta):
            return float("nan")
        scores = [obscured(sample.grey_full, b) for b in sample.faces]
        scores = [s for s in scores if s == s]
        return float(max(scores)) if scores else float("nan")
