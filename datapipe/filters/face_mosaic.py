"""face_mosaic (stage 6): portraits whose faces are pixelated (mosaic) or blurred out.

Score: the most obscured face's score in [0, 1], the larger of
  mosaic: the fraction of horizontally adjacent pixel pairs inside the face box differing by <= 1 grey level
          (a mosaic is flat inside each block: ~0.9; a real face ~0.2-0.5), and
  blur:   1 - min(1, v_face / (0.2 v_image)), v the variance of the Laplacian (a blurred face on a sharp image
          has almost none of the image's detail: ~1; a real face ~0).
Images without a detected face score NaN and pass.
"""
import cv2
import numpy as np

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
        scores = [obscured(sample.grey_full, b) for b in sample.faces]
        scores = [s for s in scores if s == s]
        return float(max(scores)) if scores else float("nan")
